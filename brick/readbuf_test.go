package brick

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// openForRead is a client of a fake brick and a file open on it.
func openForRead(t *testing.T) (*bricktest.Fake, *Client, *Fd) {
	t.Helper()
	fk := bricktest.New(t, bricktest.Options{})
	c := startClient(t, fk, nil)
	f, _, err := c.Open(context.Background(), g1, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fk, c, f
}

// A READ with a fop.ReadDest in its context puts its data there: a large
// reply straight from the connection, a small one copied; the data is
// capped (an append copies) and the reply's xdata is the caller's own. A
// READ whose ReadDest is taken, or without one, answers in storage of its
// own that later reads never change.
func TestReadIntoReadDest(t *testing.T) {
	fk, c, f := openForRead(t)
	ctx := context.Background()
	answer := func(size int, fill byte, xd xdr.Dict) []byte {
		data := bytes.Repeat([]byte{fill}, size)
		st := &xdr.Iatt{GFID: g1, Ino: g1.Ino(), Mode: 0100644, Nlink: 1, Size: uint64(size)}
		e := xdr.NewEncoder(300 + size)
		e.Int32(int32(size))
		e.Int32(0)
		e.Iatt(st)
		e.Uint32(uint32(size))
		if err := e.Dict(xd); err != nil {
			t.Fatal(err)
		}
		e.Raw(data)
		fk.Handle(opRead, fixed(e.B))
		return data
	}
	for _, size := range []int{256 << 10, 4 << 10} {
		want := answer(size, 'a', xdr.Dict{}.With("k", xdr.Ptr([]byte("v"))))
		dest := make([]byte, 1<<20)
		rctx := fop.WithReadDest(ctx, dest)
		got, rx, err := c.Read(rctx, f, 0, uint32(len(dest)), nil)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: read %d, %v", size, len(got), err)
		}
		if !fop.InBuf(got, dest) || cap(got) != len(got) {
			t.Errorf("%d bytes: the data is in the ReadDest %v, with room for %d", size, fop.InBuf(got, dest), cap(got))
		}
		if v, _ := rx.Bytes("k"); string(v) != "v" {
			t.Errorf("%d bytes: xdata %v", size, rx)
		}
		// The ReadDest was given back: the next read takes it.
		if rd := fop.ReadDestOf(rctx); rd.Take(1) == nil {
			t.Errorf("%d bytes: the ReadDest was not given back", size)
		}
	}

	// Taken by another read: this one answers in its own storage.
	want := answer(256<<10, 'b', nil)
	dest := make([]byte, 1<<20)
	rctx := fop.WithReadDest(ctx, dest)
	fop.ReadDestOf(rctx).Take(1)
	got, _, err := c.Read(rctx, f, 0, 256<<10, nil)
	if err != nil || !bytes.Equal(got, want) || fop.InBuf(got, dest) || dest[0] != 0 {
		t.Fatalf("a taken ReadDest: read %d bytes, %v, in it %v", len(got), err, fop.InBuf(got, dest))
	}
	// Without one: the data is the caller's; later reads reuse the
	// records' storage and must not change it.
	own, _, err := c.Read(ctx, f, 0, 256<<10, nil)
	if err != nil || !bytes.Equal(own, want) {
		t.Fatalf("read without a ReadDest: %d bytes, %v", len(own), err)
	}
	for _, fill := range []byte{'c', 'd'} {
		answer(256<<10, fill, nil)
		if _, _, err := c.Read(ctx, f, 0, 256<<10, nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := c.Read(fop.WithReadDest(ctx, make([]byte, 256<<10)), f, 0, 256<<10, nil); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(own, want) {
		t.Error("the data of a read without a ReadDest changed under later reads")
	}
}

// A READ reply read into the ReadDest must be exactly a result and its
// data: one whose count disagrees with op_ret, or with bytes between its
// xdata and its data, fails (EIO) instead of handing up what the bytes
// happen to be.
func TestReadIntoReadDestMalformed(t *testing.T) {
	fk, c, f := openForRead(t)
	ctx := context.Background()
	const size = 128 << 10
	st := &xdr.Iatt{GFID: g1, Ino: g1.Ino(), Mode: 0100644, Nlink: 1, Size: size}
	for _, tc := range []struct {
		name       string
		ret, count int32
		junk       int
	}{
		{"count below op_ret", size, size - 8, 0},
		{"count above the size asked", size - 8, size + 8, 0},
		{"count of 4 GiB", size - 8, -1, 0},
		{"bytes between xdata and data", size - 8, size - 8, 8},
	} {
		e := xdr.NewEncoder(300 + size)
		e.Int32(tc.ret)
		e.Int32(0)
		e.Iatt(st)
		e.Uint32(uint32(tc.count))
		_ = e.Dict(nil)
		e.Raw(make([]byte, tc.junk))
		e.Raw(bytes.Repeat([]byte{'z'}, int(tc.ret)))
		fk.Handle(opRead, fixed(e.B))
		got, _, err := c.Read(fop.WithReadDest(ctx, make([]byte, size)), f, 0, size, nil)
		if Errno(err) != syscall.EIO {
			t.Errorf("%s: read %d bytes, %v; want EIO", tc.name, len(got), err)
		}
	}
	// The connection still serves.
	fk.Handle(opRead, fixed(bricktest.ReadRsp(st, bytes.Repeat([]byte{'y'}, size))))
	if got, _, err := c.Read(fop.WithReadDest(ctx, make([]byte, size)), f, 0, size, nil); err != nil || len(got) != size {
		t.Fatalf("after the malformed replies: %d bytes, %v", len(got), err)
	}
}
