package fop

import (
	"context"
	"sync"
)

// A DataHold counts the calls that may still read a WRITE's data after the
// fop has returned: a replica set's write to a brick cut for lagging goes
// on in the background, and the brick client sends the caller's bytes as
// they are. The caller that owns the data (the FUSE layer, whose request
// buffer it is) puts a DataHold in the fop's context, seals it when the
// fop returns and, if it is still held, keeps the data unchanged until
// Wait returns.
type DataHold struct {
	mu     sync.Mutex
	n      int           // GUARDED_BY(mu); calls counted and not ended
	sealed bool          // GUARDED_BY(mu); the fop returned: no more calls counted
	idle   chan struct{} // GUARDED_BY(mu); closed when n falls to 0, if a Wait waits
}

type dataHoldKey struct{}

// WithDataHold returns a context whose data changes count their calls in h.
func WithDataHold(ctx context.Context, h *DataHold) context.Context {
	return context.WithValue(ctx, dataHoldKey{}, h)
}

// DataHoldOf returns the DataHold of ctx, or nil.
func DataHoldOf(ctx context.Context) *DataHold {
	h, _ := ctx.Value(dataHoldKey{}).(*DataHold)
	return h
}

// Add counts a call that may read the data, before the fop returns. It
// reports whether it counted it (not on a nil or sealed hold); only then
// must the call end with Done.
func (h *DataHold) Add() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sealed {
		return false
	}
	h.n++
	return true
}

// Done ends a call Add counted.
func (h *DataHold) Done() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		panic("fop: DataHold.Done without a counted Add")
	}
	h.n--
	if h.n == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
}

// Seal ends the counting: the fop has returned, and a call it started
// later (none should) reads data its owner may have reused.
func (h *DataHold) Seal() {
	if h == nil {
		return
	}
	h.mu.Lock()
	h.sealed = true
	h.mu.Unlock()
}

// Held reports whether a counted call has not ended.
func (h *DataHold) Held() bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n > 0
}

// Wait returns once every counted call has ended.
func (h *DataHold) Wait() {
	if h == nil {
		return
	}
	h.mu.Lock()
	if h.n == 0 {
		h.mu.Unlock()
		return
	}
	if h.idle == nil {
		h.idle = make(chan struct{})
	}
	ch := h.idle
	h.mu.Unlock()
	<-ch
}
