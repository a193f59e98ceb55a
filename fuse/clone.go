package fuse

import (
	"container/list"
	"context"
	"fmt"
	"sync"
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
}

// get returns the kept destination fd of g, or opens one with open.
func (c *cloneFds) get(g xdr.GFID, open func() (*fop.Fd, error), release func(*fop.Fd)) (*fop.Fd, error) {
	c.mu.Lock()
	if e, ok := c.fds[g]; ok {
		c.lru.MoveToFront(e)
		fd := e.Value.(*cloneFd).fd
		c.mu.Unlock()
		return fd, nil
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
		return e.Value.(*cloneFd).fd, nil
	}
	c.fds[g] = c.lru.PushFront(&cloneFd{gfid: g, fd: fd})
	for c.lru.Len() > maxCloneFds {
		old := c.lru.Remove(c.lru.Back()).(*cloneFd)
		delete(c.fds, old.gfid)
		release(old.fd)
	}
	return fd, nil
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

var _ = (fs.NodeCopyFileRanger)((*node)(nil))

// CopyFileRange copies length bytes from this file at offIn to out at
// offOut through the volume's COPY_FILE_RANGE (a clone where the bricks
// can), at most cloneChunk per call. Where the volume cannot (the files on
// different replica sets, bricks without the fop) it answers EXDEV or
// EOPNOTSUPP and the kernel copies.
func (n *node) CopyFileRange(ctx context.Context, fhIn fs.FileHandle, offIn uint64, out *fs.Inode, fhOut fs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	dst, ok := out.Operations().(*node)
	hOut, isFile := fhOut.(*file)
	if !ok || !isFile || flags != 0 {
		return 0, syscall.EXDEV
	}
	if _, isFile := fhIn.(*file); !isFile {
		return 0, syscall.EXDEV
	}
	length = min(length, cloneChunk)
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
	outFd, err := n.fsys.clones.get(dst.gfid, func() (*fop.Fd, error) {
		f, _, err := vol.Open(cctx, dst.gfid, uint32(syscall.O_WRONLY), nil)
		return f, err
	}, release)
	if err != nil {
		return kernel("the destination could not be opened for the copy", err)
	}
	cnt, _, _, err := vol.CopyFileRange(cctx, in, offIn, outFd, offOut, length, 0, nil)
	if err != nil {
		n.fsys.clones.drop(dst.gfid, outFd, release)
		switch fop.Errno(err) {
		case syscall.EXDEV, syscall.EOPNOTSUPP, syscall.ENOSYS, syscall.ESTALE:
			// Not possible here (files on two replica sets, a sharded
			// file, bricks without the fop, a source not readable on
			// enough bricks): the kernel copies through the application's
			// fds.
			return kernel("the volume cannot copy this range", err)
		}
		return 0, n.fsys.fail("COPY_FILE_RANGE", err)
	}
	if cnt > length {
		n.fsys.clones.drop(dst.gfid, outFd, release)
		return 0, n.fsys.fail("COPY_FILE_RANGE", &fop.OpError{Brick: "fuse", Fop: "COPY_FILE_RANGE", GFID: dst.gfid, Errno: syscall.EIO,
			Err: fmt.Errorf("the volume copied %d bytes of %d asked", cnt, length)})
	}
	if hOut.fd.Flags&(syscall.O_DSYNC|syscall.O_SYNC) != 0 {
		// The application's writes to that file are synchronous: so is
		// the copy (the kernel's own copy would write through its fd).
		if _, err := vol.Fsync(cctx, outFd, hOut.fd.Flags&syscall.O_SYNC != syscall.O_SYNC, nil); err != nil {
			return 0, n.fsys.fail("COPY_FILE_RANGE", err)
		}
	}
	n.fsys.log.Debug("copy_file_range done by the bricks", zap.Stringer("from", n.gfid), zap.Stringer("to", dst.gfid),
		zap.Uint64("bytes", cnt), zap.Duration("took", time.Since(start).Round(time.Microsecond)),
		zap.Int("destination fds kept", n.fsys.clones.count()))
	return uint32(cnt), 0
}
