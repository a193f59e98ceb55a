package fop

import (
	"context"
	"sync"
)

// Releaser gives back storage that must no longer be used (a brick
// client's pooled reply record).
type Releaser interface{ Release() }

// ReadBufs lets the layer that ends a READ (fuse, once it has copied the
// data into its reply) give back the pooled storage the data came in. A brick client
// that answers a READ with data in pooled storage keeps it here (Keep);
// the layer at the top takes back the storage of the data it got (Take)
// and releases it when it is done with it. Storage kept for data that
// never reaches the top (a read a replica set moved on from, a heal's
// read) is simply never released: the garbage collector takes it, as it
// takes any allocation. So nothing a layer keeps is ever reused under it.
//
// The rule every layer between a brick and the top keeps: READ data it
// hands up is not also kept or handed elsewhere (a cache, a read-ahead, a
// repair writing it to another brick); a layer that needs to keep it
// copies it, or Takes its storage first and so owns it.
type ReadBufs struct {
	mu   sync.Mutex
	n    int
	ents [4]readBuf // bounded: reads beyond it are left to the collector
}

type readBuf struct {
	data *byte // the first byte of the data handed up
	size int
	rel  Releaser
}

type readBufsKey struct{}

// WithReadBufs returns a context whose READs may keep pooled storage in
// the returned ReadBufs.
func WithReadBufs(ctx context.Context) (context.Context, *ReadBufs) {
	rb := &ReadBufs{}
	return context.WithValue(ctx, readBufsKey{}, rb), rb
}

// ReadBufsOf returns the ReadBufs of ctx, or nil.
func ReadBufsOf(ctx context.Context) *ReadBufs {
	rb, _ := ctx.Value(readBufsKey{}).(*ReadBufs)
	return rb
}

// Keep records that data lives in storage rel gives back. It returns
// false (and keeps nothing) when it is full or data is empty: the caller
// then leaves the storage to the collector.
func (rb *ReadBufs) Keep(data []byte, rel Releaser) bool {
	if rb == nil || len(data) == 0 {
		return false
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.n == len(rb.ents) {
		return false
	}
	rb.ents[rb.n] = readBuf{data: &data[0], size: len(data), rel: rel}
	rb.n++
	return true
}

// Take returns the storage kept for exactly data (same first byte, same
// length), forgetting it, or nil when data is not what a brick handed up
// (a layer copied or assembled it). Whatever else was kept stays with the
// collector.
func (rb *ReadBufs) Take(data []byte) Releaser {
	if rb == nil || len(data) == 0 {
		return nil
	}
	p := &data[0]
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for i := 0; i < rb.n; i++ {
		if e := rb.ents[i]; e.data == p && e.size == len(data) {
			rb.ents[i] = rb.ents[rb.n-1]
			rb.ents[rb.n-1] = readBuf{}
			rb.n--
			return e.rel
		}
	}
	return nil
}
