package fuse

import (
	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/failover"
)

// Volume is what the filesystem drives: the fops of the volume graph.
type Volume = failover.Fops

var _ Volume = (*brick.Client)(nil)
