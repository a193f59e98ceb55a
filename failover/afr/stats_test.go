package afr

import (
	"context"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// A replica set's figures follow its children: bricks up and quorum, a
// lagging child and its cut (with the stall it cost), a child going down,
// the heal backlog that the missed change left, the inode table and the
// fd held.
func TestReplicaStats(t *testing.T) {
	r, mems := memReplicaWith(t, lagOpts)
	ctx := context.Background()
	s := r.Stats()
	if s.BricksUp != 3 || s.Bricks != 3 || !s.QuorumMet || s.Quorum == "" || s.HealPending != 0 || s.Cuts != 0 || len(s.Lagging) != 0 {
		t.Fatalf("at start: %+v", s)
	}
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release(ctx, f)
	release := mems[2].Hang("WRITE")
	defer release()
	within(t, 10*time.Second, "a write while brick 2 hangs", func() error {
		_, _, _, err := r.Write(ctx, f, 0, []byte("first"), nil)
		return err
	})
	s = r.Stats()
	if len(s.Lagging) != 1 || s.Lagging[0] != "v-client-2" || s.Cuts != 1 {
		t.Fatalf("brick 2 hangs a write: lagging %v, cuts %d", s.Lagging, s.Cuts)
	}
	fo := s.Failovers[2]
	if fo.Brick != "v-client-2" || fo.Events[EventCut] != 1 || fo.LastStall < lagOpts.LagTimeout || fo.StallCount != 1 {
		t.Fatalf("brick 2's failover events: %+v", fo)
	}
	if s.Failovers[0].Events != nil {
		t.Errorf("brick 0 had no event: %+v", s.Failovers[0])
	}
	if s.HealPending != 1 || s.Inodes < 1 || s.Fds != 1 {
		t.Errorf("after the cut write: heal %d, inodes %d, fds %d", s.HealPending, s.Inodes, s.Fds)
	}
	mems[1].SetDown(true)
	s = r.Stats()
	if s.BricksUp != 2 || !s.QuorumMet || s.Failovers[1].Events[EventDown] != 1 {
		t.Errorf("brick 1 down: %+v", s)
	}
	mems[0].SetDown(true)
	if s = r.Stats(); s.BricksUp != 1 || s.QuorumMet {
		t.Errorf("two bricks down: up %d, quorum met %v", s.BricksUp, s.QuorumMet)
	}
}

// An idle eager lock shows while the set keeps it (post-op-delay).
func TestReplicaStatsEagerLock(t *testing.T) {
	r, _ := memReplicaWith(t, ReplicateOptions{Arbiter: -1, PostOpDelay: time.Minute, FopTimeout: 5 * time.Second})
	ctx := context.Background()
	f, _, _, err := r.Create(ctx, foptest.RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, foptest.GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := r.Write(ctx, f, 0, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.EagerLocks != 1 || s.Fds != 1 {
		t.Errorf("a write under an eager lock: %d eager locks, %d fds", s.EagerLocks, s.Fds)
	}
	if err := r.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
	r.Drain()
	if s := r.Stats(); s.EagerLocks != 0 || s.Fds != 0 {
		t.Errorf("after the release: %d eager locks, %d fds", s.EagerLocks, s.Fds)
	}
}

// stalledMem is a brick whose connection broke after its calls had waited
// stall (a brick client's DownStall).
type stalledMem struct {
	*foptest.Mem
	stall time.Duration
}

func (m stalledMem) DownStall() time.Duration { return m.stall }

// A child going down records, as the stall of the down event, how long
// its calls had waited when its connection broke: the biggest stall of
// all (a hung brick's ping timeout), where the child knows it.
func TestReplicaStatsDownStall(t *testing.T) {
	names := []string{"v-client-0", "v-client-1"}
	m0, m1 := foptest.NewMem(names[0]), foptest.NewMem(names[1])
	r, err := NewReplicate("v-replicate-0", []Child{m0, stalledMem{m1, 1500 * time.Millisecond}}, names, ReplicateOptions{Arbiter: -1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	m1.SetDown(true) // its watchers hear: ChildEvent(1, false)
	fo := r.Stats().Failovers[1]
	if fo.Events[EventDown] != 1 || fo.StallCount != 1 || fo.LastStall != 1500*time.Millisecond {
		t.Errorf("brick 1 went down after 1.5 s of silence: %+v", fo)
	}
}
