package fop

import (
	"sync"

	"github.com/brickfs/brickfs/brick/xdr"
)

// Fd is an open file or directory. GFID, Flags and Dir are set when it is
// made and never change; each layer keeps its own state about the open in
// the Fd's context (fd_ctx).
type Fd struct {
	GFID  xdr.GFID
	Flags uint32
	Dir   bool
	// Anon marks an anonymous fd (GF_ANON_FD_NO): nothing is opened; the
	// brick opens the inode for each fop by its gfid, with the O_DIRECT
	// bit of Flags. It is never released, survives reconnects as is, and
	// a fop on an inode that is gone fails (ESTALE) instead of reaching
	// an unlinked file through an old open.
	Anon bool

	ctx sync.Map // layer key -> that layer's state
}

// SetCtx stores v as the state of the layer whose key is key.
func (f *Fd) SetCtx(key, v any) { f.ctx.Store(key, v) }

// Ctx returns the state the layer whose key is key stored, if any.
func (f *Fd) Ctx(key any) (any, bool) { return f.ctx.Load(key) }

// DelCtx drops that layer's state.
func (f *Fd) DelCtx(key any) { f.ctx.Delete(key) }

// AnonFd returns an anonymous fd of gfid (see Fd.Anon): what the shard
// layer does its block I/O through, as GlusterFS's shard does.
func AnonFd(gfid xdr.GFID, flags uint32) *Fd { return &Fd{GFID: gfid, Flags: flags, Anon: true} }
