package brick

import (
	"bytes"
	"context"
	"testing"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// A large READ with fop.ReadBufs in its context keeps its pooled storage
// there, for the top to give back; the data is capped (an append copies)
// and each read after a give-back has its own bytes. Without ReadBufs
// nothing is kept.
func TestReadKeepsPooledStorage(t *testing.T) {
	const size = 256 << 10
	fk := bricktest.New(t, bricktest.Options{})
	st := &xdr.Iatt{GFID: g1, Ino: g1.Ino(), Mode: 0100644, Nlink: 1, Size: size}
	c := startClient(t, fk, nil)
	ctx := context.Background()
	f, _, err := c.Open(ctx, g1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, fill := range []byte{'a', 'b', 'c'} {
		want := bytes.Repeat([]byte{fill}, size)
		fk.Handle(opRead, fixed(bricktest.ReadRsp(st, want)))
		rctx, rbs := fop.WithReadBufs(ctx)
		got, _, err := c.Read(rctx, f, 0, size, nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %d: %d bytes, %v; want %d of %q", i, len(got), err, size, fill)
		}
		if cap(got) != len(got) {
			t.Errorf("read %d: data of %d bytes has room for %d: an append would write into pooled storage", i, len(got), cap(got))
		}
		rel := rbs.Take(got)
		if rel == nil {
			t.Fatalf("read %d: its pooled storage was not kept", i)
		}
		rel.Release()
	}
	got, _, err := c.Read(ctx, f, 0, size, nil)
	if err != nil || len(got) != size {
		t.Fatalf("read without ReadBufs: %d bytes, %v", len(got), err)
	}
	// That read's record went back to the free list (its data was copied
	// out): the next records may take its buffer, and must not change the
	// bytes it answered.
	want := bytes.Repeat([]byte{'c'}, size)
	if !bytes.Equal(got, want) {
		t.Fatalf("read without ReadBufs: not the brick's bytes")
	}
	for _, fill := range []byte{'d', 'e'} {
		fk.Handle(opRead, fixed(bricktest.ReadRsp(st, bytes.Repeat([]byte{fill}, size))))
		rctx, rbs := fop.WithReadBufs(ctx)
		d, _, err := c.Read(rctx, f, 0, size, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rel := rbs.Take(d); rel != nil {
			rel.Release()
		}
		if _, _, err := c.Read(ctx, f, 0, size, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the data of a read without ReadBufs changed under later reads: it was left in pooled storage that went back")
	}
}
