package fop

import (
	"context"
	"testing"
)

// One read at a time takes a ReadDest, and only one it fits; Give frees
// it; a context without one, or one stripped of it, has none to take.
func TestReadDestTakeGive(t *testing.T) {
	buf := make([]byte, 8)
	ctx := WithReadDest(context.Background(), buf)
	rd := ReadDestOf(ctx)
	if rd == nil {
		t.Fatal("ReadDestOf does not find the context's ReadDest")
	}
	if b := rd.Take(9); b != nil {
		t.Fatal("a READ larger than the buffer took it")
	}
	b := rd.Take(4)
	if len(b) != 4 || cap(b) != 4 || !InBuf(b, buf) {
		t.Fatalf("Take(4) = %d bytes (room %d), in the buffer %v; want the buffer's first 4, capped", len(b), cap(b), InBuf(b, buf))
	}
	if rd.Take(1) != nil {
		t.Fatal("a second read took a ReadDest already taken")
	}
	rd.Give()
	if rd.Take(8) == nil {
		t.Fatal("a ReadDest given back cannot be taken again")
	}
	if ReadDestOf(WithoutReadDest(ctx)) != nil || ReadDestOf(context.Background()) != nil {
		t.Error("a context without a ReadDest has one")
	}
	var none *ReadDest
	if none.Take(1) != nil {
		t.Error("a nil ReadDest gave a buffer")
	}
	if InBuf(buf[1:], buf) || InBuf(nil, buf) || !InBuf(buf[:1], buf) {
		t.Error("InBuf does not tell data at the buffer's start")
	}
}
