package fuse

import (
	"context"
	"math"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// file is an open regular file.
type file struct {
	fsys *FS
	fd   *fop.Fd
}

func (h *file) vol() Volume { return h.fsys.vol }

var _ = (fs.FileReader)((*file)(nil))

func (h *file) Read(ctx context.Context, dest []byte, off int64) (gofuse.ReadResult, syscall.Errno) {
	defer h.fsys.slow("READ", off, time.Now())
	// dest is the reply's buffer: a brick reads the data straight into
	// it (fop.ReadDest), so that a READ in flight holds one buffer of its
	// size, not that and a record of the brick's reply.
	cctx := fop.WithReadDest(h.fsys.caller(ctx, nil), dest)
	data, _, err := h.vol().Read(cctx, h.fd, uint64(off), uint32(len(dest)), nil)
	if err != nil {
		return nil, h.fsys.fail("READ", err)
	}
	if len(data) > len(dest) {
		// More than asked: a layer broke its contract, and the kernel
		// would take a reply cut to size for end of file. Fail it.
		h.fsys.log.Error("READ answered more than asked", zap.Int("asked", len(dest)), zap.Int("got", len(data)))
		return nil, syscall.EIO
	}
	if !fop.InBuf(data, dest) {
		// A layer assembled or padded it elsewhere.
		data = dest[:copy(dest, data)]
	}
	return gofuse.ReadResultData(data), 0
}

var _ = (fs.FileWriter)((*file)(nil))

func (h *file) Write(ctx context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	defer h.fsys.slow("WRITE", off, time.Now())
	// data is the FUSE request's buffer: a call that goes on reading it
	// after the write returns (to a brick cut for lagging) keeps it.
	hold := new(fop.DataHold)
	_, _, _, err := h.vol().Write(fop.WithDataHold(h.fsys.caller(ctx, nil), hold), h.fd, uint64(off), data, nil)
	hold.Seal()
	if hold.Held() {
		h.fsys.retain(data, hold)
	}
	if err != nil {
		return 0, h.fsys.fail("WRITE", err)
	}
	return uint32(len(data)), 0
}

var _ = (fs.FileGetattrer)((*file)(nil))

func (h *file) Getattr(ctx context.Context, out *gofuse.AttrOut) syscall.Errno {
	st, _, err := h.vol().Fstat(h.fsys.caller(ctx, nil), h.fd, nil)
	if err != nil {
		return h.fsys.fail("FSTAT", err)
	}
	fillAttr(&st, &out.Attr)
	out.SetTimeout(h.fsys.opts.AttrTimeout)
	return 0
}

var _ = (fs.FileFlusher)((*file)(nil))

func (h *file) Flush(ctx context.Context) syscall.Errno {
	if _, err := h.vol().Flush(h.fsys.caller(ctx, h.fsys.flushOwnerOf(ctx)), h.fd, nil); err != nil {
		return h.fsys.fail("FLUSH", err)
	}
	return 0
}

var _ = (fs.FileFsyncer)((*file)(nil))

func (h *file) Fsync(ctx context.Context, flags uint32) syscall.Errno {
	if _, err := h.vol().Fsync(h.fsys.caller(ctx, nil), h.fd, flags&1 != 0, nil); err != nil {
		return h.fsys.fail("FSYNC", err)
	}
	return 0
}

var _ = (fs.FileReleaser)((*file)(nil))

func (h *file) Release(ctx context.Context) syscall.Errno {
	h.fsys.files.Add(-1)
	if err := h.vol().Release(context.Background(), h.fd); err != nil {
		return h.fsys.fail("RELEASE", err)
	}
	return 0
}

// Linux fallocate mode bits.
const (
	fallocKeepSize  = 0x01
	fallocPunchHole = 0x02
	fallocZeroRange = 0x10
)

var _ = (fs.FileAllocater)((*file)(nil))

func (h *file) Allocate(ctx context.Context, off, size uint64, mode uint32) syscall.Errno {
	ctx = h.fsys.caller(ctx, nil)
	var err error
	switch {
	case mode&fallocPunchHole != 0:
		// PUNCH_HOLE always comes with KEEP_SIZE: GlusterFS's DISCARD.
		_, _, _, err = h.vol().Discard(ctx, h.fd, off, size, nil)
	case mode&fallocZeroRange != 0 && mode&fallocKeepSize != 0:
		err = h.vol().ZerofillKeepSize(ctx, h.fd, off, size)
	case mode&fallocZeroRange != 0:
		// ZEROFILL is fallocate(ZERO_RANGE) on the brick: it zeroes and
		// extends the file when the range crosses EOF, as asked.
		_, _, _, err = h.vol().Zerofill(ctx, h.fd, off, size, nil)
	default:
		_, _, _, err = h.vol().Fallocate(ctx, h.fd, mode, off, size, nil)
	}
	if err != nil {
		return h.fsys.fail("FALLOCATE", err)
	}
	return 0
}

var _ = (fs.FileLseeker)((*file)(nil))

func (h *file) Lseek(ctx context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	what := int32(fop.SeekData)
	switch whence {
	case 3: // SEEK_DATA
	case 4: // SEEK_HOLE
		what = fop.SeekHole
	default:
		return 0, syscall.EINVAL
	}
	o, _, err := h.vol().Seek(h.fsys.caller(ctx, nil), h.fd, off, what, nil)
	if err != nil {
		return 0, h.fsys.fail("SEEK", err)
	}
	return o, 0
}

func toFlock(lk *gofuse.FileLock) xdr.Flock {
	fl := xdr.Flock{Type: lk.Typ, Start: lk.Start, Pid: lk.Pid}
	// The kernel says "to the end of the file" with End = OFFSET_MAX.
	if lk.End < math.MaxInt64 && lk.End >= lk.Start {
		fl.Len = lk.End - lk.Start + 1
	}
	return fl
}

func fromFlock(fl *xdr.Flock, out *gofuse.FileLock) {
	out.Typ, out.Start, out.Pid = fl.Type, fl.Start, fl.Pid
	out.End = math.MaxInt64
	if fl.Len != 0 && fl.Len <= math.MaxInt64-fl.Start {
		out.End = fl.Start + fl.Len - 1
	}
}

var _ = (fs.FileGetlker)((*file)(nil))

func (h *file) Getlk(ctx context.Context, owner uint64, lk *gofuse.FileLock, flags uint32, out *gofuse.FileLock) syscall.Errno {
	got, _, err := h.vol().Lk(h.fsys.caller(ctx, ownerBytes(owner)), h.fd, fop.LkGet, toFlock(lk), nil)
	if err != nil {
		return h.fsys.fail("LK", err)
	}
	fromFlock(&got, out)
	return 0
}

var _ = (fs.FileSetlker)((*file)(nil))

func (h *file) Setlk(ctx context.Context, owner uint64, lk *gofuse.FileLock, flags uint32) syscall.Errno {
	return h.setlk(ctx, owner, lk, fop.LkSet)
}

var _ = (fs.FileSetlkwer)((*file)(nil))

func (h *file) Setlkw(ctx context.Context, owner uint64, lk *gofuse.FileLock, flags uint32) syscall.Errno {
	return h.setlk(ctx, owner, lk, fop.LkSetW)
}

func (h *file) setlk(ctx context.Context, owner uint64, lk *gofuse.FileLock, cmd uint32) syscall.Errno {
	lctx := h.fsys.caller(ctx, ownerBytes(owner))
	fl := toFlock(lk)
	if cmd != fop.LkSetW {
		if _, _, err := h.vol().Lk(lctx, h.fd, cmd, fl, nil); err != nil {
			return h.fsys.fail("LK", err)
		}
		return 0
	}
	// A blocking wait that a signal interrupts answers EINTR at once; the
	// request stays queued on the brick, so a grant that arrives later is
	// released again rather than held by an owner that gave up.
	done := make(chan error, 1)
	go func() {
		_, _, err := h.vol().Lk(lctx, h.fd, cmd, fl, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			return h.fsys.fail("LK", err)
		}
		return 0
	case <-ctx.Done():
		go func() {
			if err := <-done; err == nil {
				un := fl
				un.Type = fop.LkUnlock
				_, _, _ = h.vol().Lk(lctx, h.fd, fop.LkSet, un, nil)
			}
		}()
		return syscall.EINTR
	}
}
