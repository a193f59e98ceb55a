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

	"github.com/brickfs/brickfs/brick/fop"
)

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
	one := func(i int) {
		err := r.callOne(ctx, i, fn)
		out[i] = reply{err: err, done: true, at: time.Now()}
	}
	last := -1
	var wg sync.WaitGroup
	for i := range r.kids {
		if !set[i] {
			continue
		}
		if last >= 0 {
			wg.Add(1)
			j := last
			r.workers.run(func() {
				defer wg.Done()
				one(j)
			})
		}
		last = i
	}
	// The last child's part runs here: the caller waits anyway, and its
	// grown stack saves a goroutine's.
	if last >= 0 {
		one(last)
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

// ownErrno reports whether err is a brick's own op_errno (an *OpError
// without a cause of ours) other than ENOTCONN.
func ownErrno(err error) bool {
	var oe *fop.OpError
	return errors.As(err, &oe) && oe.Err == nil && oe.Errno != syscall.ENOTCONN
}

// outcome judges a fop's replies on part. It returns the children that
// succeeded and the error for the caller: a symmetric error, no quorum,
// or nil; failed children left to accuse are part minus ok.
func (r *Replicate) outcome(rs []reply, part []bool) (ok []bool, err error) {
	ok = succeeded(rs, part)
	switch {
	case count(ok) == count(part):
		return ok, nil
	case count(ok) == 0 && symmetric(rs, part):
		return ok, r.finalErr(rs, part)
	case !r.hasQuorum(ok):
		// Succeeded on too few: report the failure with the bricks' own
		// errno (afr_final_errno), ENOTCONN when they had none.
		return ok, r.quorumErr("", rs, part)
	}
	return ok, nil
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

// maxIdleWorkers bounds the fan-out goroutines kept waiting for work.
const maxIdleWorkers = 64

// workers runs the children's parts of a fan-out. A goroutine that
// finished one waits for the next instead of exiting, so the stack it grew
// serves again: a new goroutine starts small and grows its stack on every
// fop, which cost a quarter of a replicated write's time.
type workers struct {
	jobs chan func() // unbuffered: a send succeeds when a worker waits
	stop chan struct{}
	idle atomic.Int32
}

func newWorkers() *workers { return &workers{jobs: make(chan func()), stop: make(chan struct{})} }

// run has an idle worker run fn, or a new one.
func (w *workers) run(fn func()) {
	select {
	case w.jobs <- fn:
	default:
		go w.loop(fn)
	}
}

func (w *workers) loop(fn func()) {
	for {
		fn()
		if w.idle.Add(1) > maxIdleWorkers {
			w.idle.Add(-1)
			return
		}
		select {
		case fn = <-w.jobs:
			w.idle.Add(-1)
		case <-w.stop:
			w.idle.Add(-1)
			return
		}
	}
}
