package afr

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// These tests cover entry transactions whose bricks disagree, and the
// entry heal's recreation of a missing inode, on fake bricks with a
// namespace (fakeChild.names).

// seq orders events across fake bricks.
var seq atomic.Int64

func (f *fakeChild) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	if !f.Up() {
		return nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rmdirErr != nil {
		return nil, f.rmdirErr
	}
	f.events = append(f.events, "rmdir")
	return nil, nil
}

func (f *fakeChild) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return f.makeEntry(name, xdr.Iatt{GFID: gfid, Mode: mode})
}

func (f *fakeChild) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return f.makeEntry(name, xdr.Iatt{GFID: gfid, Mode: syscall.S_IFDIR | mode})
}

func (f *fakeChild) makeEntry(name string, st xdr.Iatt) (xdr.Iatt, xdr.Dict, error) {
	if !f.Up() {
		return xdr.Iatt{}, nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.names[name]; ok {
		return xdr.Iatt{}, nil, &fop.OpError{Brick: f.name, Errno: syscall.EEXIST}
	}
	f.names[name] = st
	f.created = seq.Add(1)
	f.events = append(f.events, "create "+name)
	return st, nil, nil
}

// against is what child f's changelog on inode g holds against child k,
// per slot.
func (f *fakeChild) against(g xdr.GFID, k string) counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.xattrs[g]["trusted.afr."+k]
}

// dirtyOf is child f's dirty counters on inode g.
func (f *fakeChild) dirtyOf(g xdr.GFID) counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.xattrs[g][dirtyKey]
}

func setRmdirErr(f *fakeChild, en syscall.Errno) {
	f.mu.Lock()
	f.rmdirErr = &fop.OpError{Brick: f.name, Fop: "RMDIR", Errno: en}
	f.mu.Unlock()
}

var clients = []string{"v-client-0", "v-client-1", "v-client-2"}

// blames lists, as "i->k", every accusation in slot on inode g.
func blames(f []*fakeChild, g xdr.GFID, slot int) map[string]int32 {
	out := map[string]int32{}
	for i, c := range f {
		for _, k := range clients {
			if v := c.against(g, k)[slot]; v != 0 {
				out[fmt.Sprintf("%d->%s", i, k)] = v
			}
		}
	}
	return out
}

func sameBlames(got, want map[string]int32) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// An rmdir two bricks of three refuse as ENOTEMPTY fails, and the two
// blame the brick that removed the directory, on the parent, so a heal
// puts it back there instead of leaving the copies different with nothing
// marked.
func TestRmdirRefusedByMajorityMarksTheBrickThatTookIt(t *testing.T) {
	r, f := newTestReplica(t)
	setRmdirErr(f[1], syscall.ENOTEMPTY)
	setRmdirErr(f[2], syscall.ENOTEMPTY)
	if _, err := r.Rmdir(context.Background(), xdr.RootGFID, "d", 0, nil); fop.Errno(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir refused by 2 of 3: %v, want ENOTEMPTY", err)
	}
	want := map[string]int32{"1->v-client-0": 1, "2->v-client-0": 1}
	if got := blames(f, xdr.RootGFID, slotEntry); !sameBlames(got, want) {
		t.Errorf("entry blame on the parent: %v, want %v", got, want)
	}
	for i, c := range f {
		if d := c.dirtyOf(xdr.RootGFID); d != (counts{}) {
			t.Errorf("brick %d: parent dirty %v; the blame says it all", i, d)
		}
	}
	if _, ok := r.entryHeal[xdr.RootGFID]["d"]; !ok {
		t.Error("the parent is not queued for brickfs's own entry heal")
	}
}

// An rmdir one brick of three refuses as ENOTEMPTY succeeds, and the
// brick still holding the directory is marked so a heal removes it.
func TestRmdirRefusedByMinorityMarksIt(t *testing.T) {
	r, f := newTestReplica(t)
	setRmdirErr(f[2], syscall.ENOTEMPTY)
	if _, err := r.Rmdir(context.Background(), xdr.RootGFID, "d", 0, nil); err != nil {
		t.Fatalf("rmdir refused by 1 of 3: %v, want success", err)
	}
	want := map[string]int32{"0->v-client-2": 1, "1->v-client-2": 1}
	if got := blames(f, xdr.RootGFID, slotEntry); !sameBlames(got, want) {
		t.Errorf("entry blame on the parent: %v, want %v", got, want)
	}
}

// One brick refuses, one loses its connection: the refuser blames both
// the brick that took the change and the one whose outcome is unknown.
func TestEntryRefusalAndLostConnection(t *testing.T) {
	r, f := newTestReplica(t)
	setRmdirErr(f[1], syscall.ENOTEMPTY)
	setRmdirErr(f[2], syscall.ENOTCONN)
	if _, err := r.Rmdir(context.Background(), xdr.RootGFID, "d", 0, nil); err == nil {
		t.Fatal("rmdir taken by 1 of 3 succeeded")
	}
	want := map[string]int32{"1->v-client-0": 1, "1->v-client-2": 1}
	if got := blames(f, xdr.RootGFID, slotEntry); !sameBlames(got, want) {
		t.Errorf("entry blame on the parent: %v, want %v", got, want)
	}
}

// An entry change that only one brick took because the others lost
// their connection, or whose calls were cut short, fails for lack of
// quorum, accuses nobody (nobody answered otherwise), and leaves the
// parent dirty where it was taken, only there.
func TestEntryChangeCutShortLeavesDirty(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"lost connection", &fop.OpError{Fop: "RMDIR", Errno: syscall.ENOTCONN}},
		{"timed out", &fop.OpError{Fop: "RMDIR", Errno: syscall.ETIMEDOUT, Err: context.DeadlineExceeded}},
		{"cancelled ENOENT", &fop.OpError{Fop: "RMDIR", Errno: syscall.ENOENT, Err: context.Canceled}},
	} {
		r, f := newTestReplica(t)
		for _, c := range f[1:] {
			c.mu.Lock()
			c.rmdirErr = tc.err
			c.mu.Unlock()
		}
		if _, err := r.Rmdir(context.Background(), xdr.RootGFID, "d", 0, nil); err == nil {
			t.Fatalf("%s: rmdir taken by 1 of 3 succeeded", tc.name)
		}
		want := []counts{{0, 0, 1}, {}, {}}
		for i, c := range f {
			if d := c.dirtyOf(xdr.RootGFID); d != want[i] {
				t.Errorf("%s: brick %d parent dirty %v, want %v", tc.name, i, d, want[i])
			}
		}
		if got := blames(f, xdr.RootGFID, slotEntry); len(got) > 0 {
			t.Errorf("%s: accusations %v after a change cut short", tc.name, got)
		}
	}
}

// Refusing bricks that the parent's changelog already accuses are not
// trusted to hold the truth: the parent is left dirty instead, as AFR
// does, rather than making every brick blame every other.
func TestEntryRefusersAlreadyAccusedLeaveDirty(t *testing.T) {
	r, f := newTestReplica(t)
	f[0].xattrs = map[xdr.GFID]map[string]counts{xdr.RootGFID: {
		"trusted.afr.v-client-1": {0, 0, 2},
		"trusted.afr.v-client-2": {0, 0, 2},
	}}
	setRmdirErr(f[1], syscall.ENOTEMPTY)
	setRmdirErr(f[2], syscall.ENOTEMPTY)
	if _, err := r.Rmdir(context.Background(), xdr.RootGFID, "d", 0, nil); fop.Errno(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir refused by 2 of 3: %v, want ENOTEMPTY", err)
	}
	want := map[string]int32{"0->v-client-1": 2, "0->v-client-2": 2}
	if got := blames(f, xdr.RootGFID, slotEntry); !sameBlames(got, want) {
		t.Errorf("entry blame on the parent: %v, want only the old %v", got, want)
	}
	if d := f[0].dirtyOf(xdr.RootGFID); d != (counts{0, 0, 1}) {
		t.Errorf("parent dirty on the brick that took it: %v, want one entry change", d)
	}
}

// With a brick down when the locks are taken, the pre-op raised dirty and
// blamed it; a refusal then adds its blame of the brick that took the
// change, and dirty stays as the pre-op left it.
func TestEntryRefusalWithPreOp(t *testing.T) {
	r, f := newTestReplica(t)
	f[2].mu.Lock()
	f[2].up = false
	f[2].mu.Unlock()
	setRmdirErr(f[1], syscall.ENOTEMPTY)
	if _, err := r.Rmdir(context.Background(), xdr.RootGFID, "d", 0, nil); err == nil {
		t.Fatal("rmdir taken by 1 of 3 succeeded")
	}
	want := map[string]int32{"0->v-client-2": 1, "1->v-client-2": 1, "1->v-client-0": 1}
	if got := blames(f, xdr.RootGFID, slotEntry); !sameBlames(got, want) {
		t.Errorf("entry blame on the parent: %v, want %v", got, want)
	}
	for i, c := range f[:2] {
		if d := c.dirtyOf(xdr.RootGFID); d != (counts{0, 0, 1}) {
			t.Errorf("brick %d parent dirty %v, want the pre-op's one entry change", i, d)
		}
	}
}

// The entry heal recreating a missing inode on a sink first marks it on
// the sources as needing data and metadata there, so the fresh empty copy
// is never taken for a good one.
func TestImpungeMarksBeforeCreating(t *testing.T) {
	for _, tc := range []struct {
		mode uint32
		want counts
	}{
		{syscall.S_IFREG | 0o644, counts{1, 1, 0}},
		{syscall.S_IFDIR | 0o755, counts{1, 1, 1}},
		{syscall.S_IFIFO | 0o600, counts{0, 1, 0}},
	} {
		r, f := newTestReplica(t)
		gfid := xdr.GFID{0x20, 15: 0x7}
		st := xdr.Iatt{GFID: gfid, Mode: tc.mode}
		for _, c := range f {
			c.names = map[string]xdr.Iatt{}
		}
		f[0].names["x"] = st
		f[1].names["x"] = st
		before := seq.Add(1)
		done, err := r.healName(context.Background(), xdr.RootGFID, "x", []bool{true, true, false}, []bool{false, false, true})
		if err != nil || !done {
			t.Fatalf("mode %o: healName: done %v, %v", tc.mode, done, err)
		}
		if got, ok := f[2].names["x"]; !ok || got.GFID != gfid || got.Mode&syscall.S_IFMT != tc.mode&syscall.S_IFMT {
			t.Fatalf("mode %o: x not recreated on the sink with its gfid and type: %+v", tc.mode, got)
		}
		for _, c := range f[:2] {
			if got := c.against(gfid, "v-client-2"); got != tc.want {
				t.Errorf("mode %o: %s marks v-client-2 %v on the new inode, want %v", tc.mode, c.name, got, tc.want)
			}
			c.mu.Lock()
			marked := c.markedAt
			c.mu.Unlock()
			if marked <= before || marked > f[2].created {
				t.Errorf("mode %o: %s marked at %d, sink created at %d: want the mark first", tc.mode, c.name, marked, f[2].created)
			}
		}
		if got := blames(f, xdr.RootGFID, slotEntry); len(got) > 0 {
			t.Errorf("mode %o: marks on the parent %v; the new inode is what needs them", tc.mode, got)
		}
	}
}

func (f *fakeChild) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	if !f.Up() {
		return nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.names[name]; !ok {
		return nil, &fop.OpError{Brick: f.name, Fop: "UNLINK", Errno: syscall.ENOENT}
	}
	delete(f.names, name)
	f.events = append(f.events, "unlink "+name)
	return nil, nil
}

// A sink holding another inode under the name (a gfid mismatch) gets the
// sources' inode instead, marked for heal, as the self-heal daemon would
// do (afr_selfheal_recreate_entry).
func TestHealNameReplacesMismatchedGFID(t *testing.T) {
	r, f := newTestReplica(t)
	good := xdr.Iatt{GFID: xdr.GFID{0x30, 15: 1}, Mode: syscall.S_IFREG | 0o644}
	stray := xdr.Iatt{GFID: xdr.GFID{0x31, 15: 2}, Mode: syscall.S_IFREG | 0o600}
	for _, c := range f {
		c.names = map[string]xdr.Iatt{"x": good}
	}
	f[2].names["x"] = stray
	done, err := r.healName(context.Background(), xdr.RootGFID, "x", []bool{true, true, false}, []bool{false, false, true})
	if err != nil || !done {
		t.Fatalf("healName: done %v, %v", done, err)
	}
	if got := f[2].names["x"]; got.GFID != good.GFID {
		t.Fatalf("sink holds %v under the name, want the sources' %v", got.GFID, good.GFID)
	}
	if !strings.Contains(strings.Join(f[2].events, " "), "unlink x create x") {
		t.Errorf("sink events %v: want the stray unlinked, then the name recreated", f[2].events)
	}
	for _, c := range f[:2] {
		if got := c.against(good.GFID, "v-client-2"); got != (counts{1, 1, 0}) {
			t.Errorf("%s marks v-client-2 %v on the inode, want data and metadata", c.name, got)
		}
	}
}
