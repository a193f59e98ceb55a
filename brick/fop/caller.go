package fop

import (
	"context"
	"crypto/rand"
)

// Caller is who a fop runs as: the process behind a FUSE request.
type Caller struct {
	Pid      int32
	UID, GID uint32
	Groups   []uint32
	// LkOwner is the lock owner (8 bytes from the kernel for POSIX locks and
	// FLUSH); empty means the pid as 4 little-endian bytes, as rpc-clnt sends.
	LkOwner []byte
}

type callerKey struct{}

// WithCaller returns ctx carrying who the fops run as. Fops on a context
// without a Caller run as an internal frame: pid 0, uid 0, gid 0.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf returns the Caller ctx carries, nil for an internal frame.
func CallerOf(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}

// AsInternal returns ctx running its fops as an internal frame (root),
// keeping the caller's pid: what a layer's own fops run as (shard's
// blocks, DHT's linkto files and heals).
func AsInternal(ctx context.Context) context.Context {
	c := &Caller{}
	if cl := CallerOf(ctx); cl != nil {
		c.Pid = cl.Pid
	}
	return WithCaller(ctx, c)
}

// WithNewLkOwner is AsInternal with a lock owner of its own: each lock
// sequence a layer takes is one frame in GlusterFS.
func WithNewLkOwner(ctx context.Context) context.Context {
	c := &Caller{LkOwner: make([]byte, 8)}
	if cl := CallerOf(ctx); cl != nil {
		c.Pid = cl.Pid
	}
	_, _ = rand.Read(c.LkOwner)
	return WithCaller(ctx, c)
}
