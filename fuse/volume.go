package fuse

import (
	"context"

	"github.com/brickfs/brickfs/brick/fop"
)

// Volume is what the filesystem drives: the fops of the volume graph
// (failover.Volume satisfies it; cmd asserts so).
type Volume interface {
	fop.Fops
	// ZerofillKeepSize is fallocate(ZERO_RANGE|KEEP_SIZE), which no brick
	// fop carries out alone.
	ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error
}
