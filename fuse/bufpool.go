package fuse

import (
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// bufPool hands out the buffers FUSE requests and replies travel in: memory
// mapped outside Go's heap, in power-of-two classes from one page up, and
// given back explicitly when the reply is written.
//
// Outside the heap, they are what the mount's memory is made of, not what
// the garbage collector has yet to return: go-fuse allocated a reply buffer
// for every READ from a pool per exact page count (which a VM's mixed
// sizes rarely hit) and a request buffer of max_write for every WRITE in
// flight, and under the memory limit the heap's collections ran 7-8 times
// a second over them. A mapped page costs memory only once it is written,
// so a class larger than a request costs its address space only.
//
// A buffer given back stays mapped and is handed out again, most recently
// given back first. Idle buffers keep their pages while in use comes and
// goes; trim, once a second, returns to the kernel (MADV_DONTNEED) the
// pages of those that stayed idle the whole time past keepWarm bytes,
// the largest first. A released buffer's address stays valid, reads as
// zeros and costs nothing until written again, so a late reader of it can
// never fault. Buffers are never unmapped.
type bufPool struct {
	mu       sync.Mutex
	warm     [bufClasses][][]byte // GUARDED_BY(mu); idle, pages kept; LIFO
	cold     [bufClasses][][]byte // GUARDED_BY(mu); idle, pages returned
	warmSize int                  // GUARDED_BY(mu); bytes in warm
	lowWarm  [bufClasses]int      // GUARDED_BY(mu); the fewest in warm[c] since the last trim
	keepWarm int

	mapped   atomic.Int64 // bytes of address space mapped
	inUse    atomic.Int64 // bytes handed out, not yet given back
	maps     atomic.Int64 // buffers mapped
	released atomic.Int64 // times a buffer's pages went back to the kernel
}

// A class is a header page and a power-of-two number of payload pages: a
// request of max_write (up to 1 MiB) and its header, or a READ reply of
// max_write and its header, fit one exactly. bufClasses covers up to 4 MiB
// of payload.
const bufClasses = 11

const pageBytes = 4096

func newBufPool(keepWarm int) *bufPool { return &bufPool{keepWarm: keepWarm} }

// bufClass is the smallest class holding n bytes, or -1 past the largest.
func bufClass(n int) int {
	if n <= 2*pageBytes {
		return 0
	}
	payloadPages := (n - pageBytes + pageBytes - 1) / pageBytes
	c := bits.Len(uint(payloadPages - 1))
	if c >= bufClasses {
		return -1
	}
	return c
}

func classBytes(c int) int { return pageBytes + pageBytes<<c }

// pop takes the last buffer of l.
func pop(l *[][]byte) []byte {
	n := len(*l)
	b := (*l)[n-1]
	(*l)[n-1] = nil
	*l = (*l)[:n-1]
	return b
}

// get returns a buffer of n bytes whose capacity is its class's size.
func (p *bufPool) get(n int) ([]byte, error) {
	c := bufClass(n)
	if c < 0 {
		return nil, fmt.Errorf("a FUSE buffer of %d bytes is larger than the largest class (%d)", n, classBytes(bufClasses-1))
	}
	size := classBytes(c)
	var b []byte
	p.mu.Lock()
	switch {
	case len(p.warm[c]) > 0:
		b = pop(&p.warm[c])
		p.warmSize -= size
		p.lowWarm[c] = min(p.lowWarm[c], len(p.warm[c]))
	case len(p.cold[c]) > 0:
		b = pop(&p.cold[c])
	}
	p.mu.Unlock()
	if b == nil {
		var err error
		b, err = unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, fmt.Errorf("map a FUSE buffer of %d bytes: %w", size, err)
		}
		p.maps.Add(1)
		p.mapped.Add(int64(size))
	}
	p.inUse.Add(int64(size))
	return b[:n], nil
}

// put gives back a buffer from get; nil is ignored.
func (p *bufPool) put(b []byte) {
	if b == nil {
		return
	}
	b = b[:cap(b)]
	size := len(b)
	c := bufClass(size)
	p.inUse.Add(-int64(size))
	p.mu.Lock()
	p.warm[c] = append(p.warm[c], b)
	p.warmSize += size
	p.mu.Unlock()
}

// trim returns to the kernel the pages of the buffers that stayed idle
// since the last trim, past keepWarm bytes: the largest classes first,
// the longest idle of each first. A class in steady use keeps what it
// uses: only its buffers that nobody took since the last trim go.
func (p *bufPool) trim() {
	p.mu.Lock()
	excess := -p.keepWarm
	for c := range p.lowWarm {
		excess += p.lowWarm[c] * classBytes(c)
	}
	var cold [][]byte
	for c := bufClasses - 1; c >= 0 && excess > 0; c-- {
		// The bottom lowWarm[c] of the stack stayed idle throughout.
		k := min(p.lowWarm[c], (excess+classBytes(c)-1)/classBytes(c))
		for _, b := range p.warm[c][:k] {
			p.warmSize -= len(b)
			excess -= len(b)
			cold = append(cold, b)
		}
		clear(p.warm[c][:k])
		p.warm[c] = p.warm[c][k:]
	}
	for c := range p.lowWarm {
		p.lowWarm[c] = len(p.warm[c])
	}
	p.mu.Unlock()
	// Outside the lock: a page table walk of up to 4 MiB each.
	for _, b := range cold {
		if err := unix.Madvise(b, unix.MADV_DONTNEED); err == nil {
			p.released.Add(1)
		}
	}
	if len(cold) > 0 {
		p.mu.Lock()
		for _, b := range cold {
			c := bufClass(len(b))
			p.cold[c] = append(p.cold[c], b)
		}
		p.mu.Unlock()
	}
}

// bufStats is the pool's state (see BufferStats).
type bufStats struct {
	Mapped, InUse, Warm int64 // bytes
	Maps, Released      int64
}

func (p *bufPool) stats() bufStats {
	p.mu.Lock()
	warm := p.warmSize
	p.mu.Unlock()
	return bufStats{Mapped: p.mapped.Load(), InUse: p.inUse.Load(), Warm: int64(warm), Maps: p.maps.Load(), Released: p.released.Load()}
}
