package shard

import (
	"bytes"
	"context"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// copyCounter counts the COPY_FILE_RANGE calls that reach the bricks and,
// with exdev, answers them as DHT does for files on two replica sets.
type copyCounter struct {
	*foptest.Mem
	calls atomic.Int32
	exdev bool
}

func (c *copyCounter) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	c.calls.Add(1)
	if c.exdev {
		return 0, xdr.Iatt{}, nil, &fop.OpError{Fop: "COPY_FILE_RANGE", Errno: syscall.EXDEV}
	}
	return c.Mem.CopyFileRange(ctx, in, offIn, out, offOut, size, flags, xd)
}

// A copy between sharded files goes block by block to the bricks; holes
// in the source (a missing block, a short block below the logical end)
// become zeros where the destination had data; bytes of the destination
// past the copied range stay; the size grows only as far as the copy.
// With the blocks on two replica sets (EXDEV) the layer copies the bytes
// itself, with the same result.
func TestCopyFileRangeBlockByBlock(t *testing.T) {
	for _, exdev := range []bool{false, true} {
		kid := &copyCounter{Mem: foptest.NewMem("v-client-0"), exdev: exdev}
		s := newLayer(t, kid, 4*mib)
		ctx := context.Background()
		src, _ := create(t, s, "src")
		write(t, s, src, 0, fill(4*mib, 'a'))     // block 0
		write(t, s, src, 8*mib, fill(1*mib, 'c')) // block 2's first MiB; block 1 a hole
		if _, _, _, err := s.Ftruncate(ctx, src, 10*mib, nil); err != nil {
			t.Fatal(err)
		}
		dst, dg := create(t, s, "dst")
		write(t, s, dst, 4*mib, fill(2*mib, 'z'))
		write(t, s, dst, 8*mib, fill(3*mib, 'z'))
		n, _, _, err := s.CopyFileRange(ctx, src, 0, dst, 0, 64*mib, 0, nil)
		if err != nil || n != 10*mib {
			t.Fatalf("exdev %v: copy: %d, %v; want the source's 10 MiB", exdev, n, err)
		}
		want := read(t, s, src, 0, 10*mib)
		if got := read(t, s, dst, 0, 10*mib); !bytes.Equal(got, want) {
			t.Errorf("exdev %v: the copy differs from its source", exdev)
		}
		if got := read(t, s, dst, 10*mib, 2*mib); !bytes.Equal(got, fill(1*mib, 'z')) {
			t.Errorf("exdev %v: the destination past the copied range changed: %d bytes", exdev, len(got))
		}
		if got := onDisk(t, kid.Mem, dg); got.Size != 11*mib {
			t.Errorf("exdev %v: destination size %d, want 11 MiB (unchanged)", exdev, got.Size)
		}
		if kid.calls.Load() == 0 {
			t.Errorf("exdev %v: no COPY_FILE_RANGE reached the bricks", exdev)
		}

		// Into a fresh file the copy makes the size and blocks.
		fresh, fg := create(t, s, "fresh")
		if n, _, _, err := s.CopyFileRange(ctx, src, 4*mib, fresh, 4*mib, 64*mib, 0, nil); err != nil || n != 6*mib {
			t.Fatalf("exdev %v: copy into a fresh file: %d, %v", exdev, n, err)
		}
		if got := onDisk(t, kid.Mem, fg); got.Size != 10*mib {
			t.Errorf("exdev %v: fresh copy's size %d, want 10 MiB", exdev, got.Size)
		}
		if b := blockOn(t, kid.Mem, fg, 2); !bytes.Equal(b, fill(1*mib, 'c')) {
			t.Errorf("exdev %v: block 2 of the fresh copy holds %d bytes, want the source's 1 MiB", exdev, len(b))
		}
		if got := read(t, s, fresh, 0, 10*mib); !bytes.Equal(got[4*mib:], want[4*mib:]) || !bytes.Equal(got[:4*mib], make([]byte, 4*mib)) {
			t.Errorf("exdev %v: fresh copy differs", exdev)
		}
		// At or past the source's end nothing is copied.
		if n, _, _, err := s.CopyFileRange(ctx, src, 10*mib, fresh, 10*mib, mib, 0, nil); err != nil || n != 0 {
			t.Errorf("exdev %v: copy at the end: %d, %v", exdev, n, err)
		}
	}
}

// Blocks that do not line up are the kernel's to copy (EOPNOTSUPP).
func TestCopyFileRangeUnaligned(t *testing.T) {
	s := newLayer(t, foptest.NewMem("v-client-0"), 4*mib)
	src, _ := create(t, s, "src")
	write(t, s, src, 0, fill(8*mib, 'a'))
	dst, _ := create(t, s, "dst")
	if _, _, _, err := s.CopyFileRange(context.Background(), src, 0, dst, 512, mib, 0, nil); fop.Errno(err) != syscall.EOPNOTSUPP {
		t.Errorf("copy to another offset within a block: %v, want EOPNOTSUPP", err)
	}
	if n, _, _, err := s.CopyFileRange(context.Background(), src, 4096, dst, 4*mib+4096, mib, 0, nil); err != nil || n != mib {
		t.Errorf("copy to the same offset within another block: %d, %v", n, err)
	}
}

// Over a replica set the copy is one transaction per piece on every brick.
func TestCopyFileRangeReplicated(t *testing.T) {
	r, mems := replica3(t)
	s := newLayer(t, r, 4*mib)
	src, _ := create(t, s, "src")
	data := bytes.Repeat([]byte("0123456789abcdef"), 9*mib/16)
	write(t, s, src, 0, data)
	dst, dg := create(t, s, "dst")
	if n, _, _, err := s.CopyFileRange(context.Background(), src, 0, dst, 0, 16*mib, 0, nil); err != nil || n != 9*mib {
		t.Fatalf("copy: %d, %v", n, err)
	}
	for i, m := range mems {
		if b := blockOn(t, m, dg, 2); !bytes.Equal(b, data[8*mib:]) {
			t.Errorf("brick %d: block 2 of the copy holds %d bytes", i, len(b))
		}
	}
	if got := read(t, s, dst, 0, 9*mib); !bytes.Equal(got, data) {
		t.Error("the copy differs from its source")
	}
}

// gfidLookupDown answers every lookup by gfid with ENOTCONN (a brick
// down, a timeout), as a deletion pass may meet.
type gfidLookupDown struct{ *foptest.Mem }

func (g gfidLookupDown) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if name == "" {
		return xdr.Iatt{}, nil, &fop.OpError{Fop: "LOOKUP", Errno: syscall.ENOTCONN}
	}
	return g.Mem.Lookup(ctx, parent, name, gfid, xd)
}

// A deletion pass that cannot tell whether a removed file's base is gone
// (its lookup fails with anything but ENOENT/ESTALE) leaves the blocks:
// the file may exist under another name (a hard link, a clone's name).
func TestDeletionKeepsBlocksWhenUnsure(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, gfidLookupDown{m}, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(12*mib, 'k'))
	_ = s.Release(context.Background(), f)
	if _, err := s.Unlink(context.Background(), xdr.RootGFID, "f", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.deleteOne(context.Background(), g.String()); fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("deletion pass: %v, want the lookup's ENOTCONN", err)
	}
	for n := uint64(1); n <= 2; n++ {
		if blockOn(t, m, g, n) == nil {
			t.Errorf("block %d was deleted though its base file could not be looked up", n)
		}
	}
}
