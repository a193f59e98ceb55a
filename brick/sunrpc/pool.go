package sunrpc

import (
	"sync"
	"time"
)

// Large replies (READ data that has no Into to go to: a heal's, a copy's;
// READDIRP entries) are read into buffers from a free list, so that a
// stream of them reuses a few buffers instead of leaving the garbage
// collector a record of each to return: the mount's memory then follows
// how many are in flight, not how fast they come. Only the callers that
// ask for a reply's storage (CallBuf) give it back; other large records
// taken from the list are left to the collector. A FUSE READ's data goes
// straight to the reply buffer (Into) and takes nothing from the list.
//
// The list is ours, not a sync.Pool: a sync.Pool is emptied over two
// collections, and under the daemon's memory limit the collector runs
// often exactly when reads are heavy, so the pool would be empty when it
// matters most. The list instead holds at most poolKeep bytes, so what it
// keeps is bounded whatever the load was, and lets go of it when idle.
const (
	poolMin  = 64 << 10 // smaller records are plain allocations
	poolMax  = 4 << 20  // larger ones (none in practice) too
	poolStep = 64 << 10 // class k holds (k+1)*poolStep bytes: a 1 MiB READ's record (1 MiB and its headers) wastes under 64 KiB
	// poolKeep bounds the bytes the free list holds: seven 1 MiB READs'
	// records (1088 KiB each). Records are out only between a brick
	// connection's reader and the caller it wakes, which copies the
	// data out: eight cover that, also for a dozen bricks.
	poolKeep = 8 << 20
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

// freeList holds released buffers by class, poolKeep bytes at most. When
// a buffer does not fit, buffers of the class holding the most bytes
// (other than its own) make room: after a burst of one size the list
// follows the sizes now in use instead of keeping the old ones. A list
// nobody took from for poolIdle is emptied, so an idle mount gives its
// buffers back to the collector.
type freeList struct {
	mu    sync.Mutex
	free  [poolMax / poolStep][]*Buf
	bytes int  // held, by capacity
	taken bool // a get was served since the last idle check
	timer bool // the idle check is running
}

// poolIdle is how long a free list nobody takes from keeps its buffers.
const poolIdle = 10 * time.Second

var pool freeList

func (l *freeList) put(b *Buf) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := cap(b.b)
	if c > poolKeep {
		return
	}
	for l.bytes+c > poolKeep {
		victim, most := -1, 0
		for k, f := range l.free {
			if held := len(f) * (k + 1) * poolStep; k != b.class && held > most {
				victim, most = k, held
			}
		}
		if victim < 0 {
			return // the list is full of this class already
		}
		l.drop(victim)
	}
	l.free[b.class] = append(l.free[b.class], b)
	l.bytes += c
	if !l.timer {
		l.timer = true
		time.AfterFunc(poolIdle, l.idleCheck)
	}
}

// drop lets the collector have one buffer of class k.
func (l *freeList) drop(k int) {
	f := l.free[k]
	b := f[len(f)-1]
	f[len(f)-1] = nil
	l.free[k] = f[:len(f)-1]
	l.bytes -= cap(b.b)
}

// idleCheck empties the list if nothing was taken from it since the last
// check, and checks again later while it holds anything.
func (l *freeList) idleCheck() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.taken {
		for k := range l.free {
			clear(l.free[k])
			l.free[k] = nil
		}
		l.bytes = 0
	}
	l.taken = false
	if l.bytes > 0 {
		time.AfterFunc(poolIdle, l.idleCheck)
	} else {
		l.timer = false
	}
}

// get takes a buffer of class k, or of the smallest larger class the list
// has: READs come in every size (a VM's 4k-1M requests), and a buffer
// kept only for its own size would be taken by few of them (an exact
// match took under a third of them in a 4-VM run of random 4k-1M I/O).
func (l *freeList) get(k int) *Buf {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k < len(l.free) && len(l.free[k]) == 0 {
		k++
	}
	if k == len(l.free) {
		return nil
	}
	f := l.free[k]
	b := f[len(f)-1]
	f[len(f)-1] = nil
	l.free[k] = f[:len(f)-1]
	l.bytes -= cap(b.b)
	l.taken = true
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
