package shard

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Copies between sharded files go block by block: the piece of each
// destination block is copied from the source block holding the same
// bytes by COPY_FILE_RANGE on that block's replica set (a reflink on XFS
// bricks). This needs both files' blocks to line up: the same block size
// and the same offset within a block on both sides, which whole-file
// clones and qemu-img's chunked copies always have; otherwise the kernel
// copies (EOPNOTSUPP). A source block on another replica set than its
// destination block (a distributed volume) is copied by this layer
// through READ and WRITE, so that a clone is never refused as a whole for
// some of its blocks. Destination blocks are made as writes make them,
// and the size and block count grow as a write's do.

// copyChunk is one READ and WRITE of a block copied by this layer.
const copyChunk = 1 << 20

// CopyFileRange copies size bytes from in at offIn to out at offOut, at
// most to the source's logical end; unsharded files go down unchanged.
func (s *Shard) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	inoIn, shIn, err := s.state(ctx, in.GFID, in)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	inoOut, shOut, err := s.state(ctx, out.GFID, out)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	if !shIn && !shOut {
		return s.Subvolume.CopyFileRange(ctx, in, offIn, out, offOut, size, flags, xd)
	}
	if shIn != shOut {
		return 0, xdr.Iatt{}, nil, s.opErr("COPY_FILE_RANGE", out.GFID, syscall.EOPNOTSUPP, errors.New("one file is sharded and the other is not"))
	}
	end, bs := inoIn.sizeAndBS()
	if obs := inoOut.blockSize(); obs != bs || offIn%bs != offOut%bs {
		return 0, xdr.Iatt{}, nil, s.opErr("COPY_FILE_RANGE", out.GFID, syscall.EOPNOTSUPP,
			fmt.Errorf("the blocks do not line up (block sizes %d and %d, offsets %d and %d)", bs, obs, offIn, offOut))
	}
	if offIn >= end {
		st, _, err := s.Fstat(ctx, out, nil)
		return 0, st, nil, err
	}
	n := min(size, end-offIn)
	if n == 0 {
		st, _, err := s.Fstat(ctx, out, nil)
		return 0, st, nil, err
	}
	_, post, _, err := s.rangeFop(ctx, inoOut, out, offOut, n, int64(offOut+n), pieceCreate, func(ctx context.Context, dfd *fop.Fd, p Piece) (xdr.Iatt, xdr.Iatt, error) {
		return s.copyPiece(ctx, inoIn, in, offIn+p.At, dfd, p, bs, flags, xd)
	})
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	return n, post, nil, nil
}

// copyPiece copies piece p of the destination (through dfd, its block's
// fd) from the source's bytes at src, and returns the destination
// block's attributes before and after. Past the source block's end, or
// where the source has no block, the destination piece is punched: it
// reads as zeros, as the source does.
func (s *Shard) copyPiece(ctx context.Context, inoIn *inode, in *fop.Fd, src uint64, dfd *fop.Fd, p Piece, bs uint64, flags uint32, xd xdr.Dict) (pre, post xdr.Iatt, err error) {
	blk := src / bs
	sfd := in
	if blk > 0 {
		sfd, _, err = s.blockFd(ctx, inoIn, blk, false, false)
		if errors.Is(err, errNoBlock) {
			sfd, err = nil, nil
		}
		if err != nil {
			if missing(err) {
				s.forget(inoIn, blk)
			}
			return pre, post, err
		}
	}
	if pre, _, err = s.Subvolume.Fstat(ctx, dfd, nil); err != nil {
		return pre, post, err
	}
	done := uint64(0)
	byBricks := true
	for sfd != nil && done < p.Len {
		var c uint64
		if byBricks {
			c, _, _, err = s.Subvolume.CopyFileRange(ctx, sfd, p.Off+done, dfd, p.Off+done, p.Len-done, flags, xd)
			switch fop.Errno(err) {
			case syscall.EXDEV, syscall.EOPNOTSUPP, syscall.ENOSYS:
				// Blocks on two replica sets, or bricks that cannot:
				// this layer copies the rest.
				byBricks = false
				continue
			}
		} else {
			var b []byte
			b, _, err = s.Subvolume.Read(ctx, sfd, p.Off+done, uint32(min(p.Len-done, copyChunk)), nil)
			if err == nil && len(b) > 0 {
				_, _, _, err = s.Subvolume.Write(ctx, dfd, p.Off+done, b, nil)
			}
			c = uint64(len(b))
		}
		if err != nil {
			if missing(err) && sfd != in {
				s.forget(inoIn, blk)
			}
			return pre, post, err
		}
		if c == 0 {
			break // the source block ends here: the rest is zeros
		}
		done += c
	}
	if done < p.Len && pre.Size > p.Off+done {
		// The destination block has bytes there that the source has not.
		if _, _, _, err = s.Subvolume.Discard(ctx, dfd, p.Off+done, p.Len-done, nil); err != nil {
			return pre, post, err
		}
	}
	post, _, err = s.Subvolume.Fstat(ctx, dfd, nil)
	return pre, post, err
}
