package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Data fops on a sharded file are split per block: block 0 through the
// caller's fd on the base file, blocks 1.. through their own fds (see
// resolve.go). Blocks that change the file's size or allocation then
// update the file-size xattr with an ADD_ARRAY64 delta, after the data
// is on the bricks (reference §8.3).

// atomicWrite asks the brick for pre and post attributes taken under
// one lock with the write (glusterfs.write-update-atomic), so the block
// count deltas of concurrent writes add up.
var atomicWrite = xdr.Dict{{Key: "glusterfs.write-update-atomic", Value: xdr.Uint(4)}}

func pieceXdata(xd xdr.Dict) xdr.Dict {
	if len(xd) == 0 {
		return atomicWrite
	}
	return append(append(xdr.Dict{}, xd...), atomicWrite...)
}

// pieceOp is a fop on one piece, through fd (the base fd or a block's);
// it returns the change of the block's allocation in 512-byte units.
type pieceOp func(ctx context.Context, p Piece, fd *fop.Fd) (dblocks int64, err error)

// What a split fop does: whether it changes data (the blocks it reaches
// join the fsync set) and whether it makes the blocks that do not exist.
const (
	pieceRead   = iota // holes read as zeros
	pieceChange        // a hole has nothing to change (discard, zerofill)
	pieceCreate        // holes are made (write, fallocate)
)

// pieceWorkers bounds how many pieces of one fop run at once: a discard
// or fallocate of a huge range is many blocks.
const pieceWorkers = 16

// eachPiece runs op on every piece of [off, off+length), up to
// pieceWorkers at once, and returns the sum of their block deltas; any
// failure fails the whole (and no size update follows). Unless mode is
// pieceCreate a block that does not exist is skipped. A block found gone (deleted by
// another client since this one resolved it) is resolved again, once.
//
// made reports whether a block was made: a block this client believed in
// was gone, or is new, so the size it caches may be stale (another
// client's truncate); the size update then reads the real one.
func (s *Shard) eachPiece(ctx context.Context, ino *inode, f *fop.Fd, off, length, bs uint64, mode int, op pieceOp) (dblocks int64, made bool, err error) {
	pieces, err := Pieces(off, length, bs)
	if err != nil {
		return 0, false, s.opErr("SPLIT", f.GFID, syscall.EINVAL, err)
	}
	var madeAny atomic.Bool
	var (
		mu         sync.Mutex
		total      int64
		errs       []error
		wg         sync.WaitGroup
		madeBlocks []uint64
	)
	direct := f.Flags&syscall.O_DIRECT != 0
	run := func(ctx context.Context, p Piece) (int64, error) {
		if p.Block == 0 {
			return op(ctx, p, f)
		}
		for attempt := 0; ; attempt++ {
			var bf *fop.Fd
			var ob *openBlock
			var created bool
			var err error
			if mode == pieceRead {
				bf, created, err = s.blockFd(ctx, ino, p.Block, false, direct)
			} else if ob, created, err = s.changeFd(ctx, ino, p.Block, mode == pieceCreate, direct); ob != nil {
				bf = ob.fd
			}
			if created {
				madeAny.Store(true)
				mu.Lock()
				madeBlocks = append(madeBlocks, p.Block)
				mu.Unlock()
			}
			if errors.Is(err, errNoBlock) {
				return 0, nil
			}
			if missing(err) && attempt == 0 {
				s.forget(ino, p.Block)
				continue
			}
			if err != nil {
				return 0, err
			}
			d, err := op(ctx, p, bf)
			if ob != nil {
				s.lru.put(ob)
			}
			if missing(err) && attempt == 0 {
				s.forget(ino, p.Block)
				continue
			}
			if err == nil && mode != pieceRead {
				ino.mu.Lock()
				ino.seq++
				ino.dirty[p.Block] = ino.seq
				ino.mu.Unlock()
			}
			return d, err
		}
	}
	if length > 0 && off/bs == (off+length-1)/bs {
		// One piece, the usual case: in this goroutine (a new one per
		// fop costs its stack's growth through the layers below).
		for p := range pieces {
			d, err := run(ctx, p)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			total = d
		}
		return total, madeAny.Load(), s.failed(ino, errs, madeBlocks)
	}
	sem := make(chan struct{}, pieceWorkers)
	for p := range pieces {
		sem <- struct{}{}
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			d, err := run(ctx, p)
			mu.Lock()
			total += d
			if err != nil {
				errs = append(errs, err)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total, madeAny.Load(), s.failed(ino, errs, madeBlocks)
}

// failed returns the first error of a split fop's pieces, if any, and
// records the blocks made for a fop that failed: they may lie past the
// size for good (native leaks them); the next truncate or removal takes
// them.
func (s *Shard) failed(ino *inode, errs []error, made []uint64) error {
	if len(errs) == 0 {
		return nil
	}
	if len(made) > 0 {
		ino.mu.Lock()
		for _, b := range made {
			ino.orphans[b] = true
		}
		ino.mu.Unlock()
	}
	return errs[0]
}

// sizeAndBS returns the logical size (a negative one as 0) and the
// block size.
func (ino *inode) sizeAndBS() (size, bs uint64) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return clamp(ino.size), ino.bs
}

func (ino *inode) blockSize() uint64 {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return ino.bs
}

// logical returns st with ino's logical size, or a zero Iatt if st is
// not the base file's.
func (s *Shard) logical(ino *inode, st xdr.Iatt) xdr.Iatt {
	if st.GFID != ino.gfid {
		return xdr.Iatt{}
	}
	s.patch(ino, &st)
	return st
}

// Write writes data at off, block by block, then grows the size.
func (s *Shard) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return pre, post, nil, err
	}
	if !sharded {
		return s.Subvolume.Write(ctx, f, off, data, xd)
	}
	pxd := pieceXdata(xd)
	return s.rangeFop(ctx, ino, f, off, uint64(len(data)), int64(off)+int64(len(data)), pieceCreate, func(ctx context.Context, fd *fop.Fd, p Piece) (xdr.Iatt, xdr.Iatt, error) {
		return prePost(s.Subvolume.Write(ctx, fd, p.Off, data[p.At:p.At+p.Len], pxd))
	})
}

// Read reads up to size bytes at off: below the logical size, holes and
// short or missing blocks read as zeros.
func (s *Shard) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return nil, nil, err
	}
	if !sharded {
		return s.Subvolume.Read(ctx, f, off, size, xd)
	}
	end, bs := ino.sizeAndBS()
	if off >= end {
		return []byte{}, nil, nil
	}
	// The bricks are asked for the whole request, not for it clipped at
	// the logical end: an O_DIRECT read must keep the caller's alignment
	// (the brick answers EINVAL otherwise). The answer is clipped.
	n := min(uint64(size), end-off)
	if off+uint64(size) <= bs {
		// All in the base file: its reply is the answer, padded.
		b, rx, err := s.Subvolume.Read(ctx, f, off, size, xd)
		if err != nil {
			return nil, nil, err
		}
		if uint64(len(b)) > n {
			b = b[:n]
		} else if uint64(len(b)) < n {
			b = append(b, make([]byte, n-uint64(len(b)))...)
		}
		return b, rx, nil
	}
	// The pieces are read into the caller's buffer (fop.ReadDest) when
	// it has one, each brick straight into its part; into one of ours
	// otherwise.
	rd := fop.ReadDestOf(ctx)
	buf := rd.Take(int(size))
	ours := buf == nil
	if ours {
		buf = make([]byte, size)
	} else {
		defer rd.Give()
	}
	var (
		mu     sync.Mutex
		filled = map[uint64]int{} // GUARDED_BY(mu); bytes read, by the piece's place in buf
	)
	_, _, err = s.eachPiece(ctx, ino, f, off, uint64(size), bs, pieceRead, func(ctx context.Context, p Piece, fd *fop.Fd) (int64, error) {
		if off+p.At >= end {
			return 0, nil // wholly past the end: nothing to ask
		}
		part := buf[p.At : p.At+p.Len]
		b, _, err := s.Subvolume.Read(fop.WithReadDest(ctx, part), fd, p.Off, uint32(p.Len), xd)
		if err == nil {
			if !fop.InBuf(b, part) {
				copy(part, b)
			}
			mu.Lock()
			filled[p.At] = min(len(b), int(p.Len))
			mu.Unlock()
		}
		return 0, err
	})
	if err != nil {
		return nil, nil, err
	}
	if !ours {
		// A hole, or a block shorter than its piece, reads as zeros:
		// the caller's buffer holds whatever it held before.
		pieces, _ := Pieces(off, uint64(size), bs)
		for p := range pieces {
			if p.At < n {
				clear(buf[p.At+uint64(filled[p.At]) : p.At+p.Len])
			}
		}
	}
	return buf[:n:n], nil, nil
}

// Fallocate allocates a range block by block (mode 0 or KEEP_SIZE; the
// other modes arrive as Discard and Zerofill).
func (s *Shard) Fallocate(ctx context.Context, f *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return pre, post, nil, err
	}
	if !sharded {
		return s.Subvolume.Fallocate(ctx, f, mode, off, length, xd)
	}
	if mode&^fop.FallocKeepSize != 0 {
		return pre, post, nil, s.opErr("FALLOCATE", f.GFID, syscall.EOPNOTSUPP, fmt.Errorf("fallocate mode %#x on a sharded file", mode))
	}
	end := int64(off + length)
	if mode&fop.FallocKeepSize != 0 {
		// Blocks past the logical end would be out of reach of every
		// client's truncate and deletion (a leak): KEEP_SIZE allocates
		// below the end only.
		end = -1
		size, _ := ino.sizeAndBS()
		if off >= size {
			st, _, err := s.Fstat(ctx, f, nil)
			return st, st, nil, err
		}
		length = min(length, size-off)
	}
	return s.rangeFop(ctx, ino, f, off, length, end, pieceCreate, func(ctx context.Context, fd *fop.Fd, p Piece) (xdr.Iatt, xdr.Iatt, error) {
		return prePost(s.Subvolume.Fallocate(ctx, fd, mode, p.Off, p.Len, pieceXdata(xd)))
	})
}

// Discard punches a hole in a range: blocks that do not exist are holes
// already; the size stays.
func (s *Shard) Discard(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return pre, post, nil, err
	}
	if !sharded {
		return s.Subvolume.Discard(ctx, f, off, length, xd)
	}
	return s.rangeFop(ctx, ino, f, off, length, -1, pieceChange, func(ctx context.Context, fd *fop.Fd, p Piece) (xdr.Iatt, xdr.Iatt, error) {
		return prePost(s.Subvolume.Discard(ctx, fd, p.Off, p.Len, pieceXdata(xd)))
	})
}

// Zerofill zeroes a range, really (the native FUSE bridge turns
// ZERO_RANGE into a plain fallocate and zeroes nothing, reference §4.9),
// and grows the file when the range crosses its end, as fallocate
// (ZERO_RANGE) does. Blocks that do not exist read as zeros already.
func (s *Shard) Zerofill(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return pre, post, nil, err
	}
	if !sharded {
		return s.Subvolume.Zerofill(ctx, f, off, length, xd)
	}
	return s.rangeFop(ctx, ino, f, off, length, int64(off+length), pieceChange, func(ctx context.Context, fd *fop.Fd, p Piece) (xdr.Iatt, xdr.Iatt, error) {
		return prePost(s.Subvolume.Zerofill(ctx, fd, p.Off, p.Len, pieceXdata(xd)))
	})
}

func prePost(pre, post xdr.Iatt, _ xdr.Dict, err error) (xdr.Iatt, xdr.Iatt, error) {
	return pre, post, err
}

// rangeFop is the write path: split, then the size (to end, or -1 to
// keep it) and block count.
func (s *Shard) rangeFop(ctx context.Context, ino *inode, f *fop.Fd, off, length uint64, end int64, mode int, op func(ctx context.Context, fd *fop.Fd, p Piece) (xdr.Iatt, xdr.Iatt, error)) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	var mu sync.Mutex
	var grew atomic.Bool
	ino.io.RLock()
	defer ino.io.RUnlock()
	dblocks, made, err := s.eachPiece(ctx, ino, f, off, length, ino.blockSize(), mode, func(ctx context.Context, p Piece, fd *fop.Fd) (int64, error) {
		b, a, err := op(ctx, fd, p)
		if err == nil && p.Block > 0 && a.Nlink == 0 {
			// The kept fd reached a block another client deleted: the
			// change is done again on the block as it is now.
			return 0, errUnlinkedBlock
		}
		if err == nil {
			if a.Size > b.Size {
				grew.Store(true)
			}
			if p.Block == 0 {
				mu.Lock()
				pre, post = b, a
				mu.Unlock()
			}
		}
		return int64(a.Blocks) - int64(b.Blocks), err
	})
	if err != nil {
		s.recordBlocks(ctx, ino, dblocks)
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	pre = s.logical(ino, pre)
	// A block file that grew means sparse space filled, or a size this
	// client caches that another client's truncate made stale: then the
	// size is compared with the bricks' value.
	if err := s.updateSize(ctx, ino, f, end, dblocks, (made || grew.Load()) && end >= 0); err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	return pre, s.logical(ino, post), nil, nil
}

// Fsync syncs the base file and every block written through this client
// since the last fsync, in parallel.
func (s *Shard) Fsync(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return nil, err
	}
	if !sharded {
		return s.Subvolume.Fsync(ctx, f, datasync, xd)
	}
	ino.mu.Lock()
	dirty := make(map[uint64]uint64, len(ino.dirty))
	for n, seq := range ino.dirty {
		dirty[n] = seq
	}
	ino.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for n, seq := range dirty {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.fsyncBlock(ctx, ino, n, datasync, xd)
			if errors.Is(err, errNoBlock) {
				err = nil // deleted since: nothing to sync
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			ino.mu.Lock()
			if ino.dirty[n] == seq {
				delete(ino.dirty, n)
			}
			ino.mu.Unlock()
		}()
	}
	rx, err := s.Subvolume.Fsync(ctx, f, datasync, xd)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return rx, nil
}

// fsyncBlock syncs block n through its anonymous fd.
func (s *Shard) fsyncBlock(ctx context.Context, ino *inode, n uint64, datasync bool, xd xdr.Dict) error {
	bf, _, err := s.blockFd(ctx, ino, n, false, false)
	if err != nil {
		return err
	}
	err = fop.ErrOnly(s.Subvolume.Fsync(ctx, bf, datasync, xd))
	if missing(err) {
		s.forget(ino, n)
		return nil // deleted since it was written: nothing to sync
	}
	return err
}

// seekWindow is how many blocks Seek looks up at once: a hole of many
// blocks costs one round trip per window, not per block.
const seekWindow = 64

// Seek finds the next data or hole across the blocks; the end of the
// file is a hole. Blocks that do not exist are holes.
func (s *Shard) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return 0, nil, err
	}
	if !sharded {
		return s.Subvolume.Seek(ctx, f, off, what, xd)
	}
	end, bs := ino.sizeAndBS()
	if off >= end {
		return 0, nil, s.opErr("SEEK", f.GFID, syscall.ENXIO, nil)
	}
	direct := f.Flags&syscall.O_DIRECT != 0
	last := (end - 1) / bs
	for first := off / bs; first <= last; first += seekWindow {
		// Resolve the window's blocks at once, then walk them in order.
		n := min(seekWindow, last-first+1)
		fds := make([]*fop.Fd, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := uint64(0); i < n; i++ {
			if first+i == 0 {
				fds[i] = f
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				fds[i], _, errs[i] = s.blockFd(ctx, ino, first+i, false, direct)
			}()
		}
		wg.Wait()
		for i := uint64(0); i < n; i++ {
			b := first + i
			start := max(off, b*bs) - b*bs
			if errors.Is(errs[i], errNoBlock) {
				if what == fop.SeekHole {
					return b*bs + start, nil, nil
				}
				continue
			}
			if errs[i] != nil {
				return 0, nil, errs[i]
			}
			o, _, err := s.Subvolume.Seek(ctx, fds[i], start, what, xd)
			switch {
			case fop.Errno(err) == syscall.ENXIO:
				// Nothing past start in this block's file: a hole to the
				// block's end.
				if what == fop.SeekHole {
					return min(b*bs+start, end), nil, nil
				}
				continue
			case err != nil:
				return 0, nil, err
			}
			if what == fop.SeekData {
				if r := b*bs + o; r < end {
					return r, nil, nil
				}
				return 0, nil, s.opErr("SEEK", f.GFID, syscall.ENXIO, nil)
			}
			if o < bs {
				// A hole inside the block (its file's end is one when it
				// is shorter than the block).
				return min(b*bs+o, end), nil, nil
			}
		}
	}
	if what == fop.SeekHole {
		return end, nil, nil
	}
	return 0, nil, s.opErr("SEEK", f.GFID, syscall.ENXIO, nil)
}

// sizeReq is one fop's change of the file-size xattr, waiting to be
// sent in a batch.
type sizeReq struct {
	end     int64 // the size the fop needs at least; -1 for none
	dblocks int64
	fresh   bool // compare end with the size on the bricks, not the cached one
	done    chan error
}

// updateSize records that the file now reaches end (−1: the fop does
// not grow it) and that its allocation changed by dblocks, with
// ADD_ARRAY64 on the base file. Updates of concurrent fops are batched
// into one xattrop, as native batches them per inode context.
func (s *Shard) updateSize(ctx context.Context, ino *inode, f *fop.Fd, end int64, dblocks int64, fresh bool) error {
	ino.mu.Lock()
	if end <= ino.size && dblocks == 0 && !fresh {
		ino.mu.Unlock()
		return nil
	}
	r := &sizeReq{end: end, dblocks: dblocks, fresh: fresh && end >= 0, done: make(chan error, 1)}
	ino.pend = append(ino.pend, r)
	if ino.busy {
		ino.mu.Unlock()
		return <-r.done
	}
	ino.busy = true
	batch := ino.pend
	ino.pend = nil
	ino.mu.Unlock()
	// The batch may carry other fops' updates: it must not fail because
	// this caller gave up.
	uctx := context.WithoutCancel(ctx)
	err := s.applySize(uctx, ino, f, batch)
	for _, b := range batch {
		b.done <- err
	}
	s.drain(uctx, ino)
	return <-r.done
}

// drain sends the updates that queued while one was in flight, in the
// background (the caller's fd may be released once it returns, so by
// gfid).
func (s *Shard) drain(ctx context.Context, ino *inode) {
	ino.mu.Lock()
	if len(ino.pend) == 0 {
		ino.busy = false
		ino.mu.Unlock()
		return
	}
	batch := ino.pend
	ino.pend = nil
	ino.mu.Unlock()
	go func() {
		err := s.applySize(ctx, ino, nil, batch)
		for _, b := range batch {
			b.done <- err
		}
		s.drain(ctx, ino)
	}()
}

// applySize sends one batch. When it grows the file, the current size
// is taken under the layer's inode lock on the base file (domain
// <vol>-shard, the lock native's unlink takes too), and a delta that
// would over-count because another client grew the file meanwhile is
// corrected at once: two brickfs clients extending one file never leave
// it larger than its data, where two native clients do (reference
// §3.3, trap 3).
func (s *Shard) applySize(ctx context.Context, ino *inode, f *fop.Fd, batch []*sizeReq) error {
	ino.sizeMu.Lock()
	defer ino.sizeMu.Unlock()
	end, dblocks, fresh := int64(-1), int64(0), false
	for _, b := range batch {
		end = max(end, b.end)
		dblocks += b.dblocks
		fresh = fresh || b.fresh
	}
	ino.mu.Lock()
	cached := ino.size
	ino.mu.Unlock()
	if end <= cached && !fresh {
		if dblocks == 0 {
			return nil
		}
		got, err := s.xattrop(ctx, ino, f, Size{Blocks: dblocks})
		if err != nil {
			return err
		}
		s.setSize(ino, got)
		return nil
	}
	unlock, err := s.lockBase(ctx, ino.gfid)
	if err != nil {
		return err
	}
	defer unlock()
	delta := max(end-cached, 0)
	got, err := s.xattrop(ctx, ino, f, Size{Size: delta, Blocks: dblocks})
	if err != nil {
		return err
	}
	if target := max(end, got.Size-delta); got.Size != target {
		s.log.Info("another client changed the file's size while this one grew it; correcting the size",
			zap.Stringer("gfid", ino.gfid), zap.Int64("size", got.Size), zap.Int64("correct", target))
		if got, err = s.xattrop(ctx, ino, f, Size{Size: target - got.Size}); err != nil {
			return err
		}
	}
	s.setSize(ino, got)
	return nil
}

func (s *Shard) setSize(ino *inode, sz Size) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if sz.Size < ino.size {
		s.dropAbove(ino, Blocks(sz.Size, ino.bs)-1)
	}
	ino.size, ino.blocks = sz.Size, sz.Blocks
	ino.changed = s.epoch.Add(1)
}

// xattrop adds delta to the base file's file-size (through f when
// given) as a metadata transaction of the child, and returns the new
// value.
func (s *Shard) xattrop(ctx context.Context, ino *inode, f *fop.Fd, delta Size) (Size, error) {
	dict := xdr.Dict{{Key: KeyFileSize, Value: xdr.Ptr(delta.Bytes())}}
	ictx := internal(ctx)
	var out xdr.Dict
	var err error
	if f != nil {
		out, _, err = s.Subvolume.Fxattrop(ictx, f, fop.XattropAddArray64, dict, nil)
	} else {
		out, _, err = s.Subvolume.Xattrop(ictx, ino.gfid, fop.XattropAddArray64, dict, nil)
	}
	if err != nil {
		return Size{}, err
	}
	b, ok := out.Bytes(KeyFileSize)
	if !ok {
		return Size{}, s.opErr("XATTROP", ino.gfid, syscall.EIO, errors.New("the reply lacks the file size"))
	}
	return ParseSize(b)
}

// lockBase takes the layer's inode lock on a base file (whole range,
// write, blocking) with an owner of its own, and returns its unlock.
func (s *Shard) lockBase(ctx context.Context, g xdr.GFID) (func(), error) {
	lctx := owned(ctx)
	fl := xdr.Flock{Type: fop.LkWrite}
	if _, err := s.Subvolume.Inodelk(lctx, g, s.name, fop.LkSetW, fl, nil); err != nil {
		return nil, err
	}
	return func() {
		fl.Type = fop.LkUnlock
		if _, err := s.Subvolume.Inodelk(context.WithoutCancel(lctx), g, s.name, fop.LkSet, fl, nil); err != nil {
			s.log.Warn("unlocking a file failed; the bricks release the lock when this client disconnects",
				zap.Stringer("gfid", g), zap.Error(err))
		}
	}, nil
}

// ZerofillKeepSize is fallocate(ZERO_RANGE|KEEP_SIZE): on a sharded file
// the range below the logical end is zeroed block by block (past it
// nothing is kept: see Fallocate); on another file the child carries it
// out.
func (s *Shard) ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return err
	}
	if !sharded {
		if zk, ok := s.Subvolume.(interface {
			ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error
		}); ok {
			return zk.ZerofillKeepSize(ctx, f, off, length)
		}
		return fop.ZeroKeepSize(ctx, s.Subvolume, f, off, length)
	}
	size, _ := ino.sizeAndBS()
	if off >= size {
		return nil
	}
	return fop.ErrOnlyPrePost(s.Zerofill(ctx, f, off, min(length, size-off), nil))
}

// recordBlocks records the allocation that pieces of a failed fop made
// (the size stays: data past it is invisible), so st_blocks stays true.
func (s *Shard) recordBlocks(ctx context.Context, ino *inode, dblocks int64) {
	if dblocks == 0 {
		return
	}
	if err := s.updateSize(ctx, ino, nil, -1, dblocks, false); err != nil {
		s.log.Warn("recording the blocks a failed write allocated failed; the file's block count is low until a later write corrects it",
			zap.Stringer("gfid", ino.gfid), zap.Error(err))
	}
}
