package sunrpc

import "sync"

// Large replies (READ data) are read into buffers from a pool, so that a
// stream of reads reuses a few buffers instead of leaving the garbage
// collector a record of each to return: the mount's memory then follows
// how many reads are in flight, not how fast they come. Only the callers
// that ask for a reply's storage (CallBuf) give it back; other large
// records taken from the pool are left to the collector.
const (
	poolMin  = 64 << 10 // smaller records are plain allocations
	poolMax  = 4 << 20  // larger ones (none in practice) too
	poolStep = 64 << 10 // class k holds (k+1)*poolStep bytes: a 1 MiB READ's record (1 MiB and its headers) wastes under 64 KiB
)

// Buf is the storage of one record taken from the pool. Release gives it
// back once nothing refers to the record's bytes any more; a Buf never
// released is collected as any allocation is.
type Buf struct {
	b     []byte
	class int
}

// Release returns b to the pool. The record's bytes, and every slice of
// them, must not be used afterwards. A nil Buf is a no-op.
func (b *Buf) Release() {
	if b != nil {
		pools[b.class].Put(b)
	}
}

// pools holds one pool per class, up to poolMax.
var pools [poolMax / poolStep]sync.Pool

// classOf is the pool class of an n-byte record, poolMin <= n <= poolMax.
func classOf(n int) int { return (n+poolStep-1)/poolStep - 1 }

// getBuf returns a pooled buffer of length n, or nil when n is outside
// the pooled sizes. A miss allocates the class's size.
func getBuf(n int) *Buf {
	if n < poolMin || n > poolMax {
		return nil
	}
	k := classOf(n)
	if b, ok := pools[k].Get().(*Buf); ok {
		b.b = b.b[:n]
		return b
	}
	return &Buf{b: make([]byte, n, (k+1)*poolStep), class: k}
}
