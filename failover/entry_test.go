package failover

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/xdr"
)

// These tests cover entry transactions whose bricks disagree, and the
// entry heal's recreation of a missing inode, on fake bricks with a
// namespace (fakeChild.names).

// seq orders events across fake bricks.
var seq atomic.Int64

func (f *fakeChild) Rmdir(ctx context.Context, parent xdr.GFID, name string) error {
	if !f.Up() {
		return f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rmdirErr != nil {
		return f.rmdirErr
	}
	f.events = append(f.events, "rmdir")
	return nil
}

func (f *fakeChild) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error) {
	return f.makeEntry(name, xdr.Iatt{GFID: gfid, Mode: mode})
}

func (f *fakeChild) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error) {
	return f.makeEntry(name, xdr.Iatt{GFID: gfid, Mode: syscall.S_IFDIR | mode})
}

func (f *fakeChild) makeEntry(name string, st xdr.Iatt) (xdr.Iatt, error) {
	if !f.Up() {
		return xdr.Iatt{}, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.names[name]; ok {
		return xdr.Iatt{}, &brick.OpError{Brick: f.name, Errno: syscall.EEXIST}
	}
	f.names[name] = st
	f.created = seq.Add(1)
	f.events = append(f.events, "create "+name)
	return st, nil
}

// against is what child f's changelog holds against child k, per slot.
func (f *fakeChild) against(k string) counts {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.xattrs["trusted.afr."+k]
}

func setRmdirErr(f *fakeChild, en syscall.Errno) {
	f.mu.Lock()
	f.rmdirErr = &brick.OpError{Brick: f.name, Fop: "RMDIR", Errno: en}
	f.mu.Unlock()
}

// An rmdir two bricks of three refuse as ENOTEMPTY fails, and the two
// blame the brick that removed the directory, so a heal puts it back
// there instead of leaving the copies different with nothing marked.
func TestRmdirRefusedByMajorityMarksTheBrickThatTookIt(t *testing.T) {
	r, f := newTestReplica(t)
	setRmdirErr(f[1], syscall.ENOTEMPTY)
	setRmdirErr(f[2], syscall.ENOTEMPTY)
	if err := r.Rmdir(context.Background(), xdr.RootGFID, "d"); brick.Errno(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir refused by 2 of 3: %v, want ENOTEMPTY", err)
	}
	for _, c := range f[1:] {
		if got := c.against("v-client-0"); got[slotEntry] != 1 {
			t.Errorf("%s blames v-client-0 %v, want one entry change", c.name, got)
		}
	}
	for _, k := range []string{"v-client-1", "v-client-2"} {
		for _, c := range f {
			if got := c.against(k); got != (counts{}) {
				t.Errorf("%s blames %s %v; it refused the rmdir, it missed nothing", c.name, k, got)
			}
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
	if err := r.Rmdir(context.Background(), xdr.RootGFID, "d"); err != nil {
		t.Fatalf("rmdir refused by 1 of 3: %v, want success", err)
	}
	for _, c := range f[:2] {
		if got := c.against("v-client-2"); got[slotEntry] != 1 {
			t.Errorf("%s blames v-client-2 %v, want one entry change", c.name, got)
		}
	}
}

// An entry change that only one brick took because the others lost
// their connection fails for lack of quorum, accuses nobody (nobody
// answered otherwise), and leaves the parent dirty where it was taken.
func TestEntryChangeCutShortByConnectionsLeavesDirty(t *testing.T) {
	r, f := newTestReplica(t)
	setRmdirErr(f[1], syscall.ENOTCONN)
	setRmdirErr(f[2], syscall.ENOTCONN)
	if err := r.Rmdir(context.Background(), xdr.RootGFID, "d"); brick.Errno(err) != syscall.ENOTCONN {
		t.Fatalf("rmdir taken by 1 of 3: %v, want ENOTCONN", err)
	}
	f[0].mu.Lock()
	dirty := f[0].xattrs[dirtyKey]
	f[0].mu.Unlock()
	if dirty[slotEntry] != 1 {
		t.Errorf("parent dirty on the brick that took the change: %v, want one entry change", dirty)
	}
	for _, c := range f {
		for _, k := range []string{"v-client-0", "v-client-1", "v-client-2"} {
			if got := c.against(k); got != (counts{}) {
				t.Errorf("%s blames %s %v after a change cut short by connections", c.name, k, got)
			}
		}
	}
}

// The entry heal recreating a missing file on a sink first marks it on
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
		if _, ok := f[2].names["x"]; !ok {
			t.Fatalf("mode %o: x not recreated on the sink", tc.mode)
		}
		for _, c := range f[:2] {
			if got := c.against("v-client-2"); got != tc.want {
				t.Errorf("mode %o: %s marks v-client-2 %v, want %v", tc.mode, c.name, got, tc.want)
			}
			c.mu.Lock()
			marked := c.markedAt
			c.mu.Unlock()
			if marked <= before || marked > f[2].created {
				t.Errorf("mode %o: %s marked at %d, sink created at %d: want the mark first", tc.mode, c.name, marked, f[2].created)
			}
		}
	}
}
