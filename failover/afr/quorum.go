package afr

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
)

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

// HasQuorum reports whether the children in set meet client quorum.
func (r *Replicate) HasQuorum(set []bool) bool { return r.hasQuorum(set) }

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

// quorumErr is the error of a fop that succeeded on too few children of
// set: the bricks' own errno by afr_final_errno's order, ENOTCONN ("client
// quorum is not met") when none gave one.
func (r *Replicate) quorumErr(op string, rs []reply, set []bool) error {
	err := r.finalErr(rs, set)
	if fop.Errno(err) == syscall.ENOTCONN {
		return r.errNoQuorum(op)
	}
	return err
}
