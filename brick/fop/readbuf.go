package fop

import (
	"context"
	"sync/atomic"
	"unsafe"
)

// ReadDest is the buffer the layer that ends a READ (fuse: its reply to the
// kernel) wants the data in. A brick client reads a large reply's data
// straight into it, so that a READ in flight holds one buffer of its size
// instead of that and a record of the brick's reply to copy from.
//
// One read at a time may fill it: a layer takes it (Take) for the brick
// call or the assembly it does, and gives it back (Give) once nothing
// writes to it any more; a read that finds it taken reads into storage of
// its own. A layer that splits a read (shard) takes the buffer and hands
// each piece a ReadDest over its part (WithReadDest).
//
// The rules every layer keeps:
//   - The data a READ returns may be the buffer (or a prefix of it): a
//     layer that keeps READ data (a cache, a repair writing it elsewhere)
//     copies it.
//   - A layer that reads again with the same context (a retry on another
//     brick) gives up the data of the earlier read: the next one may
//     overwrite it.
//   - A READ of another range with the caller's context (none does today)
//     must strip the ReadDest first (WithoutReadDest).
type ReadDest struct {
	buf   []byte
	taken atomic.Bool
}

type readDestKey struct{}

// WithReadDest returns a context whose READ may put its data in buf.
func WithReadDest(ctx context.Context, buf []byte) context.Context {
	return context.WithValue(ctx, readDestKey{}, &ReadDest{buf: buf})
}

// WithoutReadDest returns ctx without its ReadDest, if it has one.
func WithoutReadDest(ctx context.Context) context.Context {
	if ReadDestOf(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, readDestKey{}, (*ReadDest)(nil))
}

// ReadDestOf returns the ReadDest of ctx, or nil.
func ReadDestOf(ctx context.Context) *ReadDest {
	rd, _ := ctx.Value(readDestKey{}).(*ReadDest)
	return rd
}

// Take returns the first size bytes of the buffer, for the caller alone
// until it calls Give, or nil when rd is nil, the buffer is shorter or
// another read has it.
func (rd *ReadDest) Take(size int) []byte {
	if rd == nil || size > len(rd.buf) || !rd.taken.CompareAndSwap(false, true) {
		return nil
	}
	return rd.buf[:size:size]
}

// Give hands the buffer back after Take: nothing may write to it any more.
func (rd *ReadDest) Give() { rd.taken.Store(false) }

// InBuf reports whether data begins where buf does: a READ's answer already
// in the caller's buffer, which need not be copied there.
func InBuf(data, buf []byte) bool {
	return len(data) > 0 && len(buf) > 0 && unsafe.SliceData(data) == unsafe.SliceData(buf)
}
