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
	var mu sync.Mutex
	var events []bool
	r.Watch(func(up bool) { mu.Lock(); events = append(events, up); mu.Unlock() })
	if !r.Up() || r.Name() != "v-replicate-0" || r.QuorumText() != "auto (2 of 3)" {
		t.Fatalf("up %v name %q quorum %q", r.Up(), r.Name(), r.QuorumText())
	}
	mems[0].SetDown(true) // two of three: still up
	mems[1].SetDown(true) // one: down
	mems[1].SetDown(false)
	mems[0].SetDown(false)
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 || events[0] || !events[1] {
		t.Errorf("events %v, want [false true]", events)
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
	if _, _, err := r.Write(ctx, f, 0, []byte("healed by the worker"), nil); err != nil {
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
