package fop

import (
	"context"
	"testing"
)

type countRel struct{ n *int }

func (c countRel) Release() { *c.n++ }

// Only the exact data a brick kept comes back, once; a copy, a prefix or
// data never kept does not, and a full ReadBufs keeps nothing more.
func TestReadBufsTakeExact(t *testing.T) {
	ctx, rb := WithReadBufs(context.Background())
	if ReadBufsOf(ctx) != rb {
		t.Fatal("ReadBufsOf does not find the context's ReadBufs")
	}
	var released int
	store := make([]byte, 100)
	data := store[10:60]
	if !rb.Keep(data, countRel{&released}) {
		t.Fatal("Keep refused with room left")
	}
	if rb.Take(append([]byte{}, data...)) != nil {
		t.Error("a copy of the data took its storage")
	}
	if rb.Take(data[:20]) != nil {
		t.Error("a prefix of the data took its storage")
	}
	if rb.Take(store[:50]) != nil {
		t.Error("other bytes of the same storage took it")
	}
	rel := rb.Take(data)
	if rel == nil {
		t.Fatal("the data kept did not give its storage back")
	}
	rel.Release()
	if released != 1 || rb.Take(data) != nil {
		t.Errorf("released %d times, and taken again: %v", released, rb.Take(data) != nil)
	}
	for i := 0; i < 4; i++ {
		if !rb.Keep(make([]byte, 8), countRel{&released}) {
			t.Fatalf("Keep %d refused", i)
		}
	}
	if rb.Keep(make([]byte, 8), countRel{&released}) {
		t.Error("a full ReadBufs kept more")
	}
	var none *ReadBufs
	if none.Keep(data, countRel{&released}) || none.Take(data) != nil {
		t.Error("a nil ReadBufs kept or gave back storage")
	}
}
