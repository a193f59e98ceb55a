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
	if k := classOf(poolMax); k != len(pools)-1 {
		t.Errorf("the largest pooled record is in class %d of %d", k, len(pools))
	}
	if k := classOf(1<<20 + 200); poolMin<<k != 1<<20 {
		t.Errorf("a 1 MiB READ's record takes a %d-byte class", poolMin<<k)
	}
	if getBuf(poolMin-1) != nil || getBuf(poolMax+1) != nil {
		t.Error("sizes outside the pool come from it")
	}
}

// Large replies whose storage is released are read into reused buffers:
// a stream of them allocates a small part of the bytes it moves, and the
// bytes are the peer's.
func TestLargeRepliesReuseStorage(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const size, calls = 256 << 10, 64
	body := bytes.Repeat([]byte("brickfs!"), size/8)
	// One reply record, its xid patched per call: the peer's side
	// allocates nothing per reply, so what is counted is this end's.
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
	call := func() {
		got, buf, err := c.CallBuf(context.Background(), 1, 1, 1, CredV2(0, 0, 0, nil, nil), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if buf == nil || !bytes.Equal(got, body) {
			t.Fatalf("reply of %d bytes, pooled %v", len(got), buf != nil)
		}
		buf.Release()
	}
	call() // the pool's first buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 1; i < calls; i++ {
		call()
	}
	runtime.ReadMemStats(&after)
	moved := uint64((calls - 1) * size)
	// Under the race detector sync.Pool drops a quarter of what it is
	// given back; without the pool, every reply allocates its size.
	if got := after.TotalAlloc - before.TotalAlloc; got > moved/2 {
		t.Errorf("%d replies of %d KiB allocated %d KiB (%d%% of what they moved)", calls-1, size>>10, got>>10, 100*got/moved)
	}
}
