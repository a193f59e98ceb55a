package fuse

import (
	"context"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/failover"
)

// Volume is what the filesystem drives: the fops of the volume graph.
type Volume interface {
	failover.Fops
	// ZerofillKeepSize is fallocate(ZERO_RANGE|KEEP_SIZE), which no brick
	// fop carries out alone.
	ZerofillKeepSize(ctx context.Context, f *brick.Fd, off, length uint64) error
}

var _ Volume = (*failover.Volume)(nil)
