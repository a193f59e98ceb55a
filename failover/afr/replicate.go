package afr

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
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
}

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

	watchMu  sync.Mutex
	watchers []func(up bool) // GUARDED_BY(watchMu)
	told     *bool           // GUARDED_BY(watchMu); the state watchers last heard

	mu     sync.Mutex
	inodes map[xdr.GFID]*inode // GUARDED_BY(mu)

	healMu    sync.Mutex
	toHeal    map[xdr.GFID]uint8           // GUARDED_BY(healMu); 1<<slot for each kind of accusation brickfs made
	entryHeal map[xdr.GFID]map[string]bool // GUARDED_BY(healMu); names changed while a brick missed it, per directory
	healOnce  sync.Once
	healKick  chan struct{}
	healStop  chan struct{}
	healDone  chan struct{}
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
	r := &Replicate{name: name, kids: kids, opts: opts, log: log.With(zap.String("subvol", name)), inodes: map[xdr.GFID]*inode{}}
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
	r.gen.Add(1)
	if up {
		r.log.Info("child up", zap.String("brick", r.kids[i].Name()))
		r.kickHeal()
	} else {
		r.log.Warn("child down", zap.String("brick", r.kids[i].Name()))
	}
	r.notify()
}

// notify tells the watchers the replica set's state if it changed since
// they last heard.
func (r *Replicate) notify() {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	now := r.Up()
	if r.told != nil && *r.told == now {
		return
	}
	r.told = &now
	for _, fn := range r.watchers {
		fn(now)
	}
}

// Name is the replicate translator's name in the volfile.
func (r *Replicate) Name() string { return r.name }

// Up reports whether client quorum holds over the children that are up:
// AFR's CHILD_UP to its parent.
func (r *Replicate) Up() bool { return r.hasQuorum(r.up()) }

// Watch registers fn for the replica set's up and down events.
func (r *Replicate) Watch(fn func(up bool)) {
	r.watchMu.Lock()
	r.watchers = append(r.watchers, fn)
	r.watchMu.Unlock()
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

func count(b []bool) int {
	n := 0
	for _, v := range b {
		if v {
			n++
		}
	}
	return n
}

// quorumRule is client quorum as the volfile sets it.
type quorumRule struct {
	none     bool // no client quorum: any child will do
	min      int  // children that must take part
	autoEven bool // auto with an even count: exactly half will do if child 0 is in
	auto     bool // AFR's auto quorum
}

// SetQuorum sets client quorum: q < 0 none, 0 auto (a majority; for an
// even count, half including the first child), q > 0 fixed at q children.
func (r *Replicate) SetQuorum(q int) {
	rule := &quorumRule{}
	switch {
	case q < 0:
		rule.none, rule.min = true, 1
	case q > 0:
		rule.min = q
	default:
		rule.min = r.n()/2 + 1
		rule.autoEven = r.n()%2 == 0
		rule.auto = true
	}
	r.quorum.Store(rule)
	r.notify()
}

// QuorumText says what client quorum is: "none", "fixed at 2 of 3", "auto (2 of 3)".
func (r *Replicate) QuorumText() string {
	q := r.quorum.Load()
	switch {
	case q.none:
		return "none"
	case q.auto:
		return fmt.Sprintf("auto (%d of %d)", r.n()/2+1, r.n())
	}
	return fmt.Sprintf("fixed at %d of %d", q.min, r.n())
}

// HealPending is how many files and directories the replica set knows
// need heal (those it accused a brick for since it started).
func (r *Replicate) HealPending() int {
	r.healMu.Lock()
	defer r.healMu.Unlock()
	n := len(r.toHeal)
	for g := range r.entryHeal {
		if _, ok := r.toHeal[g]; !ok {
			n++
		}
	}
	return n
}

// HasQuorum reports whether the children in set meet client quorum.
func (r *Replicate) HasQuorum(set []bool) bool { return r.hasQuorum(set) }

// ChildrenUp reports which children are up.
func (r *Replicate) ChildrenUp() []bool { return r.up() }

// hasQuorum mirrors afr_has_quorum for the auto and fixed types.
func (r *Replicate) hasQuorum(set []bool) bool {
	q := r.quorum.Load()
	c := count(set)
	if c >= q.min {
		return true
	}
	return q.autoEven && c*2 == r.n() && set[0]
}

// errNoQuorum is AFR's quorum errno in 10.3 (afr_quorum_errno): ENOTCONN.
func (r *Replicate) errNoQuorum(op string) error {
	return &fop.OpError{Brick: r.name, Fop: op, Errno: syscall.ENOTCONN, Err: errors.New("client quorum is not met")}
}

// reply is one child's answer.
type reply struct {
	err  error
	done bool
	at   time.Time // when the child answered
}

// slowChange is how long a data change may take before it is logged with
// where its time went.
const slowChange = time.Second

// replyTimes describes, for the slow-change log, when each child answered
// counted from start, and how.
func replyTimes(rs []reply, start time.Time) []string {
	var out []string
	for i, rp := range rs {
		if !rp.done {
			continue
		}
		res := "ok"
		if rp.err != nil {
			res = rp.err.Error()
		}
		out = append(out, fmt.Sprintf("%d: %v %s", i, rp.at.Sub(start).Round(time.Millisecond), res))
	}
	return out
}

// fanout runs fn on every child in set, in parallel, each bounded by the
// fop timeout. A child that times out is dropped (Kick) so that it releases
// our locks before anybody relies on it again.
func (r *Replicate) fanout(ctx context.Context, set []bool, fn func(ctx context.Context, i int) error) []reply {
	out := make([]reply, r.n())
	var wg sync.WaitGroup
	for i := range r.kids {
		if !set[i] {
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, r.opts.FopTimeout)
			defer cancel()
			err := fn(cctx, i)
			if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				r.kids[i].Kick("a fop did not complete within the fop timeout")
				err = &fop.OpError{Brick: r.kids[i].Name(), Errno: syscall.ENOTCONN, Err: err}
			}
			out[i] = reply{err: err, done: true, at: time.Now()}
		}(i)
	}
	wg.Wait()
	return out
}

// errnoRank orders errnos as afr_higher_errno does
// (xlators/cluster/afr/src/afr-common.c): the higher wins.
func errnoRank(e syscall.Errno) int {
	switch e {
	case syscall.ENODATA:
		return 5
	case syscall.ENOENT:
		return 4
	case syscall.ESTALE:
		return 3
	case syscall.ENOSPC:
		return 2
	}
	return 1
}

// finalErr mirrors afr_final_errno: among failed children, the errno that
// ranks highest, ENOTCONN only when nothing better is known.
func (r *Replicate) finalErr(rs []reply, set []bool) error {
	var best error
	var bestEn syscall.Errno
	for i, rp := range rs {
		if !set[i] || !rp.done || rp.err == nil {
			continue
		}
		en := fop.Errno(rp.err)
		if best == nil || (bestEn == syscall.ENOTCONN && en != syscall.ENOTCONN) || (en != syscall.ENOTCONN && errnoRank(en) > errnoRank(bestEn)) {
			best, bestEn = rp.err, en
		}
	}
	if best == nil {
		return &fop.OpError{Brick: r.name, Errno: syscall.ENOTCONN, Err: errors.New("no child answered")}
	}
	return best
}

// symmetric reports whether every child failed with the same errno, other
// than ENOTCONN: a property of the request, not a brick failure
// (afr_is_symmetric_error), so nobody is accused.
func symmetric(rs []reply, set []bool) bool {
	var en syscall.Errno
	for i, rp := range rs {
		if !set[i] {
			continue
		}
		if rp.err == nil {
			return false
		}
		e := fop.Errno(rp.err)
		if e == syscall.ENOTCONN || (en != 0 && e != en) {
			return false
		}
		en = e
	}
	return en != 0
}

// answered returns the children of set that gave an answer of their own:
// a success or the brick's own op_errno. A failure on our side is no
// answer: a lost connection, a timeout, an interrupt, a malformed reply.
// Client quorum is about bricks that did not answer: when the answering
// bricks are enough and none succeeded, their errno is the caller's
// (afr_final_errno), not ENOTCONN.
func answered(rs []reply, set []bool) []bool {
	a := make([]bool, len(rs))
	for i, rp := range rs {
		a[i] = set[i] && rp.done && (rp.err == nil || ownErrno(rp.err))
	}
	return a
}

// ownErrno reports whether err is a brick's own op_errno (an *OpError
// without a cause of ours) other than ENOTCONN.
func ownErrno(err error) bool {
	var oe *fop.OpError
	return errors.As(err, &oe) && oe.Err == nil && oe.Errno != syscall.ENOTCONN
}

func succeeded(rs []reply, set []bool) []bool {
	ok := make([]bool, len(rs))
	for i, rp := range rs {
		ok[i] = set[i] && rp.done && rp.err == nil
	}
	return ok
}

// internal is the context of AFR's own locks and xattrops: pid 0, root,
// the inode's lock owner.
func internal(ctx context.Context, owner []byte) context.Context {
	return fop.WithCaller(context.WithoutCancel(ctx), &fop.Caller{LkOwner: owner})
}

func newOwner() []byte {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return b
}

// inode is what the replica set keeps per file: its lock owner, the
// readable children last computed, and its eager data lock.
type inode struct {
	gfid  xdr.GFID
	owner []byte

	mu   sync.Mutex
	cond *sync.Cond

	// Readability, refreshed by every LOOKUP and after child events.
	readGen  uint64 // GUARDED_BY(mu)
	readable []bool // GUARDED_BY(mu); nil until known
	metaRead []bool // GUARDED_BY(mu)
	isDir    bool   // GUARDED_BY(mu)

	// The eager data lock: several writes share one lock and pre-op.
	held     bool        // GUARDED_BY(mu)
	changing bool        // GUARDED_BY(mu); a lock or unlock is on the wire
	lockGen  uint64      // GUARDED_BY(mu); generation the lock was taken in
	locked   []bool      // GUARDED_BY(mu); children holding the lock
	part     []bool      // GUARDED_BY(mu); children taking part (locked, pre-op done, not accused)
	busy     [][2]uint64 // GUARDED_BY(mu); ranges of fops in flight
	timer    *time.Timer // GUARDED_BY(mu); the delayed post-op
	// releaseNow asks the last fop in flight to end the eager lock at once:
	// after a failure, or when another client waits for the lock.
	releaseNow bool // GUARDED_BY(mu)
	// noPostOp keeps dirty raised at unlock: a change reached too few
	// bricks and the heal daemon must compare them (afr_changelog_post_op_do).
	noPostOp bool      // GUARDED_BY(mu)
	fds      int       // GUARDED_BY(mu); open fds, for dropping idle inodes
	lastUsed time.Time // GUARDED_BY(mu)
}

func (r *Replicate) inode(g xdr.GFID) *inode {
	r.mu.Lock()
	defer r.mu.Unlock()
	ino := r.inodes[g]
	if ino == nil {
		if len(r.inodes) > 100000 {
			r.pruneLocked()
		}
		ino = &inode{gfid: g, owner: newOwner()}
		ino.cond = sync.NewCond(&ino.mu)
		r.inodes[g] = ino
	}
	return ino
}

// pruneLocked forgets idle inodes. REQUIRES r.mu.
func (r *Replicate) pruneLocked() {
	cut := time.Now().Add(-time.Minute)
	for g, ino := range r.inodes {
		ino.mu.Lock()
		idle := !ino.held && !ino.changing && ino.fds == 0 && len(ino.busy) == 0 && ino.lastUsed.Before(cut)
		ino.mu.Unlock()
		if idle {
			delete(r.inodes, g)
		}
	}
}
