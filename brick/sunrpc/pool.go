package sunrpc

import "sync"

// Large replies (READ data) are read into buffers from a pool, so that a
// stream of reads reuses a few buffers instead of leaving the garbage
// collector a record of each to return: the mount's memory then follows
// how many reads are in flight, not how fast they come.
const (
	poolMin = 64 << 10 // smaller records are plain allocations
	poolMax = 4 << 20  // larger ones (none in practice) too
	// poolSlack rounds a class up past its power of two: a 1 MiB READ's
	// record is 1 MiB plus its headers, and must not take a 2 MiB class.
	poolSlack = 4 << 10
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

// pools holds one pool per class, poolMin<<0 to poolMin<<6 = poolMax.
var pools [7]sync.Pool

// classOf is the pool class of an n-byte record (poolMin <= n <= poolMax):
// class k holds poolMin<<k + poolSlack bytes.
func classOf(n int) int {
	k := 0
	for poolMin<<k+poolSlack < n {
		k++
	}
	return k
}

// getBuf returns a pooled buffer of length n, or nil when n is outside
// the pooled sizes.
func getBuf(n int) *Buf {
	if n < poolMin || n > poolMax {
		return nil
	}
	k := classOf(n)
	if k >= len(pools) {
		return nil
	}
	if b, ok := pools[k].Get().(*Buf); ok {
		b.b = b.b[:n]
		return b
	}
	return &Buf{b: make([]byte, n, poolMin<<k+poolSlack), class: k}
}
