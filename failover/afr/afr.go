package afr

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Child is a brick as the replicate layer drives it (*brick.Client, or an
// in-memory brick in tests).
type Child interface {
	fop.Subvolume
	// Kick drops the child's connection (so the brick releases our
	// locks) and has it reconnect: a child that missed a fop's deadline.
	Kick(reason string)
}

// ReplicateOptions tune a replica set.
type ReplicateOptions struct {
	// Quorum is how many children must take part in a change; 0 means
	// AFR's auto quorum (a majority; for an even count, half including
	// child 0). A negative value disables quorum.
	Quorum int
	// Arbiter is the index of the arbiter child, or -1.
	Arbiter int
	// PostOpDelay is how long an idle eager lock is held before the
	// post-op (cluster.post-op-delay-secs, 1 s).
	PostOpDelay time.Duration
	// FopTimeout bounds one child's part of a fop. A child that has not
	// answered by then is dropped for the fop: it is accused, its
	// connection is closed (so it releases our locks) and it reconnects.
	FopTimeout time.Duration
	// LagTimeout is the least time a change waits, after a quorum of
	// children took it, for the others before it leaves them behind
	// (accused, healed once they catch up): the wait is the larger of
	// this and lagFactor times the quorum's answer time. 0 means
	// DefaultLagTimeout; negative waits for every child (up to
	// FopTimeout).
	LagTimeout time.Duration
}

// DefaultLagTimeout is ReplicateOptions.LagTimeout's default. Healthy
// bricks under a saturating load on a busy host answer up to 0.16 s after
// their peers (XFS bricks on loop devices, 2 cores), and now and then 0.3 s
// (seen in CI and in the soak): each such cut costs a needless heal, so
// the floor sits well above that, and a frozen brick still costs a VM
// well under the 1.5 s the ping-timeout gives a hung one.
const DefaultLagTimeout = 500 * time.Millisecond

// Replicate carries out cluster/replicate (AFR) over its children: every
// change goes to all children inside AFR's transaction (inodelk or entrylk
// in the replica's domain, pre-op dirty marks, the fop, post-op changelog
// blaming children that missed it, unlock), reads go to one readable child,
// and quorum gates both. Native clients and the self-heal daemon read the
// same trusted.afr.* changelog.
//
// One deliberate difference from AFR: a change made while a child is
// already down raises that child's pending counter in the pre-op rather
// than the post-op. Counters only say "heal needed", so the brick state is
// the same once the post-op is done, but the accusation is on disk before
// any write is acknowledged, so replies need not wait for a post-op.
//
// LOCK ORDERING: inode.mu is never held across a network call.
type Replicate struct {
	name string // lock domain: the replicate translator's name
	kids []Child
	keys []string // trusted.afr.<afr-pending-xattr[i]>
	// domCount asks every WRITE for the inodelks waiting in our domain
	// (glusterfs.inodelk-dom-count); built once, sent as it is.
	domCount xdr.Dict
	quorum   atomic.Pointer[quorumRule] // replaced when the volfile changes it
	opts     ReplicateOptions
	log      *zap.Logger

	gen atomic.Uint64 // bumped on every child up/down event

	workers *workers // the fan-outs' goroutines
	lag     *lagState
	stats   setStats

	abandonMu sync.Mutex
	abandoned map[string]chan struct{} // GUARDED_BY(abandonMu); blocking lock requests whose callers gave up, by lockKey

	watchMu  sync.Mutex
	watchers []func(up bool) // GUARDED_BY(watchMu)
	told     *bool           // GUARDED_BY(watchMu); the state watchers last heard
	events   []event         // GUARDED_BY(watchMu); not yet delivered, in order
	wake     chan struct{}   // a new event is queued
	stop     chan struct{}   // closed by Close
	stopOnce sync.Once

	mu     sync.Mutex
	inodes map[xdr.GFID]*inode // GUARDED_BY(mu)

	healMu       sync.Mutex
	toHeal       map[xdr.GFID]uint8           // GUARDED_BY(healMu); 1<<slot for each kind of accusation brickfs made
	entryHeal    map[xdr.GFID]map[string]bool // GUARDED_BY(healMu); names changed while a brick missed it, per directory
	healOnce     sync.Once
	healStopOnce sync.Once
	healKick     chan struct{}
	healStop     chan struct{}
	healDone     chan struct{}
	// healCtx is cancelled by Close, so an unmount never waits for a heal.
	healCtx    context.Context
	healCancel context.CancelFunc
}

// NewReplicate returns the replica set of kids. pendingNames are the
// afr-pending-xattr names, one per child.
func NewReplicate(name string, kids []Child, pendingNames []string, opts ReplicateOptions, log *zap.Logger) (*Replicate, error) {
	if len(kids) == 0 || len(pendingNames) != len(kids) {
		return nil, fmt.Errorf("replicate %s: %d children but %d afr-pending-xattr names", name, len(kids), len(pendingNames))
	}
	if opts.PostOpDelay == 0 {
		opts.PostOpDelay = time.Second
	}
	if opts.FopTimeout == 0 {
		opts.FopTimeout = 10 * time.Second
	}
	if opts.LagTimeout == 0 {
		opts.LagTimeout = DefaultLagTimeout
	}
	r := &Replicate{name: name, kids: kids, opts: opts, log: log.With(zap.String("subvol", name)), inodes: map[xdr.GFID]*inode{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), workers: newWorkers(), lag: newLagState(len(kids)),
		stats: setStats{kids: make([]childStats, len(kids))}}
	go r.deliver()
	for _, n := range pendingNames {
		r.keys = append(r.keys, "trusted.afr."+n)
	}
	r.domCount = xdr.Dict{{Key: "glusterfs.inodelk-dom-count", Value: xdr.Str(name)}}
	r.SetQuorum(opts.Quorum)
	for i, k := range kids {
		k.Watch(func(up bool) { r.ChildEvent(i, up) })
	}
	return r, nil
}

// ChildEvent tells the replica set that a child went up or down. The
// replica set's own state (up while client quorum holds) goes to its
// watchers when it changes.
func (r *Replicate) ChildEvent(i int, up bool) {
	select {
	case <-r.stop:
		// Closed (a set that left the graph, whose bricks live on in
		// its successor): nothing to tell, nothing to queue.
		return
	default:
	}
	r.gen.Add(1)
	if up {
		r.log.Info("child up", zap.String("brick", r.kids[i].Name()))
		r.kickHeal()
	} else {
		r.log.Warn("child down", zap.String("brick", r.kids[i].Name()))
		// The stall of a down: how long the brick's calls had waited
		// when its connection broke (a hung brick's ping timeout),
		// where the child knows it (a brick client does).
		var stall time.Duration
		if s, ok := r.kids[i].(interface{ DownStall() time.Duration }); ok {
			stall = s.DownStall()
		}
		r.event(i, evDown, stall)
	}
	r.notify()
}

// event is a state change to deliver: to every watcher, or to one that
// just registered (only).
type event struct {
	up   bool
	only func(up bool)
	n    int // watchers registered when it was queued: the ones it goes to
}

// notify queues the replica set's state for the watchers if it changed
// since they last heard. Delivery runs on its own goroutine, in order, so
// a watcher never runs under the replica set's locks or on a brick's
// connection goroutine, and may call back into the replica set.
func (r *Replicate) notify() {
	r.watchMu.Lock()
	now := r.Up() // under watchMu: two events never queue out of order
	if r.told != nil && *r.told == now {
		r.watchMu.Unlock()
		return
	}
	r.told = &now
	r.events = append(r.events, event{up: now, n: len(r.watchers)})
	r.watchMu.Unlock()
	r.poke()
}

func (r *Replicate) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// deliver hands queued events to the watchers until Close.
func (r *Replicate) deliver() {
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		}
		r.watchMu.Lock()
		evs, ws := r.events, append([]func(up bool){}, r.watchers...)
		r.events = nil
		r.watchMu.Unlock()
		for _, ev := range evs {
			if ev.only != nil {
				ev.only(ev.up)
				continue
			}
			for _, fn := range ws[:ev.n] {
				fn(ev.up)
			}
		}
	}
}

// Name is the replicate translator's name in the volfile.
func (r *Replicate) Name() string { return r.name }

// Up reports whether client quorum holds over the children that are up:
// AFR's CHILD_UP to its parent.
func (r *Replicate) Up() bool { return r.hasQuorum(r.up()) }

// Watch registers fn for the replica set's up and down events; fn first
// hears the state the replica set is in now.
func (r *Replicate) Watch(fn func(up bool)) {
	r.watchMu.Lock()
	r.watchers = append(r.watchers, fn)
	if r.told != nil {
		r.events = append(r.events, event{up: *r.told, only: fn})
	}
	r.watchMu.Unlock()
	r.poke()
}

func (r *Replicate) n() int { return len(r.kids) }

// up lists the children that are connected.
func (r *Replicate) up() []bool {
	u := make([]bool, r.n())
	for i, k := range r.kids {
		u[i] = k.Up()
	}
	return u
}

// ChildrenUp reports which children are up.
func (r *Replicate) ChildrenUp() []bool { return r.up() }

// Close stops the heal worker.
func (r *Replicate) Close() {
	// Not waiting for the delivery goroutine: a watcher may be the one
	// closing, or may block.
	r.stopOnce.Do(func() { close(r.stop); close(r.workers.stop) })
	r.StopHeal()
	r.closeLag()
	// A closed set may stay reachable (its bricks' watchers keep it):
	// what it knew of files goes.
	r.mu.Lock()
	r.inodes = map[xdr.GFID]*inode{}
	r.mu.Unlock()
}

// StopHeal stops the replica set's own heal (and waits for it), leaving
// its fops working: for a set leaving the graph, whose heal would run
// beside its successor's in another lock domain.
func (r *Replicate) StopHeal() {
	r.healOnce.Do(func() {})
	r.healStopOnce.Do(func() {
		if r.healStop != nil {
			r.healCancel()
			close(r.healStop)
			<-r.healDone
		}
	})
}

var _ fop.Subvolume = (*Replicate)(nil)

var timeNow = time.Now
