package fuse

import (
	"bytes"
	"context"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// destVolume answers READs as a brick client does: into the caller's
// fop.ReadDest when it can take it (inDest), or in storage of its own.
type destVolume struct {
	memVolume
	data   []byte
	inDest bool
	took   int // READs that found a ReadDest to take
}

func (v *destVolume) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	rd := fop.ReadDestOf(ctx)
	dest := rd.Take(int(size))
	if dest == nil {
		return bytes.Clone(v.data), nil, nil
	}
	defer rd.Give()
	v.took++
	if !v.inDest || len(v.data) > len(dest) {
		return bytes.Clone(v.data), nil, nil
	}
	return dest[:copy(dest, v.data)], nil, nil
}

// A READ's data lands in go-fuse's buffer for the reply: the layers below
// get it as their fop.ReadDest (a brick reads the data straight into it),
// and what they answered elsewhere is copied there. A READ in flight to
// the kernel holds that one buffer.
func TestReadIntoReplyBuffer(t *testing.T) {
	for _, inDest := range []bool{true, false} {
		vol := &destVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}, data: bytes.Repeat([]byte("abcd"), 16<<10), inDest: inDest}
		h := &file{fsys: New(vol, Options{}), fd: &fop.Fd{GFID: foptest.GFID(1)}}
		dest := make([]byte, 128<<10)
		res, errno := h.Read(context.Background(), dest, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		if vol.took != 1 {
			t.Fatalf("inDest %v: the volume found the reply buffer %d times; want once", inDest, vol.took)
		}
		got, st := res.Bytes(nil)
		if !st.Ok() || !bytes.Equal(got, vol.data) {
			t.Fatalf("inDest %v: the reply holds %d bytes (%v), want the %d read", inDest, len(got), st, len(vol.data))
		}
		if &got[0] != &dest[0] {
			t.Errorf("inDest %v: the reply is not in go-fuse's buffer for it", inDest)
		}
		res.Done()
	}
}

// A READ answered with more than it asked fails (EIO) instead of reaching
// the kernel cut short, which would read as end of file.
func TestReadAnsweredWithMoreThanAskedFails(t *testing.T) {
	vol := &destVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}, data: bytes.Repeat([]byte("abcd"), 32<<10)}
	h := &file{fsys: New(vol, Options{}), fd: &fop.Fd{GFID: foptest.GFID(1)}}
	res, errno := h.Read(context.Background(), make([]byte, 64<<10), 0)
	if errno != syscall.EIO || res != nil {
		t.Fatalf("a READ of %d bytes answered with %d: %v, %v; want EIO", 64<<10, len(vol.data), res, errno)
	}
}
