package fop

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/brickfs/brickfs/brick/xdr"
)

// OpError is a failed fop on one brick or one node of the graph.
type OpError struct {
	Brick string // the brick's or node's translator name
	Fop   string
	GFID  xdr.GFID
	Errno syscall.Errno
	Err   error // the cause when it was not the brick's own op_errno
}

func (e *OpError) Error() string {
	s := e.Brick
	if e.Fop != "" {
		s += " " + e.Fop
	}
	if !e.GFID.IsZero() {
		s += " " + e.GFID.String()
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v: %v", s, e.Errno, e.Err)
	}
	return fmt.Sprintf("%s: %v", s, e.Errno)
}

func (e *OpError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return e.Errno
}

// Errno returns the errno an error stands for: an OpError's, a bare
// syscall.Errno, and EIO for anything else.
func Errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return oe.Errno
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en
	}
	return syscall.EIO
}

// ErrOnly drops a fop's reply xdata where only its error matters:
// ErrOnly(v.Flush(ctx, f, nil)).
func ErrOnly(_ xdr.Dict, err error) error { return err }

// ErrOnly2 is ErrOnly for fops that answer a dict besides the reply's
// xdata (Getxattr, Xattrop).
func ErrOnly2(_, _ xdr.Dict, err error) error { return err }

// ErrOnlyPrePost is ErrOnly for fops that answer the attributes before
// and after a change (Write, Truncate, Fallocate, ...).
func ErrOnlyPrePost(_, _ xdr.Iatt, _ xdr.Dict, err error) error { return err }
