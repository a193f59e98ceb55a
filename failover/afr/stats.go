package afr

import (
	"sync/atomic"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
)

// Failover event reasons, as fop.FailoverStats and the metrics name them.
const (
	EventDown      = "down"       // the child's connection was lost
	EventCut       = "cut"        // cut from a change for lagging behind its peers
	EventKick      = "kick"       // dropped for missing the fop timeout
	EventReadMoved = "read-moved" // a read moved on from it to another child
)

var eventNames = [...]string{EventDown, EventCut, EventKick, EventReadMoved}

// childStats are one child's failover events: atomics, bumped off the
// fast path (only when a child fails the I/O).
type childStats struct {
	events    [len(eventNames)]atomic.Uint64
	lastStall atomic.Int64 // ns
	stalls    atomic.Int64 // ns, summed
	stallN    atomic.Uint64
}

// setStats are a replica set's own counters.
type setStats struct {
	kids       []childStats
	splitBrain atomic.Uint64
}

// event counts a failover event of child i of kind ev (an index into
// eventNames); stall is how long the I/O waited on it, 0 if unknown.
func (r *Replicate) event(i, ev int, stall time.Duration) {
	k := &r.stats.kids[i]
	k.events[ev].Add(1)
	if stall > 0 {
		k.lastStall.Store(int64(stall))
		k.stalls.Add(int64(stall))
		k.stallN.Add(1)
	}
}

// Indexes into eventNames.
const (
	evDown = iota
	evCut
	evKick
	evReadMoved
)

// splitBrainSeen counts a file found in split-brain.
func (r *Replicate) splitBrainSeen() { r.stats.splitBrain.Add(1) }

// Stats returns the replica set's figures for `brickfs status`, the
// metrics and the statedump. It walks the inode table (r.mu, then each
// inode's mu, never across a call), so it costs a little with many files
// open; nothing on the fop path waits on it for long.
func (r *Replicate) Stats() fop.ReplicaStats {
	up := r.up()
	s := fop.ReplicaStats{BricksUp: count(up), Bricks: r.n(), Quorum: r.QuorumText(), QuorumMet: r.hasQuorum(up),
		HealPending: r.HealPending(), SplitBrain: r.stats.splitBrain.Load(), Cuts: r.Cuts()}
	for i, l := range r.lagging() {
		if l {
			s.Lagging = append(s.Lagging, r.kids[i].Name())
		}
	}
	for i := range r.kids {
		k := &r.stats.kids[i]
		f := fop.FailoverStats{Brick: r.kids[i].Name(), LastStall: time.Duration(k.lastStall.Load()),
			Stalls: time.Duration(k.stalls.Load()), StallCount: k.stallN.Load()}
		for ev, name := range eventNames {
			if n := k.events[ev].Load(); n > 0 {
				if f.Events == nil {
					f.Events = map[string]uint64{}
				}
				f.Events[name] = n
			}
		}
		s.Failovers = append(s.Failovers, f)
	}
	r.mu.Lock()
	inos := make([]*inode, 0, len(r.inodes))
	for _, ino := range r.inodes {
		inos = append(inos, ino)
	}
	r.mu.Unlock()
	s.Inodes = len(inos)
	for _, ino := range inos {
		ino.mu.Lock()
		if ino.held {
			s.EagerLocks++
		}
		s.Fds += ino.fds
		ino.mu.Unlock()
	}
	return s
}
