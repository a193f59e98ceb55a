package afr

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
)

// A child can be connected and answer pings while its fops are stuck: a
// brick whose filesystem is frozen (fsfreeze), or one that hung between
// two pings. Waiting for the fop timeout or the ping timeout costs every
// write that long. Changes do not need every child: once a quorum has
// taken one, a child still working long after its peers is cut from it,
// accused on the others before the change is acknowledged (as a child that
// failed it), and its call goes on in the background. Until its cut calls
// end the child is lagging: new transactions leave it out (accusing it in
// their pre-op) while enough others are up, and reads go elsewhere. When
// the last cut call ends, the child takes part again and is healed.
//
// How long "long after" is adapts to how fast the quorum answered
// (lagFactor times the quorum's time), never less than
// ReplicateOptions.LagTimeout, so a brick that is merely slower than its
// peers under a saturating load is waited for.

// lagFactor scales the quorum's answer time into how long the others
// get on top of it.
const lagFactor = 8

// lagWait is how long after a quorum answered (in q) the remaining
// children of a change are waited for.
func (r *Replicate) lagWait(q time.Duration) time.Duration {
	return min(max(r.opts.LagTimeout, lagFactor*q), r.opts.FopTimeout)
}

// lagWaitFor is lagWait for child i: also lagFactor times what its own
// calls take of late, so a child slower than its peers under load (its
// queue is the longest) is waited for.
func (r *Replicate) lagWaitFor(i int, q time.Duration) time.Duration {
	return min(max(r.lagWait(q), q+lagFactor*time.Duration(r.lag.callNs[i].Load())), r.opts.FopTimeout)
}

// lagState is what the replica set knows of its lagging children.
type lagState struct {
	mu      sync.Mutex
	cut     []int                       // GUARDED_BY(mu); calls cut from changes, not ended yet, per child
	ctx     []context.Context           // GUARDED_BY(mu); done once the child lags, per child
	end     []context.CancelFunc        // GUARDED_BY(mu); ends ctx
	calls   map[*int]context.CancelFunc // GUARDED_BY(mu); ends a cut call (Close)
	closing bool                        // GUARDED_BY(mu); Close ends every cut call
	idle    *sync.Cond                  // on mu: a cut call ended
	// after holds, per child, what waits for its cut calls to end: the
	// unlocks of locks it granted while they were pending (see afterLag).
	after [][]func() // GUARDED_BY(mu)
	// callNs is, per child, a moving average of how long its calls in
	// changes take (ns): a child slow of late gets longer to answer.
	callNs []atomic.Int64
	// answered is, per child, when a call of a change last came back
	// (unix ns): a child still answering is working through a queue,
	// not stuck, and is not cut.
	answered []atomic.Int64
	// cuts counts every cut, for tests and status.
	cuts atomic.Int64
	// readNs is a moving average of how long reads take (ns): of data
	// [0] and of metadata [1].
	readNs []atomic.Int64
	// slowUntil: a child whose read was moved on from goes last in
	// reads until then (unix ns).
	slowUntil []atomic.Int64
}

// slowReadFor is how long a child whose read was moved on from goes last
// in reads.
const slowReadFor = 5 * time.Second

// readWait is how long a read waits on one child before it moves on to the
// next: lagFactor times what reads take of late, at least LagTimeout.
func (r *Replicate) readWait(meta bool) time.Duration {
	return min(max(r.opts.LagTimeout, lagFactor*time.Duration(r.lag.readNs[b2i(meta)].Load())), r.opts.FopTimeout)
}

// readTook folds a read's time into its kind's average.
func (r *Replicate) readTook(meta bool, d time.Duration) { average(&r.lag.readNs[b2i(meta)], d) }

// average folds d into a moving average (1/8 weight). A lost update among
// racing callers is harmless.
func average(a *atomic.Int64, d time.Duration) {
	old := a.Load()
	a.Store(old + (int64(d)-old)/8)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// slowReads puts child i last in reads for slowReadFor.
func (r *Replicate) slowReads(i int) {
	r.lag.slowUntil[i].Store(time.Now().Add(slowReadFor).UnixNano())
}

func newLagState(n int) *lagState {
	l := &lagState{cut: make([]int, n), ctx: make([]context.Context, n), end: make([]context.CancelFunc, n), calls: map[*int]context.CancelFunc{},
		slowUntil: make([]atomic.Int64, n), readNs: make([]atomic.Int64, 2), after: make([][]func(), n), callNs: make([]atomic.Int64, n), answered: make([]atomic.Int64, n)}
	l.idle = sync.NewCond(&l.mu)
	for i := range l.ctx {
		l.ctx[i], l.end[i] = context.WithCancel(context.Background())
	}
	return l
}

// closeLag ends every cut call still running and waits for them: a closed
// replica set leaves nothing behind.
func (r *Replicate) closeLag() {
	l := r.lag
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closing = true
	for _, cancel := range l.calls {
		cancel()
	}
	for {
		n := 0
		for _, c := range l.cut {
			n += c
		}
		if n == 0 {
			return
		}
		l.idle.Wait()
	}
}

// lagging lists the children with cut calls outstanding.
func (r *Replicate) lagging() []bool {
	out := make([]bool, r.n())
	r.lag.mu.Lock()
	for i, c := range r.lag.cut {
		out[i] = c > 0
	}
	r.lag.mu.Unlock()
	return out
}

// lagContext is done when child i lags (at once if it does now).
func (r *Replicate) lagContext(i int) context.Context {
	r.lag.mu.Lock()
	defer r.lag.mu.Unlock()
	return r.lag.ctx[i]
}

// Cuts is how many calls were cut from changes for lagging, since start.
func (r *Replicate) Cuts() int64 { return r.lag.cuts.Load() }

// cutStart records that a call of child i was cut after it had taken
// took while a quorum answered in q.
// REQUIRES r.lag.mu held, and the call's state set to callCut under it:
// the call's end (cutEnd) cannot be counted before its cut.
func (r *Replicate) cutStart(i int, took, q time.Duration, id *int, cancel context.CancelFunc) {
	r.lag.cuts.Add(1)
	r.event(i, evCut, took)
	r.lag.cut[i]++
	r.lag.calls[id] = cancel
	if r.lag.closing {
		cancel()
	}
	first := r.lag.cut[i] == 1
	if first {
		r.lag.end[i]() // reads on it move on
	}
	if first {
		r.log.Warn("brick is lagging behind its peers: leaving it out of changes (marked for heal) until it catches up",
			zap.String("brick", r.kids[i].Name()), zap.Duration("working for", took.Round(time.Millisecond)),
			zap.Duration("quorum answered in", q.Round(time.Millisecond)))
	}
}

// cutEnd records that a cut call of child i ended. The last one lets the
// child take part again: the generation changes, so eager locks are taken
// again with it, and the heal worker looks at what it missed.
func (r *Replicate) cutEnd(i int, err error, id *int) {
	r.lag.mu.Lock()
	// What waits for the child's cut calls runs before the last one is
	// counted out: until then no new transaction takes the child.
	for r.lag.cut[i] == 1 && len(r.lag.after[i]) > 0 {
		fns := r.lag.after[i]
		r.lag.after[i] = nil
		r.lag.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
		r.lag.mu.Lock()
	}
	r.lag.cut[i]--
	delete(r.lag.calls, id)
	if r.lag.cut[i] == 0 {
		r.lag.after[i] = nil // closing: the connections close, and their locks with them
		r.lag.ctx[i], r.lag.end[i] = context.WithCancel(context.Background())
		// Under mu: closeLag sees the count only once this is done, so
		// nothing of a cut call runs after Close returned.
		if !r.lag.closing {
			res := "ok"
			if err != nil {
				res = err.Error()
			}
			r.log.Info("lagging brick caught up: it takes part in changes again", zap.String("brick", r.kids[i].Name()), zap.String("last cut call", res))
			r.gen.Add(1)
			r.kickHeal()
		}
	}
	r.lag.idle.Broadcast()
	r.lag.mu.Unlock()
}

// afterLag runs fn once child i has no cut call left, or now (it returns
// true) if it has none. An unlock of a lock the child granted goes this
// way: a cut write of ours may still be pending there, and nobody (the
// self-heal daemon) may lock and heal the child before it lands.
func (r *Replicate) afterLag(i int, fn func()) (now bool) {
	r.lag.mu.Lock()
	defer r.lag.mu.Unlock()
	if r.lag.cut[i] == 0 {
		return true
	}
	r.lag.after[i] = append(r.lag.after[i], fn)
	return false
}

// changeSet is the children a new transaction takes: those up, less the
// lagging ones while the rest still meet quorum.
func (r *Replicate) changeSet() []bool {
	up := r.up()
	fresh := and(up, not(r.lagging()))
	if count(fresh) < count(up) && r.hasQuorum(fresh) {
		return fresh
	}
	return up
}

// keepingGood returns up (a changeSet) with the children of good that are
// connected added back when it holds none of them: the only good copies of
// a file lagging, a change waits for one rather than leave them all out
// and stand on stale copies (a lagging child is left out only while good
// copies remain, or a frozen one would cost each new lock a wait).
func (r *Replicate) keepingGood(up, good []bool) []bool {
	if good != nil && count(and(up, good)) == 0 {
		return or(up, and(r.up(), good))
	}
	return up
}

// errLagging is the reply of a child cut from a change.
func (r *Replicate) errLagging(i int, took, q time.Duration) error {
	return &fop.OpError{Brick: r.kids[i].Name(), Errno: syscall.ENOTCONN,
		Err: fmt.Errorf("still working %v after a quorum of its peers answered in %v: cut from the change", took.Round(time.Millisecond), q.Round(time.Millisecond))}
}

// call states for fanoutLag
const (
	callRunning int32 = iota
	callAnswered
	callCut
)

// fanoutLag is fanout for a change AFR settles without some children
// (locks, changelog updates, data changes): once a quorum of set has
// succeeded, a child still working lagWait later is cut (its reply is
// errLagging) and its call goes on in the background, with a context
// that the caller's cancellation does not end (a change once sent is
// seen through; the fop timeout bounds it). late, if not nil, gets the
// cut call's outcome (to undo a lock granted late) before the child stops
// lagging. fn must not touch what the caller reads of a child that did
// not succeed: the call of a cut child runs on after fanoutLag returns.
func (r *Replicate) fanoutLag(ctx context.Context, set []bool, fn func(ctx context.Context, i int) error, late func(i int, err error)) []reply {
	return r.fanoutLagCut(ctx, set, fn, late, nil, nil).rs
}

// lagReplies is what fanoutLagCut returns: the replies, and for each child
// that was cut, a channel that gets its call's outcome when it ends.
type lagReplies struct {
	rs   []reply
	cut  []chan error // nil for children not cut; each is sent to once
	memo *cutMemo     // awaitCut's answer, kept: a second call must not wait on the drained channels
}

type cutMemo struct {
	once sync.Once
	ok   []bool
}

// awaitCut waits for the calls of the children that were cut and returns
// those that succeeded after all: a change that lost its quorum after the
// cut (another child failed later, in the flush) still has them.
//
// It may be called more than once: the first call waits, the others
// answer the same.
func (lr lagReplies) awaitCut() []bool {
	lr.memo.once.Do(func() {
		lr.memo.ok = make([]bool, len(lr.rs))
		for i, ch := range lr.cut {
			if ch != nil {
				lr.memo.ok[i] = <-ch == nil // the call is bounded by the fop timeout
			}
		}
	})
	return append([]bool(nil), lr.memo.ok...)
}

// fanoutLagCut is fanoutLag that also lets the caller wait for the calls
// it cut. With enough, the children that succeeded must also satisfy it
// before any other is cut (a data change: one of them must hold a good
// copy, or the change would stand on stale copies alone).
//
// hold, if not nil, counts the calls while they run: a call cut goes on
// after this returns, and a data change's calls read the caller's data
// (fop.DataHold). Only a data change passes it: the locks and changelog
// calls around it read none.
func (r *Replicate) fanoutLagCut(ctx context.Context, set []bool, fn func(ctx context.Context, i int) error, late func(i int, err error), enough func(ok []bool) bool, hold *fop.DataHold) lagReplies {
	if r.opts.LagTimeout < 0 || count(set) < 2 {
		return lagReplies{rs: r.fanout(ctx, set, fn), cut: make([]chan error, r.n()), memo: &cutMemo{}}
	}
	if enough != nil && !enough(set) {
		// No answers could satisfy it (the good copy is not among set):
		// waiting for them would only hold the change up.
		enough = nil
	}
	type answer struct {
		i  int
		rp reply
	}
	n := r.n()
	out := make([]reply, n)
	state := make([]atomic.Int32, n)
	ch := make(chan answer, n) // never blocks: a cut child's answer is dropped here
	lateCh := make([]chan error, n)
	for i := range lateCh {
		if set[i] {
			lateCh[i] = make(chan error, 1)
		}
	}
	bctx := context.WithoutCancel(ctx)
	cancels := make([]context.CancelFunc, n)
	ids := make([]int, n) // &ids[i] names child i's call while it is cut
	start := time.Now()
	left := 0
	for i := range r.kids {
		if !set[i] {
			continue
		}
		left++
		cctx, cancel := context.WithTimeout(bctx, r.opts.FopTimeout)
		cancels[i] = cancel
		held := hold.Add()
		r.workers.run(func() {
			err := r.callIn(cctx, bctx, i, fn)
			if held {
				hold.Done() // the call has ended: it reads the data no more
			}
			cancel()
			r.lag.answered[i].Store(time.Now().UnixNano())
			if state[i].CompareAndSwap(callRunning, callAnswered) {
				now := time.Now()
				ch <- answer{i, reply{err: err, done: true, at: now}}
				return
			}
			lateCh[i] <- err
			if late != nil {
				late(i, err)
			}
			r.cutEnd(i, err, &ids[i])
		})
	}
	ok := make([]bool, n)
	var timer *time.Timer
	var cut <-chan time.Time
	var q time.Duration
	for left > 0 {
		select {
		case a := <-ch:
			out[a.i] = a.rp
			left--
			if a.rp.err == nil {
				ok[a.i] = true
				var excess time.Duration
				if cut != nil || timer != nil {
					excess = a.rp.at.Sub(start) - q
				}
				average(&r.lag.callNs[a.i], excess)
			}
			if cut == nil && timer == nil && left > 0 && r.hasQuorum(ok) && (enough == nil || enough(ok)) {
				q = time.Since(start)
				// The longest any remaining child gets; children
				// already lagging (calls of theirs cut before, still
				// not ended) are not waited for.
				var wait time.Duration
				lagging := r.lagging()
				for i := range r.kids {
					if set[i] && !out[i].done && !lagging[i] {
						wait = max(wait, r.lagWaitFor(i, q))
					}
				}
				timer = time.NewTimer(wait)
				cut = timer.C
			}
		case now := <-cut:
			cut = nil
			if enough != nil && !enough(ok) {
				// What made the cut possible no longer holds (another
				// change made the child that answered stale): wait
				// for more answers, which arm it again.
				timer = nil
				continue
			}
			took := now.Sub(start)
			// A child that answered other calls within the wait is
			// slow, not stuck: it gets the rest of a wait from its
			// last answer.
			var again time.Duration
			busy := make([]bool, n)
			for i := range r.kids {
				if set[i] && !out[i].done {
					if left := r.cutIn(i, now, q, took); left > 0 {
						busy[i], again = true, max(again, left)
					}
				}
			}
			if again > 0 {
				timer = time.NewTimer(again)
				cut = timer.C
			}
			r.lag.mu.Lock()
			for i := range r.kids {
				if set[i] && !out[i].done && !busy[i] && state[i].CompareAndSwap(callRunning, callCut) {
					r.cutStart(i, took, q, &ids[i], cancels[i])
					out[i] = reply{err: r.errLagging(i, took, q), done: true, at: now}
					left--
				}
			}
			r.lag.mu.Unlock()
			// A child that answered as the cut came is in ch.
		}
	}
	if timer != nil {
		timer.Stop()
	}
	res := lagReplies{rs: out, cut: make([]chan error, n), memo: &cutMemo{}}
	for i := range out {
		if state[i].Load() == callCut {
			res.cut[i] = lateCh[i]
		}
	}
	return res
}

// cutIn is how much longer child i, still working on a change that has
// run for took while a quorum answered in q, is waited for: none once it
// has been silent (answered no call of a change) for a whole wait, or the
// change reached the fop timeout; else the rest of that wait. Counted
// from its last answer, a child frozen just after the change went out is
// cut one wait after it fell silent, not a second wait later.
func (r *Replicate) cutIn(i int, now time.Time, q, took time.Duration) time.Duration {
	if took >= r.opts.FopTimeout {
		return 0
	}
	last := time.Unix(0, r.lag.answered[i].Load())
	return max(0, last.Add(r.lagWaitFor(i, q)).Sub(now))
}

// callOne runs fn for child i bounded by the fop timeout; a child that
// times out is dropped (Kick) so that it releases our locks before anybody
// relies on it again.
func (r *Replicate) callOne(ctx context.Context, i int, fn func(ctx context.Context, i int) error) error {
	cctx, cancel := context.WithTimeout(ctx, r.opts.FopTimeout)
	defer cancel()
	return r.callIn(cctx, ctx, i, fn)
}

// callIn is callOne's call in cctx, ctx bounded by the fop timeout.
func (r *Replicate) callIn(cctx, ctx context.Context, i int, fn func(ctx context.Context, i int) error) error {
	start := time.Now()
	err := fn(cctx, i)
	if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		r.event(i, evKick, time.Since(start))
		r.kids[i].Kick("a fop did not complete within the fop timeout")
		err = &fop.OpError{Brick: r.kids[i].Name(), Errno: syscall.ENOTCONN, Err: err}
	}
	return err
}
