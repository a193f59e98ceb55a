package sunrpc

import "sync"

// Large replies (READ data) are read into buffers from a free list, so
// that a stream of reads reuses a few buffers instead of leaving the
// garbage collector a record of each to return: the mount's memory then
// follows how many reads are in flight, not how fast they come. Only the
// callers that ask for a reply's storage (CallBuf) give it back; other
// large records taken from the list are left to the collector.
//
// The list is ours, not a sync.Pool: a sync.Pool is emptied over two
// collections, and under the daemon's memory limit the collector runs
// often exactly when reads are heavy, so the pool would be empty when it
// matters most. The list instead holds at most poolKeep bytes, so what it
// keeps is bounded whatever the load was.
const (
	poolMin  = 64 << 10 // smaller records are plain allocations
	poolMax  = 4 << 20  // larger ones (none in practice) too
	poolStep = 64 << 10 // class k holds (k+1)*poolStep bytes: a 1 MiB READ's record (1 MiB and its headers) wastes under 64 KiB
	// poolKeep bounds the bytes the free list holds: 32 x 1 MiB READs,
	// four VMs' queues of 8.
	poolKeep = 32 << 20
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
		pool.put(b)
	}
}

// freeList holds released buffers by class, poolKeep bytes at most.
type freeList struct {
	mu    sync.Mutex
	free  [poolMax / poolStep][]*Buf
	bytes int // held, by capacity
}

var pool freeList

func (l *freeList) put(b *Buf) {
	l.mu.Lock()
	if c := cap(b.b); l.bytes+c <= poolKeep {
		l.free[b.class] = append(l.free[b.class], b)
		l.bytes += c
	}
	l.mu.Unlock()
}

func (l *freeList) get(k int) *Buf {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.free[k]
	if len(f) == 0 {
		return nil
	}
	b := f[len(f)-1]
	f[len(f)-1] = nil
	l.free[k] = f[:len(f)-1]
	l.bytes -= cap(b.b)
	return b
}

// held is the bytes the free list holds.
func (l *freeList) held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bytes
}

// classOf is the pool class of an n-byte record, poolMin <= n <= poolMax.
func classOf(n int) int { return (n+poolStep-1)/poolStep - 1 }

// getBuf returns a pooled buffer of length n, or nil when n is outside
// the pooled sizes. A miss allocates the class's size.
func getBuf(n int) *Buf {
	if n < poolMin || n > poolMax {
		return nil
	}
	k := classOf(n)
	if b := pool.get(k); b != nil {
		b.b = b.b[:n]
		return b
	}
	return &Buf{b: make([]byte, n, (k+1)*poolStep), class: k}
}
