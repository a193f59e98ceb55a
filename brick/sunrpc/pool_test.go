package sunrpc

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/brickfs/brickfs/brick/xdr"
)

// The classes cover every pooled size, and a 1 MiB READ's record (1 MiB of
// data and its headers) takes the 1 MiB class, not the next.
func TestPoolClasses(t *testing.T) {
	if k := classOf(poolMax); k != len(pool.free)-1 {
		t.Errorf("the largest pooled record is in class %d of %d", k, len(pool.free))
	}
	if k := classOf(1<<20 + 200); (k+1)*poolStep-(1<<20+200) >= poolStep {
		t.Errorf("a 1 MiB READ's record takes a %d-byte class", (k+1)*poolStep)
	}
	for _, n := range []int{poolMin, poolMin + 1, 1 << 20, 1<<20 + 1, poolMax} {
		if b := getBuf(n); b == nil || len(b.b) != n || cap(b.b) < n {
			t.Errorf("getBuf(%d) gave %v", n, b)
		}
	}
	if getBuf(poolMin-1) != nil || getBuf(poolMax+1) != nil {
		t.Error("sizes outside the pool come from it")
	}
}

// largeReplies runs calls calls on c whose peer answers each with body,
// releasing each reply's storage after checking it is the peer's bytes.
func largeReplies(tb testing.TB, c *Conn, p *peer, body []byte, calls int, each func()) {
	// One reply record, its xid patched per call: the peer's side
	// allocates nothing per reply.
	e := xdr.NewEncoder(24 + len(body))
	for _, v := range []uint32{0, MsgReply, 0, 0, 0, Success} {
		e.Uint32(v)
	}
	e.Raw(body)
	rep := frame(e.B)
	go func() {
		for i := 0; i < calls; i++ {
			rec := p.next()
			if rec == nil {
				return
			}
			copy(rep[4:8], rec[:4])
			p.write(rep)
		}
	}()
	for i := 0; i < calls; i++ {
		got, buf, err := c.CallBuf(context.Background(), 1, 1, 1, CredV2(0, 0, 0, nil, nil), nil, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if buf == nil || !bytes.Equal(got, body) {
			tb.Fatalf("reply %d: %d bytes, pooled %v, the peer's bytes %v", i, len(got), buf != nil, bytes.Equal(got, body))
		}
		buf.Release()
		if each != nil {
			each()
		}
	}
}

// Large replies come in pooled storage, and storage given back and
// reused holds each new reply's bytes, never an earlier one's.
func TestLargeRepliesInPooledStorage(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	a := bytes.Repeat([]byte("brickfs!"), 256<<10/8)
	largeReplies(t, c, p, a, 16, nil)
	b := bytes.Repeat([]byte("GLUSTER."), 256<<10/8)
	largeReplies(t, c, p, b, 16, nil)
}

// BenchmarkLargeReplies: a stream of 256 KiB replies whose storage is
// given back; B/op shows how much of what they move is allocated.
func BenchmarkLargeReplies(b *testing.B) {
	c, p := newPair(b, 1, Options{})
	body := bytes.Repeat([]byte("brickfs!"), 256<<10/8)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	largeReplies(b, c, p, body, b.N, nil)
}

// Released storage survives garbage collections (a sync.Pool's would be
// gone after two, and under the memory limit they come often), and the
// free list never holds more than poolKeep bytes.
func TestPoolKeepsBoundedStorageAcrossCollections(t *testing.T) {
	b := getBuf(1 << 20)
	b.b[0] = 42
	b.Release()
	runtime.GC()
	runtime.GC()
	runtime.GC()
	if got := getBuf(1 << 20); got != b {
		t.Errorf("a buffer released before three collections was not reused")
	} else {
		got.Release()
	}
	var bufs []*Buf
	for i := 0; i < 2*poolKeep/(1<<20); i++ {
		bufs = append(bufs, getBuf(1<<20))
	}
	for _, b := range bufs {
		b.Release()
	}
	if held := pool.held(); held > poolKeep || held < poolKeep-(2<<20) {
		t.Errorf("after releasing %d MiB the free list holds %d bytes; want at most %d and close to it", 2*poolKeep>>20, held, poolKeep)
	}
}

// After a burst of one size fills the free list, another size is still
// reused: its buffers make room by pushing the old size out.
func TestPoolFollowsTheSizesInUse(t *testing.T) {
	var small []*Buf
	for i := 0; i < 2*poolKeep/poolMin; i++ {
		small = append(small, getBuf(poolMin))
	}
	for _, b := range small {
		b.Release()
	}
	reused := 0
	for i := 0; i < 100; i++ {
		a, b := getBuf(1<<20), getBuf(1<<20)
		a.Release()
		if c := getBuf(1 << 20); c == a {
			reused++
			c.Release()
		} else {
			c.Release()
		}
		b.Release()
	}
	if reused < 99 {
		t.Errorf("after a burst of 64 KiB buffers, 1 MiB buffers were reused %d times of 100", reused)
	}
	if held := pool.held(); held > poolKeep {
		t.Errorf("the free list holds %d bytes, more than %d", held, poolKeep)
	}
}

// A free list nobody takes from is emptied at its idle check; one in use
// is not.
func TestPoolIdleListEmptied(t *testing.T) {
	var l freeList
	l.timer = true // no timer of its own: the test calls idleCheck
	b := &Buf{b: make([]byte, poolMin), class: 0}
	l.put(b)
	if got := l.get(0); got != b {
		t.Fatal("the buffer put was not taken back")
	}
	l.put(b)
	l.idleCheck() // taken since the last check: kept
	if l.held() == 0 {
		t.Fatal("a list in use was emptied")
	}
	l.idleCheck() // nothing taken since: emptied
	if l.held() != 0 || l.get(0) != nil {
		t.Fatalf("an idle list still holds %d bytes", l.held())
	}
}

// A record smaller than the buffers the free list holds takes one of
// them: reads of every size reuse the storage of the largest.
func TestPoolSmallRecordTakesALargerBuffer(t *testing.T) {
	pool.mu.Lock()
	saved, savedBytes := pool.free, pool.bytes
	pool.free, pool.bytes = [len(pool.free)][]*Buf{}, 0
	pool.mu.Unlock()
	t.Cleanup(func() {
		pool.mu.Lock()
		pool.free, pool.bytes = saved, savedBytes
		pool.mu.Unlock()
	})
	b := getBuf(1 << 20)
	b.Release()
	got := getBuf(poolMin)
	if got != b {
		t.Fatalf("a %d-byte record did not reuse the free 1 MiB buffer", poolMin)
	}
	if len(got.b) != poolMin {
		t.Errorf("the record has %d bytes, want %d", len(got.b), poolMin)
	}
	if held := pool.held(); held != 0 {
		t.Errorf("the free list counts %d bytes with its only buffer out", held)
	}
	got.Release()
	if held, want := pool.held(), cap(b.b); held != want {
		t.Errorf("the free list counts %d bytes with the 1 MiB buffer back; want %d", held, want)
	}
	if again := getBuf(1 << 20); again != b {
		t.Error("the 1 MiB buffer did not go back to its own size's list")
	} else {
		again.Release()
	}
}
