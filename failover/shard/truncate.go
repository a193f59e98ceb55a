package shard

import (
	"context"
	"errors"
	"sync"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Truncate sets a file's size: growing only changes the size xattr;
// shrinking unlinks the blocks past the new end and truncates the one it
// falls in (reference §8.3), keeping a last block that the new size
// ends exactly at whole (native 10.3 empties it, §4.8).
func (s *Shard) Truncate(ctx context.Context, gfid xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := s.hiddenGFID("TRUNCATE", gfid); err != nil {
		return pre, post, nil, err
	}
	ino, sharded, err := s.state(ctx, gfid, nil)
	if err != nil {
		return pre, post, nil, err
	}
	if !sharded {
		return s.Subvolume.Truncate(ctx, gfid, size, xd)
	}
	return s.truncate(ctx, ino, nil, size)
}

// Ftruncate is Truncate through an open file.
func (s *Shard) Ftruncate(ctx context.Context, f *fop.Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	ino, sharded, err := s.state(ctx, f.GFID, f)
	if err != nil {
		return pre, post, nil, err
	}
	if !sharded {
		return s.Subvolume.Ftruncate(ctx, f, size, xd)
	}
	return s.truncate(ctx, ino, f, size)
}

// blockCount asks UNLINK for the unlinked file's ia_blocks.
var blockCount = xdr.Dict{{Key: "gf_get_file_block_count", Value: xdr.Uint(64)}}

// truncate carries out a truncate of a sharded file (through f when
// given) under the layer's lock on the base file, from the size read
// under it, so that it composes with other brickfs clients' size
// updates.
func (s *Shard) truncate(ctx context.Context, ino *inode, f *fop.Fd, size uint64) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if size > 1<<63-1 {
		return pre, post, nil, s.opErr("TRUNCATE", ino.gfid, syscall.EFBIG, nil)
	}
	stat := func() (xdr.Iatt, error) {
		if f != nil {
			st, _, err := s.Fstat(ctx, f, nil)
			return st, err
		}
		st, _, err := s.Stat(ctx, ino.gfid, nil)
		return st, err
	}
	if pre, err = stat(); err != nil {
		return pre, post, nil, err
	}
	if err := s.truncateLocked(ctx, ino, f, int64(size)); err != nil {
		return pre, post, nil, err
	}
	post, err = stat()
	return pre, post, nil, err
}

func (s *Shard) truncateLocked(ctx context.Context, ino *inode, f *fop.Fd, n int64) error {
	ino.io.Lock()
	defer ino.io.Unlock()
	ino.sizeMu.Lock()
	defer ino.sizeMu.Unlock()
	unlock, err := s.lockBase(ctx, ino.gfid)
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.xattrop(ctx, ino, f, Size{})
	if err != nil {
		return err
	}
	s.setSize(ino, cur)
	if err := s.dropOrphans(ctx, ino, max(n, cur.Size)); err != nil {
		return err
	}
	if n == cur.Size {
		return nil
	}
	if n > cur.Size {
		// Bytes past the old end that a write left without its size
		// update (it failed) must read as zeros once the file grows over
		// them: the old last block is cut to the old end, blocks known
		// past it go (native shows those bytes).
		dblocks, err := s.clearTail(ctx, ino, f, cur.Size)
		if err != nil {
			return err
		}
		got, err := s.xattrop(ctx, ino, f, Size{Size: n - cur.Size, Blocks: dblocks})
		if err == nil {
			s.setSize(ino, got)
		}
		return err
	}
	ino.mu.Lock()
	bs := ino.bs
	var known uint64
	for b := range ino.blks {
		known = max(known, b)
	}
	// No write of this client reaches the blocks that go from now on.
	s.dropAbove(ino, Blocks(n, bs)-1)
	ino.mu.Unlock()
	plan, err := PlanShrink(cur.Size, n, known, bs)
	if err != nil {
		return err
	}
	dblocks, err := s.unlinkBlocks(ctx, ino.gfid, plan.Unlink, true)
	if err != nil {
		// Some blocks are gone, the size is not changed yet: the data
		// below the new size is intact, and a retry goes on.
		return err
	}
	if plan.Trunc {
		d, err := s.truncBlock(ctx, ino, f, plan.TruncBlock, plan.TruncTo)
		if err != nil {
			return err
		}
		dblocks += d
	}
	got, err := s.xattrop(ctx, ino, f, Size{Size: n - cur.Size, Blocks: dblocks})
	if err != nil {
		return err
	}
	s.setSize(ino, got)
	return nil
}

// unlinkBlocks unlinks blocks of base in .shard, several at once;
// missing ones are fine. With count it returns minus their block
// counts.
func (s *Shard) unlinkBlocks(ctx context.Context, base xdr.GFID, blocks []uint64, count bool) (int64, error) {
	ictx := internal(ctx)
	var xd xdr.Dict
	if count {
		xd = blockCount
	}
	var mu sync.Mutex
	var total int64
	var errs []error
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, b := range blocks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			rx, err := s.Subvolume.Unlink(ictx, DotShardGFID, Name(base, b), xd)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case missing(err):
			case err != nil:
				errs = append(errs, err)
			default:
				if c, ok := rx.Uint("gf_get_file_block_count"); ok {
					total -= int64(c)
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, errs[0]
	}
	return total, nil
}

// truncBlock truncates block n (the base file through f, or by gfid) to
// to bytes and returns the change of its allocation.
func (s *Shard) truncBlock(ctx context.Context, ino *inode, f *fop.Fd, n, to uint64) (int64, error) {
	var pre, post xdr.Iatt
	var err error
	switch {
	case n == 0 && f != nil:
		pre, post, _, err = s.Subvolume.Ftruncate(ctx, f, to, nil)
	case n == 0:
		pre, post, _, err = s.Subvolume.Truncate(ctx, ino.gfid, to, nil)
	default:
		g, _, rerr := s.resolve(ctx, ino, n, false)
		if errors.Is(rerr, errNoBlock) {
			return 0, nil
		}
		if rerr != nil {
			return 0, rerr
		}
		pre, post, _, err = s.Subvolume.Truncate(internal(ctx), g, to, nil)
		if missing(err) {
			return 0, nil
		}
	}
	if err != nil {
		return 0, err
	}
	return int64(post.Blocks) - int64(pre.Blocks), nil
}

// clearTail cuts what lies past size: the block size falls in is
// truncated to it, the blocks this client knows of past it are unlinked.
// It returns the change of the allocation.
func (s *Shard) clearTail(ctx context.Context, ino *inode, f *fop.Fd, size int64) (int64, error) {
	ino.mu.Lock()
	bs := ino.bs
	last := Blocks(size, bs) - 1
	var beyond []uint64
	for b := range ino.blks {
		if b > last {
			beyond = append(beyond, b)
		}
	}
	s.dropAbove(ino, last)
	ino.mu.Unlock()
	d, err := s.unlinkBlocks(ctx, ino.gfid, beyond, true)
	if err != nil {
		return 0, err
	}
	if size > 0 && uint64(size)%bs == 0 {
		return d, nil
	}
	t, err := s.truncBlock(ctx, ino, f, last, uint64(size)%bs)
	return d + t, err
}

// dropOrphans unlinks the blocks failed fops of this client made that
// lie wholly past size (the kernel truncates a file back to its size
// after a failed extending O_DIRECT write: that truncate takes them).
//
// REQUIRES ino.io held exclusively and the layer's lock on the base file.
func (s *Shard) dropOrphans(ctx context.Context, ino *inode, size int64) error {
	ino.mu.Lock()
	keep := Blocks(size, ino.bs) - 1
	var gone []uint64
	for b := range ino.orphans {
		if b > keep {
			gone = append(gone, b)
		}
		delete(ino.orphans, b)
	}
	for _, b := range gone {
		delete(ino.blks, b)
	}
	ino.mu.Unlock()
	if len(gone) == 0 {
		return nil
	}
	// Their allocation was counted (recordBlocks): uncount it.
	d, err := s.unlinkBlocks(ctx, ino.gfid, gone, true)
	if err != nil {
		return err
	}
	if d != 0 {
		got, err := s.xattrop(ctx, ino, nil, Size{Blocks: d})
		if err != nil {
			return err
		}
		s.setSize(ino, got)
	}
	return nil
}
