package fuse

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// copy_file_range(2) on the mount reaches the bricks as COPY_FILE_RANGE,
// which a brick on XFS with reflink=1 carries out by sharing extents: an
// instant clone. The kernel sends it to the source's node (FUSE opcode 47,
// after 53 was refused by go-fuse); an answer of EXDEV or EOPNOTSUPP makes
// the kernel copy that call itself through READ and WRITE, and ask again
// next time (ENOSYS would stop it asking for the mount's life, so it is
// never answered).
//
// The copy goes through fds of its own, opened without O_DIRECT: a brick fd
// opened O_DIRECT (as QEMU's cache=none opens its disk) fails unaligned
// ranges with EINVAL. A GlusterFS 10.3 brick never releases an fd used as
// a copy's destination (free_state does not unref fd_out; the file stays
// open until the brick restarts, so a deleted clone keeps its blocks): one
// destination fd is kept per destination file and used for all copies
// into it, which bounds that leak to one fd per file cloned into.

// cloneChunk bounds one copy: the kernel loops on short counts. A brick
// without reflink copies in its kernel and stalls its other clients while
// it does (gluster-clone.md §1.8): 64 MiB, as AFR's rounds.
const cloneChunk = 64 << 20

// maxCloneFds bounds the destination fds kept; past it the least recently
// used one is released (the brick keeps it open anyway).
const maxCloneFds = 1024

// cloneFds keeps the destination fd of each file copied into.
type cloneFds struct {
	mu  sync.Mutex
	fds map[xdr.GFID]*list.Element // GUARDED_BY(mu)
	lru *list.List                 // GUARDED_BY(mu); of *cloneFd, most recent first
}

type cloneFd struct {
	gfid xdr.GFID
	fd   *fop.Fd
	// copying is set once a copy into this file ran at the speed of a
	// copy rather than of a clone: the bricks cannot reflink it, and
	// later calls are cut to slowChunk (copy-offload=auto).
	copying atomic.Bool
	// slow counts the judged calls in a row that ran at a copy's speed.
	slow atomic.Int32
	// used is set once a copy went into fd (the brick now keeps it).
	used atomic.Bool
}

// get returns the kept destination fd of g, or opens one with open.
func (c *cloneFds) get(g xdr.GFID, open func() (*fop.Fd, error), release func(*fop.Fd)) (*cloneFd, error) {
	c.mu.Lock()
	if e, ok := c.fds[g]; ok {
		c.lru.MoveToFront(e)
		cf := e.Value.(*cloneFd)
		c.mu.Unlock()
		return cf, nil
	}
	c.mu.Unlock()
	fd, err := open()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fds == nil {
		c.fds, c.lru = map[xdr.GFID]*list.Element{}, list.New()
	}
	if e, ok := c.fds[g]; ok { // another copy opened one meanwhile
		release(fd)
		c.lru.MoveToFront(e)
		return e.Value.(*cloneFd), nil
	}
	cf := &cloneFd{gfid: g, fd: fd}
	c.fds[g] = c.lru.PushFront(cf)
	for c.lru.Len() > maxCloneFds {
		old := c.lru.Remove(c.lru.Back()).(*cloneFd)
		delete(c.fds, old.gfid)
		release(old.fd)
	}
	return cf, nil
}

// drop forgets g's destination fd fd (after an error on it), unless
// another copy replaced it already.
func (c *cloneFds) drop(g xdr.GFID, fd *fop.Fd, release func(*fop.Fd)) {
	c.mu.Lock()
	e, ok := c.fds[g]
	ok = ok && e.Value.(*cloneFd).fd == fd
	if ok {
		c.lru.Remove(e)
		delete(c.fds, g)
	}
	c.mu.Unlock()
	if ok {
		release(fd)
	}
}

// count is how many destination fds are kept.
func (c *cloneFds) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.fds)
}

// Copy offload policies (-o copy-offload=).
const (
	// OffloadAuto sends copies to the bricks as asked until two calls in
	// a row into a file run at the speed of a copy rather than a clone
	// (bricks that cannot reflink, which stall their other clients for as
	// long as one call copies and fill the source's holes); from then on
	// the calls into that file are cut to slowChunk and go around the
	// source's holes of bigHole or more, which become holes.
	OffloadAuto = "auto"
	// OffloadBricks sends every copy to the bricks as asked, copyChunk
	// at a time, holes included.
	OffloadBricks = "bricks"
	// OffloadKernel leaves every copy to the kernel (READ and WRITE
	// through the mount).
	OffloadKernel = "kernel"
)

// slowChunk bounds a call into a file the bricks copy rather than clone:
// about 30 ms of a brick's time at 250 MiB/s (gluster-clone.md §1.8).
const slowChunk = 8 << 20

// A call is taken for a copy in the bricks' kernels rather than a clone
// when it moved at least minJudged (a replicated transaction costs a few
// milliseconds whatever its size) slower than cloneRate and took longer
// than slowCall: a reflink of 64 MiB on replica 3 takes about 30 ms, a
// copy on ext4 200-300 ms; what matters to the other clients of those
// bricks is how long one call holds them.
const (
	cloneRate = 1 << 30 // bytes per second
	minJudged = 16 << 20
	slowCall  = 100 * time.Millisecond
)

// copying tells whether a call that moved n bytes in took was a copy in
// the bricks' kernels rather than a clone.
func copying(n uint64, took time.Duration) bool {
	return n >= minJudged && took > slowCall && took > time.Duration(n)*time.Second/cloneRate
}

var _ = (fs.NodeCopyFileRanger)((*node)(nil))

// CopyFileRange copies length bytes from this file at offIn to out at
// offOut through the volume's COPY_FILE_RANGE (a clone where the bricks
// can), at most the copy chunk per call, as the copy-offload policy says.
// Where the volume cannot (the files on different replica sets, blocks
// that do not line up, bricks without the fop) it answers EOPNOTSUPP and
// the kernel copies.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok := out.Operations().(*node)
	hOut, isFile := fhOut.(*file)
	if !ok || !isFile || flags != 0 {
		return 0, syscall.EXDEV
	}
	if _, isFile := fhIn.(*file); !isFile {
		return 0, syscall.EXDEV
	}
	policy := n.fsys.opts.CopyOffload
	if policy == "" {
		policy = OffloadAuto
	}
	if policy == OffloadKernel {
		return 0, syscall.EOPNOTSUPP
	}
	chunk := uint64(n.fsys.opts.CopyChunk)
	if chunk == 0 {
		chunk = cloneChunk
	}
	start := time.Now()
	// The kernel checked the application's fds (source readable,
	// destination writable); the copy's own fds are the layer's, opened
	// as an internal frame: the files' modes may no longer let the caller
	// open them (cp of a 0444 file), and the copy must not fail for that.
	cctx := fop.AsInternal(n.fsys.caller(ctx, nil))
	vol := n.vol()
	release := func(f *fop.Fd) { _ = vol.Release(context.Background(), f) }
	kernel := func(why string, err error) (uint32, syscall.Errno) {
		n.fsys.log.Debug("copy_file_range left to the kernel", zap.String("why", why), zap.Stringer("from", n.gfid), zap.Stringer("to", dst.gfid), zap.Error(err))
		return 0, syscall.EOPNOTSUPP
	}
	in, _, err := vol.Open(cctx, n.gfid, uint32(syscall.O_RDONLY), nil)
	if err != nil {
		return kernel("the source could not be opened for the copy", err)
	}
	defer release(in)
	cf, err := n.fsys.clones.get(dst.gfid, func() (*fop.Fd, error) {
		f, _, err := vol.Open(cctx, dst.gfid, uint32(syscall.O_WRONLY), nil)
		return f, err
	}, release)
	if err != nil {
		return kernel("the destination could not be opened for the copy", err)
	}
	outFd := cf.fd
	var hole uint64
	if policy == OffloadAuto && cf.copying.Load() {
		// The bricks copy into this file: small calls, and holes of the
		// source left out (a reflink keeps them by itself).
		chunk = min(chunk, slowChunk)
		hole, length = n.dataRange(cctx, in, offIn, min(length, chunk))
	}
	length = min(length, chunk)
	if hole == 0 && !cf.copying.Load() {
		length = reflinkable(offIn, offOut, length)
	}
	var cnt uint64
	var copyTook time.Duration
	what := "copy_file_range done by the bricks"
	switch {
	case hole > 0:
		// The source has a hole here: the destination gets one too.
		err = zeroRange(cctx, vol, outFd, offOut, hole)
		cnt, what = hole, "copy_file_range of a hole made a hole"
	case length == 0:
		// At or past the source's end.
	default:
		t0 := time.Now()
		cnt, _, _, err = vol.CopyFileRange(cctx, in, offIn, outFd, offOut, length, 0, nil)
		copyTook = time.Since(t0)
	}
	if err != nil {
		n.fsys.clones.drop(dst.gfid, outFd, release)
		switch fop.Errno(err) {
		case syscall.EXDEV, syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.ESTALE:
			// Not possible here (files on two replica sets, blocks that
			// do not line up, bricks without the fop, a source not
			// readable on enough bricks): the kernel copies through the
			// application's fds.
			return kernel("the volume cannot copy this range", err)
		}
		return 0, n.fsys.fail("COPY_FILE_RANGE", err)
	}
	if cnt > max(length, hole) {
		n.fsys.clones.drop(dst.gfid, outFd, release)
		return 0, n.fsys.fail("COPY_FILE_RANGE", &fop.OpError{Brick: "fuse", Fop: "COPY_FILE_RANGE", GFID: dst.gfid, Errno: syscall.EIO,
			Err: fmt.Errorf("the volume copied %d bytes of %d asked", cnt, length)})
	}
	took := time.Since(start)
	if hole == 0 && cnt > 0 && !cf.used.Swap(true) {
		n.fsys.log.Info("a file is cloned into: its bricks keep this fd open until they restart (GlusterFS 10.3), and its space if it is deleted",
			zap.Stringer("gfid", dst.gfid), zap.Int("destination fds kept", n.fsys.clones.count()))
	}
	if policy == OffloadAuto && hole == 0 && cnt >= minJudged && !cf.copying.Load() {
		// Two slow calls in a row: one can be a reflink that waited
		// (a brick flushing, a busy machine).
		if !copying(cnt, copyTook) {
			cf.slow.Store(0)
		} else if cf.slow.Add(1) >= 2 && !cf.copying.Swap(true) {
			n.fsys.log.Info("the bricks copy rather than clone into this file (not XFS with reflink=1?): later calls are cut to 8 MiB so that other clients of those bricks wait less",
				zap.Stringer("to", dst.gfid), zap.Uint64("bytes", cnt), zap.Duration("took", copyTook.Round(time.Microsecond)))
		}
	}
	if hOut.fd.Flags&(syscall.O_DSYNC|syscall.O_SYNC) != 0 {
		// The application's writes to that file are synchronous: so is
		// the copy (the kernel's own copy would write through its fd).
		if _, err := vol.Fsync(cctx, outFd, hOut.fd.Flags&syscall.O_SYNC != syscall.O_SYNC, nil); err != nil {
			return 0, n.fsys.fail("COPY_FILE_RANGE", err)
		}
	}
	n.fsys.log.Debug(what, zap.Stringer("from", n.gfid), zap.Stringer("to", dst.gfid),
		zap.Uint64("offset in", offIn), zap.Uint64("offset out", offOut), zap.Uint64("bytes", cnt), zap.Duration("took", took.Round(time.Microsecond)),
		zap.Int("destination fds kept", n.fsys.clones.count()))
	return uint32(cnt), 0
}

// cloneBlock is the block size a brick's reflink needs both offsets and
// the length aligned to (XFS's 4 KiB; the end may be the source's end):
// a range that is not is copied by the brick's kernel instead, and not
// shared.
const cloneBlock = 4096

// reflinkable trims a copy of length bytes at offIn to offOut, whose
// offsets are equally misaligned, so that it can be a reflink: a
// misaligned start is copied alone up to the next block, and a
// misaligned end is left to the next call. The copy answers the shorter
// count, and the application asks again for the rest. qemu-img convert -C
// asks for 2 MiB chunks of block-status ranges cut at qemu's largest
// request (2 GiB - 512): past 2 GiB every chunk starts 512 bytes before a
// block. Trimmed, one 4 KiB block per chunk is copied (0.2 %) instead of
// all of them.
func reflinkable(offIn, offOut, length uint64) uint64 {
	head := offIn % cloneBlock
	switch {
	case head != offOut%cloneBlock:
		return length // never reflinkable: let the bricks copy
	case head != 0:
		return min(length, cloneBlock-head)
	case length > cloneBlock:
		return length - (offIn+length)%cloneBlock
	}
	return length
}

// bigHole is the smallest hole a copy into a file the bricks copy (rather
// than clone) goes around; smaller ones are copied as zeros, which costs
// less than another call.
const bigHole = 1 << 20

// dataRange looks at the source from off for up to length bytes: a hole
// there is answered as hole > 0 (its length, within length); data is
// answered as how much to copy: up to the next hole of bigHole or more.
// Where the volume cannot seek, all of it counts as data.
func (n *node) dataRange(ctx context.Context, in *fop.Fd, off, length uint64) (hole, data uint64) {
	vol := n.vol()
	d, _, err := vol.Seek(ctx, in, off, fop.SeekData, nil)
	switch {
	case fop.Errno(err) == syscall.ENXIO:
		// No data from off on: a hole up to the end, or off past it.
		st, _, serr := vol.Fstat(ctx, in, nil)
		if serr != nil {
			return 0, length // let the copy find out
		}
		if off >= st.Size {
			return 0, 0
		}
		return min(length, st.Size-off), 0
	case err != nil:
		return 0, length
	case d > off:
		return min(length, d-off), 0
	}
	h, _, err := vol.Seek(ctx, in, off, fop.SeekHole, nil)
	if err != nil || h <= off || h >= off+length {
		return 0, length
	}
	next, _, err := vol.Seek(ctx, in, h, fop.SeekData, nil)
	if fop.Errno(err) == syscall.ENXIO || err == nil && next-h >= bigHole {
		return 0, h - off
	}
	return 0, length
}

// zeroRange makes [off, off+n) of a destination read as zeros without
// writing them: a hole punched, and the size grown (never shrunk) by a
// zero written at the range's last byte.
func zeroRange(ctx context.Context, vol Volume, f *fop.Fd, off, n uint64) error {
	st, _, err := vol.Fstat(ctx, f, nil)
	if err != nil {
		return err
	}
	if st.Size > off {
		if _, _, _, err := vol.Discard(ctx, f, off, min(n, st.Size-off), nil); err != nil {
			return err
		}
	}
	if st.Size >= off+n {
		return nil
	}
	_, _, _, err = vol.Write(ctx, f, off+n-1, []byte{0}, nil)
	return err
}
