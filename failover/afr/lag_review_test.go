package afr

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// memReplicaN is memReplicaWith over n bricks.
func memReplicaN(t *testing.T, n int, o ReplicateOptions) (*Replicate, []*foptest.Mem) {
	t.Helper()
	mems := make([]*foptest.Mem, n)
	kids := make([]Child, n)
	names := make([]string, n)
	for i := range mems {
		names[i] = fmt.Sprintf("v-client-%d", i)
		mems[i] = foptest.NewMem(names[i])
		kids[i] = mems[i]
	}
	r, err := NewReplicate("v-replicate-0", kids, names, o, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.healOnce.Do(func() { r.healKick = make(chan struct{}, 1) })
	t.Cleanup(r.Close)
	return r, mems
}

func slotAcc(m *foptest.Mem, g xdr.GFID, i, slot int) int32 {
	b, ok := m.Xattr(g, fmt.Sprintf("trusted.afr.v-client-%d", i))
	if !ok {
		return 0
	}
	c, _ := parseCounts(b)
	return c[slot]
}

// a brick cut from a metadata transaction's PRE-OP misses the change
// and nobody accuses it (metaTxn only blames not(locked), and "failed" is
// computed over part, which already excludes the cut brick).
// Replica 4, auto quorum, brick 3 down: pre-op on {0,1,2}, 0+1 are a quorum.
func TestMetaPreOpCutBrickIsAccused(t *testing.T) {
	r, mems := memReplicaN(t, 4, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	r.Drain()
	mems[3].SetDown(true)
	release := mems[2].Hang("XATTROP")
	defer release()
	within(t, 10*time.Second, "setxattr", func() error {
		_, err := r.Setxattr(ctx, foptest.GFID(1), xdr.Dict{{Key: "user.k", Value: xdr.Str("v")}}, 0, nil)
		return err
	})
	release()
	eventually(t, 5*time.Second, "brick 2 to stop lagging", func() bool { return !r.lagging()[2] })
	if _, has := mems[2].Xattr(foptest.GFID(1), "user.k"); has {
		t.Fatal("brick 2 got the setxattr: the pre-op cut did not happen")
	}
	for i := 0; i < 2; i++ {
		if slotAcc(mems[i], foptest.GFID(1), 2, slotMeta) == 0 {
			t.Errorf("brick %d holds the acknowledged setxattr but does not accuse brick 2, which missed it (meta pending %d for brick 3)",
				i, slotAcc(mems[i], foptest.GFID(1), 3, slotMeta))
		}
	}
}

// same for an entry transaction (unlink): brick 2 keeps the name,
// the parent's changelog on the others does not accuse it.
func TestEntryPreOpCutBrickIsAccused(t *testing.T) {
	r, mems := memReplicaN(t, 4, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Release(ctx, f)
	r.Drain()
	mems[3].SetDown(true)
	release := mems[2].Hang("XATTROP")
	defer release()
	within(t, 10*time.Second, "unlink", func() error {
		_, err := r.Unlink(ctx, foptest.RootGFID, "f", nil)
		return err
	})
	release()
	eventually(t, 5*time.Second, "brick 2 to stop lagging", func() bool { return !r.lagging()[2] })
	t.Logf("names: b0 %v b1 %v b2 %v", mems[0].Names(foptest.RootGFID), mems[1].Names(foptest.RootGFID), mems[2].Names(foptest.RootGFID))
	for i := 0; i < 2; i++ {
		if slotAcc(mems[i], foptest.RootGFID, 2, slotEntry) == 0 {
			t.Errorf("brick %d does not accuse brick 2 for the unlink it missed", i)
		}
	}
}

// queued serves WRITE one at a time, svc each: a brick with a bandwidth.
type queued struct {
	*foptest.Mem
	mu  sync.Mutex
	svc time.Duration
}

func (q *queued) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
	q.mu.Lock()
	time.Sleep(q.svc)
	q.mu.Unlock()
	return q.Mem.Write(ctx, f, off, data, xd)
}

// under a sustained concurrent write load (64 in flight, as FUSE's
// max_background allows), a healthy brick with a third of its peers'
// bandwidth is the bottleneck: its queue grows to 64*svc while the others
// answer at once, so 8x the quorum's time stays tiny and the brick is cut
// (accused, healed) over and over. Default LagTimeout (0.5 s).
func TestSlowerBrickNotCutUnderLoad(t *testing.T) {
	svc := []time.Duration{2 * time.Millisecond, 2 * time.Millisecond, 6 * time.Millisecond}
	mems := make([]*foptest.Mem, 3)
	kids := make([]Child, 3)
	names := make([]string, 3)
	for i := range mems {
		names[i] = fmt.Sprintf("v-client-%d", i)
		mems[i] = foptest.NewMem(names[i])
		kids[i] = &queued{Mem: mems[i], svc: svc[i]}
	}
	r, err := NewReplicate("v-replicate-0", kids, names, ReplicateOptions{Arbiter: -1, PostOpDelay: 10 * time.Millisecond, FopTimeout: time.Minute}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.healOnce.Do(func() { r.healKick = make(chan struct{}, 1) })
	t.Cleanup(r.Close)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	var wg sync.WaitGroup
	var n atomic.Int64
	end := time.Now().Add(2 * time.Second)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; time.Now().Before(end); k++ {
				if _, _, _, err := r.Write(ctx, f, uint64(w), []byte("x"), nil); err != nil {
					t.Error(err)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if r.Cuts() != 0 {
		t.Errorf("a healthy brick 3x slower than its peers was cut %d times in %d writes under load (accused: %v)", r.Cuts(), n.Load(), accuses(mems[0], 2))
	}
}

// cutStart runs after the CAS that publishes the cut; a call that ends
// in between runs cutEnd first: cut[i] goes to -1, the id is left in
// lag.calls forever, and a child with another cut call outstanding is
// declared caught up (gen bump, heal kick) while that call still runs.
func TestCutCountedBeforeItsEnd(t *testing.T) {
	o := lagOpts
	o.LagTimeout = time.Millisecond
	r, _ := memReplicaN(t, 3, o)
	ctx := context.Background()
	set := []bool{true, true, true}
	stop := make(chan struct{})
	defer close(stop)
	for k := 0; k < 2; k++ { // readers' readOrder calls lagging() all the time
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
					r.lagging()
				}
			}
		}()
	}
	for it := 0; it < 500; it++ {
		r.lag.callNs[2].Store(0) // its average would learn the delay and stop the cuts
		r.fanoutLag(ctx, set, func(ctx context.Context, i int) error {
			if i == 2 {
				time.Sleep(time.Millisecond)
			}
			return nil
		}, nil)
		r.lag.mu.Lock()
		neg := r.lag.cut[2] < 0
		r.lag.mu.Unlock()
		if neg {
			t.Logf("iteration %d: cut[2] < 0", it)
		}
	}
	eventually(t, 5*time.Second, "cut calls to end", func() bool {
		r.lag.mu.Lock()
		defer r.lag.mu.Unlock()
		return r.lag.cut[2] == 0
	})
	time.Sleep(100 * time.Millisecond)
	r.lag.mu.Lock()
	left := len(r.lag.calls)
	r.lag.mu.Unlock()
	t.Logf("cuts %d", r.Cuts())
	if r.Cuts() == 0 {
		t.Fatal("no call was cut: the race is not exercised")
	}
	if left != 0 {
		t.Errorf("%d ended cut calls left in lag.calls (cutEnd ran before cutStart)", left)
	}
}

// stuckWrite holds this client's WRITEs to one brick before the brick
// carries them out (stuck in the brick's posix layer, e.g. a frozen fs),
// while every other fop (locks, xattrops) is served.
type stuckWrite struct {
	*foptest.Mem
	gate chan struct{}
	n    atomic.Int32
}

func (s *stuckWrite) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
	if s.n.Add(1) == 1 {
		<-s.gate // only the first write sticks
	}
	return s.Mem.Write(ctx, f, off, data, xd)
}

// The eager lock on a lagging brick is kept while a cut write of this
// client is pending there: another client (the self-heal daemon) heals
// the brick only after that write has landed, so it never lands on a
// healed copy, where nobody would accuse it.
func TestCutWriteLandsBeforeAnyHeal(t *testing.T) {
	mems := make([]*foptest.Mem, 3)
	names := make([]string, 3)
	for i := range mems {
		names[i] = fmt.Sprintf("v-client-%d", i)
		mems[i] = foptest.NewMem(names[i])
	}
	stuck := &stuckWrite{Mem: mems[2], gate: make(chan struct{})}
	kids1 := []Child{mems[0], mems[1], stuck}
	kids2 := []Child{mems[0], mems[1], mems[2]}
	r1, err := NewReplicate("v-replicate-0", kids1, names, lagOpts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r1.healOnce.Do(func() { r1.healKick = make(chan struct{}, 1) })
	t.Cleanup(r1.Close)
	r2, err := NewReplicate("v-replicate-0", kids2, names, lagOpts, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r2.healOnce.Do(func() { r2.healKick = make(chan struct{}, 1) })
	t.Cleanup(r2.Close)
	ctx := context.Background()
	f, _, _, err := r1.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Release(ctx, f)
	if _, _, _, err := r1.Write(ctx, f, 0, []byte("AAAA"), nil); err != nil { // cut on brick 2, stuck there
		t.Fatal(err)
	}
	if _, _, _, err := r1.Write(ctx, f, 0, []byte("BBBB"), nil); err != nil { // bricks 0 and 1 only
		t.Fatal(err)
	}
	r1.Drain()
	var once sync.Once
	land := func() { once.Do(func() { close(stuck.gate) }) }
	defer land()
	if mems[2].Locks() == 0 {
		t.Fatal("brick 2 was unlocked while r1's cut write is pending there")
	}
	healed := make(chan error, 1)
	go func() { // the self-heal daemon's turn: it waits for brick 2's lock
		done, err := r2.healData(ctx, foptest.GFID(1))
		if err == nil && !done {
			err = fmt.Errorf("heal not done")
		}
		healed <- err
	}()
	land() // the stale write lands, then r1's unlock
	select {
	case err := <-healed:
		if err != nil {
			t.Fatalf("heal by another client: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the heal still waits 10 s after r1's cut write ended")
	}
	eventually(t, 5*time.Second, "r1's cut write to end", func() bool { return !r1.lagging()[2] })
	d0, _ := mems[0].Data(foptest.GFID(1))
	d2, _ := mems[2].Data(foptest.GFID(1))
	acc := accuses(mems[0], 2) || accuses(mems[1], 2)
	if string(d2) != string(d0) && !acc {
		t.Errorf("brick 2 holds %q, bricks 0/1 hold the acknowledged %q, and nobody accuses brick 2", d2, d0)
	}
}

// a cut call stuck in r.child's OPEN (the fd is opened lazily on a
// brick that was down at open time) holds rf.mu for the fop timeout: every
// later fop on the fd, even a read served by another brick, waits for it.
func TestHungOpenHoldsUpNoOtherBrick(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Release(ctx, f)
	r.Drain()
	mems[2].SetDown(true)
	eventually(t, 5*time.Second, "brick 2 down", func() bool { return !r.up()[2] })
	f, _, err = r.Open(ctx, foptest.GFID(1), uint32(syscall.O_RDWR), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	mems[2].SetDown(false)
	eventually(t, 5*time.Second, "brick 2 up", func() bool { return r.up()[2] })
	release := mems[2].Hang("OPEN")
	defer release()
	within(t, 10*time.Second, "a write while brick 2's open hangs", func() error {
		_, _, _, err := r.Write(ctx, f, 0, []byte("data"), nil)
		return err
	})
	within(t, 5*time.Second, "a read on the same fd, served by brick 0 or 1", func() error {
		_, _, err := r.Read(ctx, f, 0, 4, nil)
		return err
	})
}

// takeLocks' blocking path skips a lagging child even when the
// transaction needs it for quorum (changeSet kept it for that reason):
// a contended change fails with ENOTCONN instead of waiting.
func TestBlockingLockKeepsALaggingChildQuorumNeeds(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	release := mems[2].Hang("WRITE")
	defer release()
	if _, _, _, err := r.Write(ctx, f, 0, []byte("x"), nil); err != nil { // brick 2 cut: lagging
		t.Fatal(err)
	}
	r.Drain()
	mems[1].SetDown(true)
	eventually(t, 5*time.Second, "brick 1 down", func() bool { return !r.up()[1] })
	// Another client holds the file's lock on brick 0 for a moment.
	other := internal(ctx, []byte("otherown"))
	if _, err := mems[0].Inodelk(other, foptest.GFID(1), r.name, fop.LkSet, dataRange, nil); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_, _ = mems[0].Inodelk(other, foptest.GFID(1), r.name, fop.LkSet, unlockOf(dataRange), nil)
	}()
	if !r.lagging()[2] {
		t.Fatal("brick 2 not lagging")
	}
	_, err = r.Setxattr(ctx, foptest.GFID(1), xdr.Dict{{Key: "user.k", Value: xdr.Str("v")}}, 0, nil)
	if err != nil {
		t.Errorf("a contended setxattr with bricks 0 and 2 up (quorum) failed: %v", err)
	}
}
