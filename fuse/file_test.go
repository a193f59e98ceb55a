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

// pooledVolume answers READs as a brick client does with fop.ReadBufs in
// the context: the data in storage kept there, to be given back.
type pooledVolume struct {
	memVolume
	data     []byte
	released int
}

func (v *pooledVolume) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	d := bytes.Clone(v.data)
	if !fop.ReadBufsOf(ctx).Keep(d, releaseFunc(func() { v.released++ })) {
		panic("a large READ came without ReadBufs, or they were full")
	}
	return d, nil, nil
}

type releaseFunc func()

func (f releaseFunc) Release() { f() }

// A large READ's data comes out of the brick client's pooled record into
// go-fuse's buffer for the reply, and the record goes back before Read
// returns: a READ in flight to the kernel holds one buffer, not two.
func TestReadGivesPooledRecordBack(t *testing.T) {
	vol := &pooledVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}, data: bytes.Repeat([]byte("abcd"), pooledRead/4)}
	h := &file{fsys: New(vol, Options{}), fd: &fop.Fd{GFID: foptest.GFID(1)}}
	dest := make([]byte, 2*pooledRead)
	res, errno := h.Read(context.Background(), dest, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if vol.released != 1 {
		t.Fatalf("the pooled record was given back %d times when Read returned; want once", vol.released)
	}
	got, st := res.Bytes(nil)
	if !st.Ok() || !bytes.Equal(got, vol.data) {
		t.Fatalf("the reply holds %d bytes (%v), want the %d read", len(got), st, len(vol.data))
	}
	if &got[0] != &dest[0] {
		t.Error("the reply is not in go-fuse's buffer for it")
	}
	res.Done()
	if vol.released != 1 {
		t.Errorf("the record was given back %d times after Done; want once", vol.released)
	}
}

// A READ answered with more than it asked fails (EIO) instead of reaching
// the kernel cut short, which would read as end of file; the record still
// goes back.
func TestReadAnsweredWithMoreThanAskedFails(t *testing.T) {
	vol := &pooledVolume{memVolume: memVolume{foptest.NewMem("mem-client-0")}, data: bytes.Repeat([]byte("abcd"), pooledRead/2)}
	h := &file{fsys: New(vol, Options{}), fd: &fop.Fd{GFID: foptest.GFID(1)}}
	res, errno := h.Read(context.Background(), make([]byte, pooledRead), 0)
	if errno != syscall.EIO || res != nil {
		t.Fatalf("a READ of %d bytes answered with %d: %v, %v; want EIO", pooledRead, len(vol.data), res, errno)
	}
	if vol.released != 1 {
		t.Errorf("the record was given back %d times; want once", vol.released)
	}
}
