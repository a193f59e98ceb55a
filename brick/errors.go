package brick

import (
	"errors"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/sunrpc"
)

// OpError is a failed fop on one brick (fop.OpError).
type OpError = fop.OpError

// Errno returns the errno an error stands for: the brick's op_errno, ENOTCONN
// for lost connections and pending calls cut off by a disconnect, ETIMEDOUT
// for calls whose deadline passed, and EIO for anything else.
func Errno(err error) syscall.Errno {
	var oe *OpError
	if err != nil && !errors.As(err, &oe) && errors.Is(err, sunrpc.ErrDisconnected) {
		return syscall.ENOTCONN
	}
	return fop.Errno(err)
}
