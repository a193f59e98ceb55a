package afr

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// memReplica is a replica set over three in-memory bricks; its heal worker
// does not run (tests call the heals themselves).
func memReplica(t *testing.T) (*Replicate, []*foptest.Mem) {
	t.Helper()
	return memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: 5 * time.Second})
}

func memReplicaWith(t *testing.T, o ReplicateOptions) (*Replicate, []*foptest.Mem) {
	t.Helper()
	return memReplicaN(t, 3, o)
}

// The fop contract holds for a replica set over three bricks.
func TestReplicateContract(t *testing.T) {
	r, mems := memReplica(t)
	foptest.Contract(t, r)
	// And every brick ends as the contract left the volume: empty.
	for _, m := range mems {
		if n := m.Names(foptest.RootGFID); len(n) != 0 {
			t.Errorf("%s holds %v", m.Name(), n)
		}
	}
}

// A fop that got the fd before its release does not open it on a child
// that came back meanwhile: that brick fd would never be released.
func TestNoChildOpenAfterRelease(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	mems[2].SetDown(true)
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(false)
	rf, err := r.rfd(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	opens := mems[2].Calls("OPEN")
	if _, err := r.child(ctx, rf, 2); fop.Errno(err) != syscall.EBADF {
		t.Errorf("opening a released fd on a child: %v, want EBADF", err)
	}
	if n := mems[2].Calls("OPEN") - opens; n != 0 {
		t.Errorf("%d OPENs reached the child after the release", n)
	}
	if _, _, err := r.Read(ctx, f, 0, 1, nil); fop.Errno(err) != syscall.EBADF {
		t.Errorf("read after release: %v, want EBADF", err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Errorf("a second release: %v", err)
	}
}

// Writes made while a brick is down are marked against it on the others,
// and healData makes its copy equal and clears the marks.
func TestDataHealOverMem(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(true)
	r.ChildEvent(2, false)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("AFTER!"), nil); err != nil {
		t.Fatalf("write with 2 of 3 bricks: %v", err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	r.postOpNow(r.inode(foptest.GFID(1)))
	key := "trusted.afr.v-client-2"
	for _, m := range mems[:2] {
		if b, _ := m.Xattr(foptest.GFID(1), key); len(b) < 4 || b[3] == 0 {
			t.Errorf("%s does not blame client-2 for the data: %s=%x", m.Name(), key, b)
		}
	}
	mems[2].SetDown(false)
	r.ChildEvent(2, true)
	if d, _ := mems[2].Data(foptest.GFID(1)); string(d) != "before" {
		t.Fatalf("the brick that was down holds %q before the heal", d)
	}
	healed, err := r.healData(ctx, foptest.GFID(1))
	if err != nil || !healed {
		t.Fatalf("healData: %v, %v", healed, err)
	}
	for _, m := range mems {
		if d, _ := m.Data(foptest.GFID(1)); string(d) != "AFTER!" {
			t.Errorf("%s holds %q after the heal, want AFTER!", m.Name(), d)
		}
		for _, k := range []string{"trusted.afr.v-client-0", "trusted.afr.v-client-1", key} {
			if b, ok := m.Xattr(foptest.GFID(1), k); ok {
				if c, _ := parseCounts(b); c != (counts{}) {
					t.Errorf("%s: %s=%x after the heal, want zeros", m.Name(), k, b)
				}
			}
		}
	}
}

var _ Child = (*foptest.Mem)(nil)

// allZero reports whether every trusted.afr.* and the dirty xattr of g on
// m are zero (or absent).
func allZero(t *testing.T, m *foptest.Mem, g xdr.GFID) bool {
	t.Helper()
	for _, k := range []string{"trusted.afr.v-client-0", "trusted.afr.v-client-1", "trusted.afr.v-client-2", "trusted.afr.dirty"} {
		if b, ok := m.Xattr(g, k); ok {
			if c, _ := parseCounts(b); c != (counts{}) {
				t.Logf("%s: %s=%x", m.Name(), k, b)
				return false
			}
		}
	}
	return true
}

// A chmod made while a brick is down is marked against it and healMeta
// gives it the new mode.
func TestMetaHealOverMem(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	g := foptest.GFID(1)
	if _, _, err := r.Mknod(ctx, foptest.RootGFID, "f", syscall.S_IFREG|0o644, 0, 0, g, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Lookup(ctx, foptest.RootGFID, "f", xdr.GFID{}, nil); err != nil {
		t.Fatal(err)
	}
	mems[1].SetDown(true)
	r.ChildEvent(1, false)
	if _, _, _, err := r.Setattr(ctx, g, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Fatalf("chmod with 2 of 3 bricks: %v", err)
	}
	if allZero(t, mems[0], g) {
		t.Fatalf("the chmod missed brick 1 and nothing says so")
	}
	mems[1].SetDown(false)
	r.ChildEvent(1, true)
	if st, _, _ := mems[1].Stat(ctx, g, nil); st.Mode != syscall.S_IFREG|0o644 {
		t.Fatalf("brick 1 already has mode %o", st.Mode)
	}
	if healed, err := r.healMeta(ctx, g); err != nil || !healed {
		t.Fatalf("healMeta: %v, %v", healed, err)
	}
	for _, m := range mems {
		if st, _, _ := m.Stat(ctx, g, nil); st.Mode != syscall.S_IFREG|0o600 {
			t.Errorf("%s: mode %o after the heal, want 100600", m.Name(), st.Mode)
		}
		if !allZero(t, m, g) {
			t.Errorf("%s still holds marks after the heal", m.Name())
		}
	}
}

// Names made and removed while a brick is down are marked on the parent;
// healEntries makes the brick's directory match (the new file recreated
// with its gfid and data, the removed one removed) and clears the marks.
func TestEntryHealOverMem(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	if _, _, err := r.Mknod(ctx, foptest.RootGFID, "old", syscall.S_IFREG|0o644, 0, 0, foptest.GFID(1), nil); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(true)
	r.ChildEvent(2, false)
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "new", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(2), nil)
	if err != nil {
		t.Fatalf("create with 2 of 3 bricks: %v", err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("made while brick 2 was down"), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	r.postOpNow(r.inode(foptest.GFID(2)))
	if _, err := r.Unlink(ctx, foptest.RootGFID, "old", nil); err != nil {
		t.Fatalf("unlink with 2 of 3 bricks: %v", err)
	}
	if _, _, err := r.Mkdir(ctx, foptest.RootGFID, "dir", 0o755, 0, foptest.GFID(3), nil); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(false)
	r.ChildEvent(2, true)
	if got := strings.Join(mems[2].Names(foptest.RootGFID), " "); got != "old" {
		t.Fatalf("brick 2 lists %q before the heal", got)
	}
	r.healEntries(ctx)
	for _, m := range mems {
		if got := strings.Join(m.Names(foptest.RootGFID), " "); got != "dir new" {
			t.Errorf("%s lists %q after the entry heal, want \"dir new\"", m.Name(), got)
		}
	}
	// The recreated file is marked for data and metadata heals; run them.
	if healed, err := r.healData(ctx, foptest.GFID(2)); err != nil || !healed {
		t.Fatalf("healData of the recreated file: %v, %v", healed, err)
	}
	// healData ends with the eager data lock still held for the delayed
	// post-op, which a metadata heal would wait for: end it now.
	r.postOpNow(r.inode(foptest.GFID(2)))
	if healed, err := r.healMeta(ctx, foptest.GFID(2)); err != nil || !healed {
		t.Fatalf("healMeta of the recreated file: %v, %v", healed, err)
	}
	for _, m := range mems {
		if d, _ := m.Data(foptest.GFID(2)); string(d) != "made while brick 2 was down" {
			t.Errorf("%s: new holds %q", m.Name(), d)
		}
		for _, g := range []xdr.GFID{foptest.RootGFID, foptest.GFID(2)} {
			if !allZero(t, m, g) {
				t.Errorf("%s: marks left on %v after the heals", m.Name(), g)
			}
		}
	}
}

// A file open but unlinked still reads and stats through its fd after a
// brick event made the replica set look its readable copies up again: the
// refresh goes through the fd (a brick has no gfid handle left for it).
func TestUnlinkedOpenFileReadsAfterChildEvent(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("still here"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Unlink(ctx, foptest.RootGFID, "f", nil); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(true) // a child event: what was readable must be asked again
	mems[2].SetDown(false)
	got, _, err := r.Read(ctx, f, 0, 100, nil)
	if err != nil || string(got) != "still here" {
		t.Fatalf("read of the unlinked open file after a child event: %q, %v", got, err)
	}
	if st, _, err := r.Fstat(ctx, f, nil); err != nil || st.Size != 10 {
		t.Errorf("fstat of the unlinked open file: size %d, %v", st.Size, err)
	}
}

// Create without O_EXCL over a name that bricks hold as different files
// fails with EIO instead of opening a different file on each brick.
func TestCreateOverGfidSplitBrain(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	for i, m := range mems {
		f, _, _, err := m.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(byte(10+i%2)), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Release(ctx, f)
	}
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR|syscall.O_CREAT), 0o644, 0, foptest.GFID(1), nil)
	if fop.Errno(err) != syscall.EIO {
		if f != nil {
			_ = r.Release(ctx, f)
		}
		t.Fatalf("create over a gfid split-brain: %v, want EIO", err)
	}
	// Over a name every brick holds as one file, it opens that file.
	for _, m := range mems {
		_, _ = m.Unlink(ctx, foptest.RootGFID, "f", nil)
		g, _, _, err := m.Create(ctx, foptest.RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(20), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = m.Release(ctx, g)
	}
	f, st, _, err := r.Create(ctx, foptest.RootGFID, "g", uint32(syscall.O_RDWR|syscall.O_CREAT), 0o644, 0, foptest.GFID(2), nil)
	if err != nil || st.GFID != foptest.GFID(20) {
		t.Fatalf("create of an existing name: gfid %v, %v; want the existing file's", st.GFID, err)
	}
	_ = r.Release(ctx, f)
}

// A data heal gives its lock up when it is done, so the metadata heal of
// the same file right after it runs at once instead of finding the lock
// busy for post-op-delay (and waiting a worker round of 10 s).
func TestMetaHealRightAfterDataHeal(t *testing.T) {
	r, mems := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	mems[2].SetDown(true)
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("data to heal"), nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Setattr(ctx, foptest.GFID(1), &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(false)
	// The entry heal makes the file on the returning brick first.
	r.healEntries(ctx)
	if done, err := r.healData(ctx, foptest.GFID(1)); !done || err != nil {
		t.Fatalf("data heal: done %v, %v", done, err)
	}
	if done, err := r.healMeta(ctx, foptest.GFID(1)); !done || err != nil {
		t.Fatalf("metadata heal right after the data heal: done %v, %v", done, err)
	}
	if got, _ := mems[2].Data(foptest.GFID(1)); string(got) != "data to heal" {
		t.Errorf("healed data %q", got)
	}
	if st, _, err := mems[2].Stat(ctx, foptest.GFID(1), nil); err != nil || st.Mode&0o777 != 0o600 {
		t.Errorf("healed mode %o, %v", st.Mode, err)
	}
}

// A write whose request a brick never gets (a silent network) is answered
// once the others have it and the fop timeout passed: that brick is
// dropped (kicked) and accused on the others before the write is
// acknowledged, and its copy is not read from.
func TestWriteLostOnOneBrick(t *testing.T) {
	r, mems := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	mems[2].Drop("WRITE", true)
	if _, _, _, err := r.Write(ctx, f, 0, []byte("two of three"), nil); err != nil {
		t.Fatalf("write with one brick losing it: %v", err)
	}
	// The write may go on without it (cut for lagging) before its call
	// times out: the drop follows.
	eventually(t, 5*time.Second, "the brick that never answered to be dropped", func() bool { return len(mems[2].Kicks()) > 0 })
	for i := 0; i < 2; i++ {
		b, ok := mems[i].Xattr(foptest.GFID(1), "trusted.afr.v-client-2")
		if !ok || len(b) < 4 || b[3] == 0 {
			t.Errorf("brick %d does not accuse brick 2 for data: %x", i, b)
		}
	}
	mems[2].Drop("WRITE", false)
	for n := 0; n < 5; n++ {
		if got, _, err := r.Read(ctx, f, 0, 100, nil); err != nil || string(got) != "two of three" {
			t.Fatalf("read after the lost write: %q, %v", got, err)
		}
	}
}

// A file unlinked and made again while a brick was away: the brick still
// holds the old file under the name, but its copy of the directory is
// stale, so the create follows the others, leaves that brick out of the
// fd and heals it, instead of failing with EIO.
func TestCreateOverANameOnlyAStaleBrickHolds(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(10), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Release(ctx, f)
	mems[0].SetDown(true)
	if _, err := r.Unlink(ctx, foptest.RootGFID, "f", nil); err != nil {
		t.Fatal(err)
	}
	mems[0].SetDown(false)
	if _, _, err := r.Lookup(ctx, foptest.RootGFID, "f", xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOENT {
		t.Fatalf("lookup of the unlinked name: %v, want ENOENT", err)
	}
	f, st, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR|syscall.O_CREAT), 0o644, 0, foptest.GFID(11), nil)
	if err != nil || st.GFID != foptest.GFID(11) {
		t.Fatalf("create again: gfid %v, %v; want the new file", st.GFID, err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("new"), nil); err != nil {
		t.Fatal(err)
	}
	_ = r.Release(ctx, f)
	if got, _ := mems[0].Data(foptest.GFID(10)); len(got) != 0 {
		t.Errorf("the write reached the old file on the stale brick: %q", got)
	}
	r.healEntries(ctx)
	if st, _, err := mems[0].Lookup(ctx, foptest.RootGFID, "f", xdr.GFID{}, nil); err != nil || st.GFID != foptest.GFID(11) {
		t.Errorf("after heal the stale brick holds f as %v, %v; want the new file", st.GFID, err)
	}
}

// A listing served by the arbiter (the other bricks refused it) gives no
// file attributes: the arbiter's copies hold no data, so their size is
// wrong, and the kernel would cache it from READDIRPLUS.
func TestArbiterReaddirpNoFileAttrs(t *testing.T) {
	r, mems := memReplicaWith(t, ReplicateOptions{Arbiter: 2, PostOpDelay: 10 * time.Millisecond, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "disk", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, make([]byte, 8192), nil); err != nil {
		t.Fatal(err)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Mkdir(ctx, foptest.RootGFID, "sub", 0o755, 0, foptest.GFID(2), nil); err != nil {
		t.Fatal(err)
	}
	// Another client, which has not seen the file yet, lists the
	// directory.
	kids := make([]Child, len(mems))
	names := make([]string, len(mems))
	for i, m := range mems {
		kids[i], names[i] = m, m.Name()
	}
	r, err = NewReplicate("v-replicate-0", kids, names, ReplicateOptions{Arbiter: 2, PostOpDelay: 10 * time.Millisecond, FopTimeout: 5 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	mems[0].Refuse("READDIRP", syscall.EIO)
	mems[1].Refuse("READDIRP", syscall.EIO)
	d, _, err := r.Opendir(ctx, foptest.RootGFID, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, d)
	ents, _, _, err := r.Readdirp(ctx, d, 0, 4096, nil)
	if err != nil {
		t.Fatalf("readdirp from the arbiter: %v", err)
	}
	seen := 0
	for _, e := range ents {
		switch e.Name {
		case "disk":
			seen++
			if !e.Stale {
				t.Errorf("the arbiter's listing gives disk size %d as fresh; want it marked stale", e.Stat.Size)
			}
		case "sub":
			seen++
			if e.Stat.GFID != foptest.GFID(2) {
				t.Errorf("a directory's attributes from the arbiter were dropped")
			}
		}
	}
	if seen != 2 {
		t.Errorf("listing %v", ents)
	}
}

// Drain ends an idle eager lock at once, with its post-op: a replica set
// leaving the graph leaves no lock in its domain behind and no dirty
// mark, though its post-op delay is an hour.
func TestDrainEndsEagerLocks(t *testing.T) {
	r, mems := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("data"), nil); err != nil {
		t.Fatal(err)
	}
	other := internal(ctx, newOwner())
	try := func() error {
		_, err := mems[0].Inodelk(other, foptest.GFID(1), r.Name(), fop.LkSet, dataRange, nil)
		if err == nil {
			_, _ = mems[0].Inodelk(other, foptest.GFID(1), r.Name(), fop.LkSet, unlockOf(dataRange), nil)
		}
		return err
	}
	if err := try(); err == nil {
		t.Fatal("no eager lock held after a write (the test shows nothing)")
	}
	r.Drain()
	if err := try(); err != nil {
		t.Fatalf("the eager lock is still held after Drain: %v", err)
	}
	for i, m := range mems {
		if !allZero(t, m, foptest.GFID(1)) {
			t.Errorf("brick %d still marked after Drain", i)
		}
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
}

// A closed replica set (one that left the graph; its bricks' clients live
// on under its successor and still call its watchers) queues nothing.
func TestClosedIgnoresChildEvents(t *testing.T) {
	r, _ := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: 5 * time.Second})
	r.Close()
	queued := func() int {
		r.watchMu.Lock()
		defer r.watchMu.Unlock()
		return len(r.events)
	}
	before, gen := queued(), r.gen.Load()
	for range 100 {
		r.ChildEvent(0, false)
		r.ChildEvent(0, true)
	}
	if n := queued() - before; n > 0 { // the delivery goroutine may still take some
		t.Errorf("a closed replica set queued %d events", n)
	}
	if g := r.gen.Load(); g != gen {
		t.Errorf("a closed replica set took %d child events", g-gen)
	}
}

// A shard size update (the xattrop the shard layer sends) made while a
// brick is down is healed like any metadata: the brick gets the size
// xattr, and one it never had (its base file made by an entry heal).
func TestMetaHealCopiesShardXattrs(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	g := foptest.GFID(1)
	if _, _, err := r.Mknod(ctx, foptest.RootGFID, "f", syscall.S_IFREG|0o644, 0, 0, g, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Lookup(ctx, foptest.RootGFID, "f", xdr.GFID{}, nil); err != nil {
		t.Fatal(err)
	}
	const sizeKey, blockKey = "trusted.glusterfs.shard.file-size", "trusted.glusterfs.shard.block-size"
	mems[1].SetDown(true)
	r.ChildEvent(1, false)
	size := make([]byte, 32)
	size[7] = 0x10 // 4096 bytes
	size[23] = 8   // 8 blocks
	if _, _, err := r.Xattrop(ctx, g, fop.XattropAddArray64, xdr.Dict{{Key: sizeKey, Value: xdr.Ptr(size)}}, nil); err != nil {
		t.Fatalf("size update with 2 of 3 bricks: %v", err)
	}
	if _, err := r.Setxattr(ctx, g, xdr.Dict{{Key: blockKey, Value: xdr.Ptr([]byte{0, 0, 0, 0, 4, 0, 0, 0})}}, 0, nil); err != nil {
		t.Fatalf("block size with 2 of 3 bricks: %v", err)
	}
	mems[1].SetDown(false)
	r.ChildEvent(1, true)
	if _, ok := mems[1].Xattr(g, sizeKey); ok {
		t.Fatalf("brick 1 already has the size")
	}
	if healed, err := r.healMeta(ctx, g); err != nil || !healed {
		t.Fatalf("healMeta: %v, %v", healed, err)
	}
	want, _ := mems[0].Xattr(g, sizeKey)
	for _, m := range mems {
		if got, ok := m.Xattr(g, sizeKey); !ok || string(got) != string(want) {
			t.Errorf("%s: %s %x (%v) after the heal, want %x", m.Name(), sizeKey, got, ok, want)
		}
		if got, ok := m.Xattr(g, blockKey); !ok || len(got) != 8 || got[4] != 4 {
			t.Errorf("%s: %s %x (%v) after the heal", m.Name(), blockKey, got, ok)
		}
		if !allZero(t, m, g) {
			t.Errorf("%s still holds marks after the heal", m.Name())
		}
	}
}

// Distribute's xattrs changed while a brick is down reach it in the heal,
// as GlusterFS AFR heals them: a linkto file's target, a directory's
// layout and mds key, and a linkto key the source no longer has (a file
// whose migration ended) taken away. What the heal never touches (here
// the ctime translator's mdata, which posix hides from brickfs's pid, and
// a quota contribution, the marker's own, set on the sink alone) stays.
func TestMetaHealCopiesDHTXattrs(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, d, moved := foptest.GFID(1), foptest.GFID(2), foptest.GFID(3)
	const linkto, layout, mds = "trusted.glusterfs.dht.linkto", "trusted.glusterfs.dht", "trusted.glusterfs.dht.mds"
	if _, _, err := r.Mknod(ctx, foptest.RootGFID, "f", syscall.S_IFREG|0o1000, 0, 0, f, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Mkdir(ctx, foptest.RootGFID, "d", 0o755, 0, d, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Mknod(ctx, foptest.RootGFID, "moved", syscall.S_IFREG|0o1000, 0, 0, moved, nil); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"f", "d", "moved"} {
		if _, _, err := r.Lookup(ctx, foptest.RootGFID, n, xdr.GFID{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Setxattr(ctx, moved, xdr.Dict{{Key: linkto, Value: xdr.Ptr([]byte("vol-replicate-0\x00"))}}, 0, nil); err != nil {
		t.Fatal(err)
	}
	private := map[string]string{
		"trusted.glusterfs.mdata": "ctime of brick 1",
		"trusted.glusterfs.quota.00000000-0000-0000-0000-000000000001.contri.1": "brick 1's count",
	}
	mems[1].SetDown(true)
	r.ChildEvent(1, false)
	set := map[xdr.GFID]xdr.Dict{
		f: {{Key: linkto, Value: xdr.Ptr([]byte("vol-replicate-1\x00"))}},
		d: {
			{Key: layout, Value: xdr.Ptr([]byte{0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})},
			{Key: mds, Value: xdr.Ptr([]byte{0, 0, 0, 0})},
		},
	}
	for g, x := range set {
		if _, err := r.Setxattr(ctx, g, x, 0, nil); err != nil {
			t.Fatalf("setxattr with 2 of 3 bricks: %v", err)
		}
	}
	if _, err := r.Removexattr(ctx, moved, linkto, nil); err != nil {
		t.Fatalf("removexattr with 2 of 3 bricks: %v", err)
	}
	mems[1].SetDown(false)
	r.ChildEvent(1, true)
	for k, v := range private {
		if _, err := mems[1].Setxattr(ctx, f, xdr.Dict{{Key: k, Value: xdr.Ptr([]byte(v))}}, 0, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []xdr.GFID{f, d, moved} {
		if healed, err := r.healMeta(ctx, g); err != nil || !healed {
			t.Fatalf("healMeta %s: %v, %v", g, healed, err)
		}
	}
	for _, m := range mems {
		for g, x := range set {
			for _, p := range x {
				if got, ok := m.Xattr(g, p.Key); !ok || string(got) != string(p.Value.Bytes) {
					t.Errorf("%s: %s on %s %q (%v) after the heal, want %q", m.Name(), p.Key, g, got, ok, p.Value.Bytes)
				}
			}
		}
		if got, ok := m.Xattr(moved, linkto); ok {
			t.Errorf("%s: %s %q after the heal; the source has none", m.Name(), linkto, got)
		}
	}
	for k, v := range private {
		if got, ok := mems[1].Xattr(f, k); !ok || string(got) != v {
			t.Errorf("%s: the heal changed the brick's own %s: %q (%v)", mems[1].Name(), k, got, ok)
		}
		if _, ok := mems[0].Xattr(f, k); ok {
			t.Errorf("%s got brick 1's own %s", mems[0].Name(), k)
		}
	}
}

func TestInternalXattr(t *testing.T) {
	for k, want := range map[string]bool{
		"trusted.afr.vol-client-0":                           true,
		"trusted.afr.dirty":                                  true,
		"trusted.gfid":                                       true,
		"trusted.glusterfs.volume-id":                        true,
		"trusted.glusterfs.mdata":                            true,
		"trusted.glusterfs.quota.size.1":                     true,
		"trusted.glusterfs.quota.limit-set":                  false,
		"trusted.glusterfs.quota.dirty":                      true,
		"trusted.gfid2path.a1b2c3d4e5f60718":                 true,
		"trusted.pgfid.00000000-0000-0000-0000-000000000001": true,
		"trusted.glusterfs.0a1b.xtime":                       true,
		"trusted.glusterfs.0a1b.0c2d.stime":                  true,
		"security.selinux":                                   true,
		"trusted.glusterfs.dht":                              false,
		"trusted.glusterfs.dht.linkto":                       false,
		"trusted.glusterfs.dht.mds":                          false,
		"trusted.glusterfs.dht.commithash":                   false,
		"trusted.glusterfs.shard.file-size":                  false,
		"trusted.glusterfs.shard.block-size":                 false,
		"user.comment":                                       false,
		"system.posix_acl_access":                            false,
	} {
		if got := internalXattr(k); got != want {
			t.Errorf("internalXattr(%q) = %v, want %v", k, got, want)
		}
	}
}
