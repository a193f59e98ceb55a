package afr

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

func owner(name string) context.Context {
	return fop.WithCaller(context.Background(), &fop.Caller{LkOwner: []byte(name)})
}

// A parent's inode lock through the replica set: a conflict on one brick
// undoes what the others granted; a blocking lock waits and then holds on
// every brick; the replica set's own domain is refused; without quorum
// nothing is locked.
func TestParentInodelk(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	const dom = "dht.layout.heal"
	all := xdr.Flock{Type: fop.LkWrite}
	free := func(i int) bool { // whether a third owner could lock brick i
		_, err := mems[i].Inodelk(owner("probe"), foptest.GFID(1), dom, fop.LkSet, all, nil)
		if err == nil {
			_, _ = mems[i].Inodelk(owner("probe"), foptest.GFID(1), dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil)
		}
		return err == nil
	}
	// Another client holds the lock on brick 1 only.
	if _, err := mems[1].Inodelk(owner("other"), foptest.GFID(1), dom, fop.LkSet, all, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Inodelk(owner("a"), foptest.GFID(1), dom, fop.LkSet, all, nil); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("non-blocking lock against a holder: %v, want EAGAIN", err)
	}
	if !free(0) || !free(2) {
		t.Fatal("a refused lock was left held on the bricks that granted it")
	}
	got := make(chan error, 1)
	go func() {
		_, err := r.Finodelk(owner("a"), f, dom, fop.LkSetW, all, nil)
		got <- err
	}()
	// The blocking lock waits for brick 1: it cannot finish before the
	// holder lets go.
	select {
	case err := <-got:
		t.Fatalf("blocking lock returned %v while another client held it", err)
	case <-time.After(50 * time.Millisecond):
	}
	if _, err := mems[1].Inodelk(owner("other"), foptest.GFID(1), dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("blocking lock after the holder let go: %v", err)
	}
	for i := range mems {
		if free(i) {
			t.Errorf("brick %d: the granted lock is not held", i)
		}
	}
	if _, err := r.Inodelk(owner("a"), foptest.GFID(1), dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatal(err)
	}
	for i := range mems {
		if !free(i) {
			t.Errorf("brick %d: still locked after the unlock", i)
		}
	}
	if _, err := r.Inodelk(owner("a"), foptest.GFID(1), r.Name(), fop.LkSet, all, nil); fop.Errno(err) != syscall.EINVAL {
		t.Errorf("a lock in the replica set's own domain: %v, want EINVAL", err)
	}
	mems[0].SetDown(true)
	mems[1].SetDown(true)
	if _, err := r.Inodelk(owner("a"), foptest.GFID(1), dom, fop.LkSet, all, nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("lock without quorum: %v, want ENOTCONN", err)
	}
	if !free(2) {
		t.Error("a lock refused for quorum was left held")
	}
}

// Two parents' blocking entry locks on one name, from both ends of the
// replica set's children, never deadlock: both get it in turn.
func TestParentEntrylkNoDeadlock(t *testing.T) {
	r, _ := memReplica(t)
	const dom = "dht.entry.sync"
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			ctx := owner(string(rune('a' + c)))
			for i := 0; i < 10; i++ {
				if _, err := r.Entrylk(ctx, foptest.RootGFID, "n", dom, fop.EntrylkLock, fop.LkWrite, nil); err != nil {
					errs <- err
					return
				}
				if _, err := r.Entrylk(ctx, foptest.RootGFID, "n", dom, fop.EntrylkUnlock, fop.LkWrite, nil); err != nil {
					errs <- err
					return
				}
			}
		}(c)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("four clients locking one name deadlocked")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The replica set is up while client quorum holds and tells its watchers
// when that changes, once per change.
func TestWatchQuorum(t *testing.T) {
	r, mems := memReplica(t)
	events := make(chan bool, 10)
	r.Watch(func(up bool) {
		events <- up
		// A watcher may call back into the replica set.
		_ = r.Up()
		r.Watch(func(bool) {})
	})
	if !r.Up() || r.Name() != "v-replicate-0" || r.QuorumText() != "auto (2 of 3)" {
		t.Fatalf("up %v name %q quorum %q", r.Up(), r.Name(), r.QuorumText())
	}
	next := func() bool {
		select {
		case up := <-events:
			return up
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
			return false
		}
	}
	if !next() {
		t.Fatal("a new watcher first hears the replica set is down")
	}
	mems[0].SetDown(true) // two of three: still up
	mems[1].SetDown(true) // one: down
	if next() {
		t.Error("quorum lost, the watcher heard up")
	}
	mems[1].SetDown(false)
	mems[0].SetDown(false)
	if !next() {
		t.Error("quorum back, the watcher heard down")
	}
	select {
	case up := <-events:
		t.Errorf("an event without a change: %v", up)
	case <-time.After(50 * time.Millisecond):
	}
	r.SetQuorum(3)
	if r.QuorumText() != "fixed at 3 of 3" {
		t.Errorf("quorum %q", r.QuorumText())
	}
	r.SetQuorum(-1)
	if r.QuorumText() != "none" {
		t.Errorf("quorum %q", r.QuorumText())
	}
}

// The heal worker, started by a brick's return, heals what was written
// while it was away, and the queue drains.
func TestHealWorkerDrains(t *testing.T) {
	mems := make([]*foptest.Mem, 3)
	kids := make([]Child, 3)
	names := make([]string, 3)
	for i := range mems {
		names[i] = "v-client-" + string(rune('0'+i))
		mems[i] = foptest.NewMem(names[i])
		kids[i] = mems[i]
	}
	r, err := NewReplicate("v-replicate-0", kids, names, ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: 5 * time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	mems[2].SetDown(true)
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("healed by the worker"), nil); err != nil {
		t.Fatal(err)
	}
	_ = r.Release(ctx, f)
	if r.HealPending() == 0 {
		t.Fatal("nothing queued for heal after a write that missed a brick")
	}
	mems[2].SetDown(false) // the child event kicks the worker
	deadline := time.Now().Add(20 * time.Second)
	for r.HealPending() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := r.HealPending(); n > 0 {
		t.Fatalf("%d left to heal after 20 s", n)
	}
	if got, _ := mems[2].Data(foptest.GFID(1)); string(got) != "healed by the worker" {
		t.Errorf("brick 2 holds %q", got)
	}
}

// An unlock goes out even when quorum is lost meanwhile: a lock left on
// the one brick still up would block every other client once the rest
// came back.
func TestParentUnlockWithoutQuorum(t *testing.T) {
	r, mems := memReplica(t)
	const dom = "dht.layout.heal"
	all := xdr.Flock{Type: fop.LkWrite}
	if _, err := r.Inodelk(owner("a"), foptest.RootGFID, dom, fop.LkSet, all, nil); err != nil {
		t.Fatal(err)
	}
	mems[1].SetDown(true)
	mems[2].SetDown(true)
	if _, err := r.Inodelk(owner("a"), foptest.RootGFID, dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatalf("unlock with one brick of three up: %v", err)
	}
	if _, err := mems[0].Inodelk(owner("b"), foptest.RootGFID, dom, fop.LkSet, all, nil); err != nil {
		t.Errorf("brick 0 still holds the lock after the unlock: %v", err)
	}
}

// A blocking lock whose caller gives up answers EINTR at once, and what a
// brick grants afterwards is released, not held by an owner that left.
func TestParentBlockingLockInterrupted(t *testing.T) {
	r, mems := memReplica(t)
	const dom = "dht.layout.heal"
	all := xdr.Flock{Type: fop.LkWrite}
	abandonBlockingLock(t, r, mems, dom)
	if _, err := mems[1].Inodelk(owner("other"), foptest.RootGFID, dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatal(err)
	}
	// The queued request is granted now and must be given back.
	deadline := time.Now().Add(10 * time.Second)
	for i := range mems {
		for {
			_, err := mems[i].Inodelk(owner("probe"), foptest.RootGFID, dom, fop.LkSet, all, nil)
			if err == nil {
				_, _ = mems[i].Inodelk(owner("probe"), foptest.RootGFID, dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("brick %d: the lock an interrupted caller asked for is still held", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// An xattrop answers the value of a brick whose metadata is good: a brick
// that missed an earlier add (shard's file size) holds a smaller sum.
func TestXattropAnswersFromGoodMetadata(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Release(ctx, f)
	add := func(n byte) xdr.Dict {
		return xdr.Dict{{Key: "trusted.glusterfs.shard.file-size", Value: xdr.Ptr([]byte{0, 0, 0, 0, 0, 0, 0, n})}}
	}
	mems[0].SetDown(true)
	if _, _, err := r.Xattrop(ctx, foptest.GFID(1), fop.XattropAddArray64, add(16), nil); err != nil {
		t.Fatal(err)
	}
	mems[0].SetDown(false)
	out, _, err := r.Xattrop(ctx, foptest.GFID(1), fop.XattropAddArray64, add(16), nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := out.Bytes("trusted.glusterfs.shard.file-size"); len(b) != 8 || b[7] != 32 {
		t.Errorf("second add answered %x, want the sum 32 (brick 0, which missed the first, holds 16)", b)
	}
}

// A brick this mount saw miss a write of the source, healed since by
// someone else (the self-heal daemon does not tell the mount), takes part
// in a copy again once every brick's changelog is clean: it is not
// accused for the destination (a reflink not made there would be healed
// as a full copy).
func TestCopyAfterAHealElsewhere(t *testing.T) {
	r, mems := memReplica(t)
	ctx := context.Background()
	src, _, _, err := r.Create(ctx, foptest.RootGFID, "src", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, src)
	dst, _, _, err := r.Create(ctx, foptest.RootGFID, "dst", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, dst)
	data := []byte("the source, on every brick")
	if _, _, _, err := r.Write(ctx, src, 0, data, nil); err != nil {
		t.Fatal(err)
	}
	// The writer goes (its post-op clears dirty); the copy reads through
	// a new fd.
	if err := r.Release(ctx, src); err != nil {
		t.Fatal(err)
	}
	if src, _, err = r.Open(ctx, foptest.GFID(1), uint32(syscall.O_RDONLY), nil); err != nil {
		t.Fatal(err)
	}
	// The mount remembers brick 2 as stale for the source...
	rf, err := r.rfd(src)
	if err != nil {
		t.Fatal(err)
	}
	ino := rf.ino
	ino.mu.Lock()
	ino.readable, ino.readGen = []bool{true, true, false}, r.gen.Load()
	ino.mu.Unlock()
	// ... and the bricks' changelogs are clean (healed elsewhere).
	if _, _, _, err := r.CopyFileRange(ctx, src, 0, dst, 0, uint64(len(data)), 0, nil); err != nil {
		t.Fatal(err)
	}
	for i := range mems {
		if got, _ := mems[i].Data(foptest.GFID(2)); string(got) != string(data) {
			t.Errorf("brick %d: the copy holds %q", i, got)
		}
	}
	if b, ok := mems[0].Xattr(foptest.GFID(2), "trusted.afr.v-client-2"); ok && len(b) >= 4 && b[3] != 0 {
		t.Errorf("brick 2 is accused for the destination: %x", b)
	}
}

// copy_file_range through the replica set: a brick whose copy of the
// source is stale takes no part and is accused for the destination; the
// copy goes in rounds; overlapping ranges of one file are refused.
func TestCopyFileRangeThroughReplica(t *testing.T) {
	r, mems := memReplica(t)
	defer func(was uint64) { copyRound = was }(copyRound)
	copyRound = 4096
	ctx := context.Background()
	src, _, _, err := r.Create(ctx, foptest.RootGFID, "src", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, src)
	dst, _, _, err := r.Create(ctx, foptest.RootGFID, "dst", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, dst)
	data := make([]byte, 3*4096+100)
	for i := range data {
		data[i] = byte(i * 7)
	}
	mems[2].SetDown(true) // brick 2 misses the source's data
	if _, _, _, err := r.Write(ctx, src, 0, data, nil); err != nil {
		t.Fatal(err)
	}
	mems[2].SetDown(false)
	n, post, _, err := r.CopyFileRange(ctx, src, 0, dst, 0, 1<<20, 0, nil)
	if err != nil || n != uint64(len(data)) || post.Size != uint64(len(data)) {
		t.Fatalf("copy: %d bytes, size %d, %v; want %d", n, post.Size, err, len(data))
	}
	for i := 0; i < 2; i++ {
		if got, _ := mems[i].Data(foptest.GFID(2)); string(got) != string(data) {
			t.Errorf("brick %d: the copy holds %d bytes, not the source's", i, len(got))
		}
	}
	if got, _ := mems[2].Data(foptest.GFID(2)); len(got) != 0 {
		t.Errorf("brick 2, whose source is stale, copied %d bytes", len(got))
	}
	if b, ok := mems[0].Xattr(foptest.GFID(2), "trusted.afr.v-client-2"); !ok || len(b) < 4 || b[3] == 0 {
		t.Errorf("the destination does not accuse brick 2 for data: %x", b)
	}
	if got, _, err := r.Read(ctx, dst, 0, uint32(len(data)), nil); err != nil || string(got) != string(data) {
		t.Errorf("read of the copy: %d bytes, %v", len(got), err)
	}
	if _, _, _, err := r.CopyFileRange(ctx, src, 0, src, 100, 200, 0, nil); fop.Errno(err) != syscall.EINVAL {
		t.Errorf("overlapping copy within one file: %v, want EINVAL", err)
	}
}

// A write answers the bricks' reply xdata without AFR's own question's
// answer (glusterfs.inodelk-count), and a caller's own dom-count key does
// not make AFR send the key twice. Another client waiting in AFR's domain
// makes the writer give its eager lock up.
func TestWriteXdata(t *testing.T) {
	r, mems := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	xd := xdr.Dict{{Key: "glusterfs.inodelk-dom-count", Value: xdr.Str("someone.else")}}
	_, _, rx, err := r.Write(ctx, f, 0, []byte("x"), xd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rx.Get("glusterfs.inodelk-count"); ok {
		t.Errorf("AFR's own inodelk count reached the caller: %v", rx)
	}
	if len(xd) != 1 {
		t.Errorf("the caller's xdata was changed: %v", xd)
	}

	// Another client queues for the data lock in AFR's domain; the next
	// write learns it from the bricks and gives the eager lock up at once.
	got := make(chan error, 1)
	go func() {
		_, err := mems[0].Inodelk(owner("other"), foptest.GFID(1), r.Name(), fop.LkSetW, xdr.Flock{Type: fop.LkWrite}, nil)
		got <- err
	}()
	for mems[0].Waiters() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, _, _, err := r.Write(ctx, f, 1, []byte("y"), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the eager lock was kept (post-op-delay is an hour) with another client waiting for it")
	}
}

// A copy within one file that waits behind a write, while a brick event
// has the file's eager lock taken again, completes (it held two ranges of
// one file before, each waiting for the other).
func TestCopyWithinOneFileAcrossABrickEvent(t *testing.T) {
	r, mems := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	if _, _, _, err := r.Write(ctx, f, 0, make([]byte, 8192), nil); err != nil {
		t.Fatal(err)
	}
	release := mems[0].Hang("WRITE")
	wrote := make(chan error, 1)
	go func() {
		_, _, _, err := r.Write(ctx, f, 8192, []byte("held"), nil)
		wrote <- err
	}()
	for mems[0].Calls("WRITE") < 2 {
		time.Sleep(time.Millisecond)
	}
	copied := make(chan error, 1)
	go func() {
		_, _, _, err := r.CopyFileRange(ctx, f, 0, f, 8192, 4096, 0, nil)
		copied <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the copy queue behind the write
	mems[2].SetDown(true)
	mems[2].SetDown(false)
	release()
	for _, ch := range []chan error{wrote, copied} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the write or the copy within one file never finished")
		}
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("after"), nil); err != nil {
		t.Fatalf("a write after the copy: %v", err)
	}
}

// After a caller gave up a blocking lock, the same owner's next request
// waits for the abandoned one to be granted and given back, so that
// give-back cannot release the new request's grants.
func TestParentLockAfterAbandonedRequest(t *testing.T) {
	r, mems := memReplica(t)
	const dom = "dht.layout.heal"
	all := xdr.Flock{Type: fop.LkWrite}
	abandonBlockingLock(t, r, mems, dom)
	if _, err := r.Inodelk(owner("a"), foptest.RootGFID, dom, fop.LkSet, all, nil); fop.Errno(err) != syscall.EAGAIN {
		t.Errorf("non-blocking retry while the abandoned request waits: %v, want EAGAIN", err)
	}
	retry := make(chan error, 1)
	go func() {
		_, err := r.Inodelk(owner("a"), foptest.RootGFID, dom, fop.LkSetW, all, nil)
		retry <- err
	}()
	if _, err := mems[1].Inodelk(owner("other"), foptest.RootGFID, dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-retry:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retry never got the lock")
	}
	for i := range mems {
		if _, err := mems[i].Inodelk(owner("probe"), foptest.RootGFID, dom, fop.LkSet, all, nil); fop.Errno(err) != syscall.EAGAIN {
			t.Errorf("brick %d: the retry's lock is not held (%v): the abandoned request's give-back released it", i, err)
		}
	}
}

// abandonBlockingLock has another owner hold dom's lock on the root on
// brick 1, then owner "a" ask for it blocking through the replica set and
// give up once the request is queued on brick 1: it must answer EINTR.
func abandonBlockingLock(t *testing.T, r *Replicate, mems []*foptest.Mem, dom string) {
	t.Helper()
	all := xdr.Flock{Type: fop.LkWrite}
	if _, err := mems[1].Inodelk(owner("other"), foptest.RootGFID, dom, fop.LkSet, all, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(owner("a"))
	got := make(chan error, 1)
	go func() {
		_, err := r.Inodelk(ctx, foptest.RootGFID, dom, fop.LkSetW, all, nil)
		got <- err
	}()
	// Queued on brick 1: a call counted there beyond the holder's and the
	// parallel try's.
	for mems[1].Calls("INODELK") < 3 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-got; fop.Errno(err) != syscall.EINTR {
		t.Fatalf("interrupted blocking lock: %v, want EINTR", err)
	}
}

// Another client waiting for the data lock closes the eager lock to new
// fops: they wait for the ones in flight, the lock goes to the other
// client, and they take it again after it. Without that, a writer whose
// fops overlap without a gap (a VM's queue) would keep the lock, and the
// other client (the self-heal daemon, another mount) would wait for as
// long as the stream lasts.
func TestContendedLockTakesNoNewFops(t *testing.T) {
	r, mems, f := eagerLockHeld(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	// A write of ours in flight all along, so the lock never goes idle.
	ino := r.inode(foptest.GFID(1))
	stream := [2]uint64{1 << 20, 4096}
	ino.mu.Lock()
	if !ino.held {
		ino.mu.Unlock()
		t.Fatal("the eager lock is not held after the first write")
	}
	ino.busy = append(ino.busy, stream)
	ino.mu.Unlock()

	dom := r.Name()
	other := make(chan error, 1)
	go func() {
		_, err := mems[0].Inodelk(owner("other"), foptest.GFID(1), dom, fop.LkSetW, xdr.Flock{Type: fop.LkWrite}, nil)
		other <- err
	}()
	for mems[0].Waiters() == 0 {
		time.Sleep(time.Millisecond)
	}
	// This write learns from the bricks that the other client waits.
	if _, _, _, err := r.Write(ctx, f, 8, []byte("learns"), nil); err != nil {
		t.Fatal(err)
	}
	joined := make(chan error, 1)
	go func() {
		_, _, _, err := r.Write(ctx, f, 16, []byte("later"), nil)
		joined <- err
	}()
	// The later write may not finish while our lock is held with the
	// other client waiting; give it the time to (it takes microseconds).
	select {
	case err := <-joined:
		t.Fatalf("a write joined the eager lock another client waits for (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	// The write in flight ends: the lock goes to the other client first.
	r.release(ino, stream[0], stream[1], false)
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other client did not get the lock after our last fop in flight ended")
	}
	select {
	case err := <-joined:
		t.Fatalf("the later write finished while the other client holds the lock (err %v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := mems[0].Inodelk(owner("other"), foptest.GFID(1), dom, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-joined:
		if err != nil {
			t.Fatalf("the later write, after the other client let go: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the later write did not finish after the other client let go")
	}
	if got, _, err := r.Read(ctx, f, 0, 21, nil); err != nil || string(got) != "first\x00\x00\x00learns\x00\x00later" {
		t.Errorf("read %q, %v", got, err)
	}
}

// The bricks count our own metadata lock beside the eager data lock (the
// same owner: it does not wait for it). A write during a chmod of its file
// must not take that for another client and give the eager lock up.
func TestOwnMetadataLockIsNotContention(t *testing.T) {
	r, mems, f := eagerLockHeld(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	ino := r.inode(foptest.GFID(1))
	cycle := ino.cycle.Load()
	// A chmod holds the metadata lock, its SETATTR hung on brick 0.
	release := mems[0].Hang("SETATTR")
	chmod := make(chan error, 1)
	go func() {
		_, _, _, err := r.Setattr(ctx, foptest.GFID(1), &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil)
		chmod <- err
	}()
	for mems[0].Calls("SETATTR") == 0 {
		time.Sleep(time.Millisecond)
	}
	fd0, _, err := mems[0].Open(ctx, foptest.GFID(1), uint32(syscall.O_RDWR), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, rx, err := mems[0].Write(ctx, fd0, 100, []byte("probe"), xdr.Dict{{Key: "glusterfs.inodelk-dom-count", Value: xdr.Str(r.Name())}}); err != nil {
		t.Fatal(err)
	} else if n, _ := rx.Uint(inodelkCount); n != 2 {
		t.Fatalf("brick 0 counts %d locks in AFR's domain during the chmod; the scenario needs 2 (eager lock and metadata lock)", n)
	}
	if _, _, _, err := r.Write(ctx, f, 8, []byte("during"), nil); err != nil {
		t.Fatal(err)
	}
	ino.mu.Lock()
	held, noJoin, releaseNow := ino.held, ino.noJoin, ino.releaseNow
	ino.mu.Unlock()
	if !held || noJoin || releaseNow || ino.cycle.Load() != cycle {
		t.Errorf("after a write during our own chmod: lock held %v, closed to new fops %v, to go at once %v, retaken %v; want it kept as it was",
			held, noJoin, releaseNow, ino.cycle.Load() != cycle)
	}
	release()
	if err := <-chmod; err != nil {
		t.Fatal(err)
	}
	for i := range ino.ownLocks {
		if n := ino.ownLocks[i].Load(); n != 0 {
			t.Errorf("after the chmod, %d of our own locks are still counted on brick %d", n, i)
		}
	}
}

// A brick's count of waiting lockers that comes in after the lock it
// was about was given up (a cut child's late reply) does not cost the
// next lock a needless unlock and retake.
func TestLateContentionAnswerIsIgnored(t *testing.T) {
	r, mems, f := eagerLockHeld(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Hour, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	ino := r.inode(foptest.GFID(1))
	old := ino.cycle.Load()
	r.postOpNow(ino) // the lock is given up
	r.contended(ino, 0, old, 2)
	locks := mems[0].Calls("INODELK")
	if _, _, _, err := r.Write(ctx, f, 8, []byte("next"), nil); err != nil {
		t.Fatal(err)
	}
	if got := mems[0].Calls("INODELK") - locks; got != 1 {
		t.Errorf("the next write sent %d INODELKs to brick 0; want 1 (the lock taken once)", got)
	}
	// The answer comes again, now while a newer lock is held.
	r.contended(ino, 0, old, 2)
	ino.mu.Lock()
	held, noJoin, releaseNow := ino.held, ino.noJoin, ino.releaseNow
	ino.mu.Unlock()
	if !held || noJoin || releaseNow {
		t.Errorf("after an answer about the old lock, with a new one held: held %v, closed to new fops %v, to go at once %v; want it held and open", held, noJoin, releaseNow)
	}
	locks = mems[0].Calls("INODELK")
	if _, _, _, err := r.Write(ctx, f, 16, []byte("joins"), nil); err != nil {
		t.Fatal(err)
	}
	if got := mems[0].Calls("INODELK") - locks; got != 0 {
		t.Errorf("a write after it sent %d INODELKs; want none (it joins the lock held)", got)
	}
}

// While a lagging brick holds back the unlock of our old lock, the count
// of our own locks on it does not hide another client waiting on the
// other bricks for the new one.
func TestHeldBackUnlockDoesNotHideAWaiter(t *testing.T) {
	o := lagOpts
	o.PostOpDelay = time.Hour
	r, mems, f := eagerLockHeld(t, o)
	ctx := context.Background()
	release := mems[2].Hang("WRITE")
	defer release()
	if _, _, _, err := r.Write(ctx, f, 0, []byte("cut"), nil); err != nil {
		t.Fatal(err)
	}
	if !r.lagging()[2] {
		t.Fatal("brick 2 is not lagging: the scenario did not happen")
	}
	ino := r.inode(foptest.GFID(1))
	r.postOpNow(ino) // the unlock on brick 2 is held back
	if n := ino.ownLocks[2].Load(); n != 1 {
		t.Fatalf("our locks counted on lagging brick 2: %d, want 1 (the held-back unlock)", n)
	}
	if n := ino.ownLocks[0].Load(); n != 0 {
		t.Fatalf("our locks counted on brick 0: %d, want 0", n)
	}
	if _, _, _, err := r.Write(ctx, f, 8, []byte("next"), nil); err != nil {
		t.Fatal(err)
	}
	stream := [2]uint64{1 << 20, 4096} // a write of ours in flight
	ino.mu.Lock()
	ino.busy = append(ino.busy, stream)
	ino.mu.Unlock()
	other := make(chan error, 1)
	go func() {
		_, err := mems[0].Inodelk(owner("other"), foptest.GFID(1), r.Name(), fop.LkSetW, xdr.Flock{Type: fop.LkWrite}, nil)
		other <- err
	}()
	for mems[0].Waiters() == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, _, _, err := r.Write(ctx, f, 16, []byte("learns"), nil); err != nil {
		t.Fatal(err)
	}
	ino.mu.Lock()
	noJoin := ino.noJoin
	ino.mu.Unlock()
	if !noJoin {
		t.Errorf("another client waits on brick 0, but the lock stays open to new fops")
	}
	r.release(ino, stream[0], stream[1], false)
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other client did not get the lock")
	}
	_, _ = mems[0].Inodelk(owner("other"), foptest.GFID(1), r.Name(), fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil)
}

// eagerLockHeld makes file f (GFID 1) on an in-memory replica set and
// writes "first" at 0, so that its eager lock is held.
func eagerLockHeld(t *testing.T, o ReplicateOptions) (*Replicate, []*foptest.Mem, *fop.Fd) {
	t.Helper()
	return eagerLockHeldN(t, 3, o)
}

// eagerLockHeldN is eagerLockHeld over n bricks.
func eagerLockHeldN(t *testing.T, n int, o ReplicateOptions) (*Replicate, []*foptest.Mem, *fop.Fd) {
	t.Helper()
	r, mems := memReplicaN(t, n, o)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release(ctx, f) })
	if _, _, _, err := r.Write(ctx, f, 0, []byte("first"), nil); err != nil {
		t.Fatal(err)
	}
	return r, mems, f
}
