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

	ctx sync.Map // layer key -> that layer's state
}

// SetCtx stores v as the state of the layer whose key is key.
func (f *Fd) SetCtx(key, v any) { f.ctx.Store(key, v) }

// Ctx returns the state the layer whose key is key stored, if any.
func (f *Fd) Ctx(key any) (any, bool) { return f.ctx.Load(key) }

// DelCtx drops that layer's state.
func (f *Fd) DelCtx(key any) { f.ctx.Delete(key) }
