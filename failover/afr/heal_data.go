package afr

import (
	"context"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Client-side data heal: copy from a brick nobody accuses to the accused
// ones, chunk by chunk under the file's data lock, then clear the
// accusations with negated xattrops (see healqueue.go for why brickfs
// heals at all).

// healChunk is the size copied under one lock (AFR uses 128 KiB).
const healChunk = 1 << 20

// healData heals one regular file. It reports done when nothing is left
// to heal; a heal that cannot run now (a brick down, another healer at it,
// split-brain) is left for the next round or for the self-heal daemon.
func (r *Replicate) healData(ctx context.Context, g xdr.GFID) (bool, error) {
	up := r.up()
	if count(up) < r.n() {
		return false, nil // AFR heals only with every brick locked
	}
	ino := r.inode(g)
	sts, ok, err := r.refresh(ctx, ino, nil)
	if err != nil {
		return false, err
	} else if count(ok) < r.n() {
		return false, nil
	}
	// Only regular files hold data; for others (a FIFO made while a brick
	// was down carries a data mark too) the accusation is just cleared.
	regular := sts[first(ok)].Mode&syscall.S_IFMT == syscall.S_IFREG

	// The healers' tie-breaker lock, non-blocking: if the self-heal daemon
	// holds it, it is healing this file already.
	owner := newOwner()
	hctx := internal(ctx, owner)
	domain := r.name + healDomainSuffix
	rs := r.fanout(hctx, up, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, g, domain, fop.LkSet, dataRange, nil))
	})
	locked := succeeded(rs, up)
	defer r.fanout(hctx, locked, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, g, domain, fop.LkSet, unlockOf(dataRange), nil))
	})
	if count(locked) < r.n() {
		return false, nil
	}

	// The direction, from the changelog read under the file's data lock.
	part, err := r.acquire(ctx, ino, nil, 0, whole)
	if err != nil {
		return false, err
	}
	snap, read := r.readMatrix(ctx, ino, part)
	r.release(ino, 0, whole, false)
	if !read || count(part) < r.n() {
		return false, nil
	}
	sources, sinks := r.direction(snap)
	if count(sinks) == 0 {
		return true, nil
	}
	if count(sources) == 0 {
		return false, nil // split-brain: the operator decides
	}
	src := first(sources)
	var names []string
	for i, s := range sinks {
		if s {
			names = append(names, r.kids[i].Name())
		}
	}
	start := time.Now()
	fds := make([]*fop.Fd, r.n())
	defer func() {
		for i, f := range fds {
			if f != nil {
				_ = r.kids[i].Release(context.Background(), f)
			}
		}
	}()
	if !regular {
		return r.healFinish(ctx, ino, fds, src, sources, sinks, snap)
	}
	for i := range r.kids {
		if i == src || (sinks[i] && i != r.opts.Arbiter) {
			f, _, err := r.kids[i].Open(ctx, g, syscall.O_RDWR, nil)
			if err != nil {
				return false, err
			}
			fds[i] = f
		}
	}
	st, _, err := r.kids[src].Fstat(ctx, fds[src], nil)
	if err != nil {
		return false, err
	}
	r.log.Info("healing file", zap.Stringer("gfid", g), zap.String("source", r.kids[src].Name()), zap.Strings("sinks", names), zap.Uint64("size", st.Size))
	for off := uint64(0); off < st.Size; off += healChunk {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err := r.healChunkAt(ctx, ino, fds, src, sinks, off); err != nil {
			return false, err
		}
	}
	done, err := r.healFinish(ctx, ino, fds, src, sources, sinks, snap)
	if err != nil || !done {
		return false, err
	}
	r.log.Info("file healed", zap.Stringer("gfid", g), zap.Duration("took", time.Since(start)))
	return true, nil
}

// healChunkAt copies one chunk from src to the sinks, ordered against the
// file's writers by the eager lock's busy ranges.
func (r *Replicate) healChunkAt(ctx context.Context, ino *inode, fds []*fop.Fd, src int, sinks []bool, off uint64) error {
	if _, err := r.acquire(ctx, ino, nil, off, healChunk); err != nil {
		return err
	}
	defer r.release(ino, off, healChunk, false)
	data, _, err := r.kids[src].Read(ctx, fds[src], off, healChunk, nil)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	for i, s := range sinks {
		if s && fds[i] != nil {
			if _, _, _, err := r.kids[i].Write(ctx, fds[i], off, data, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// healFinish sets the sinks' size to the source's and takes back exactly
// the accusations the heal started from, under the whole-file range: none
// of our fops is in flight and no other client holds the data lock. If a
// sink was accused again meanwhile, or left the transaction, nothing is
// cleared and the next round heals again. A sink's dirty count above the
// one this eager lock's pre-op added is a leftover of the failure and is
// cleared too; the sources' dirty counts are left alone.
func (r *Replicate) healFinish(ctx context.Context, ino *inode, fds []*fop.Fd, src int, sources, sinks []bool, snap matrix) (bool, error) {
	part, err := r.acquire(ctx, ino, nil, 0, whole)
	if err != nil {
		return false, err
	}
	// Released at once, not after post-op-delay: the metadata heal that
	// follows needs the lock's range too.
	defer r.release(ino, 0, whole, true)
	if count(part) < r.n() {
		return false, nil
	}
	now, ok := r.readMatrix(ctx, ino, part)
	if !ok {
		return false, nil
	}
	for i := range now.m {
		for j := range now.m[i] {
			if sinks[j] && now.m[i][j] != snap.m[i][j] {
				return false, nil
			}
		}
	}
	if fds[src] != nil {
		st, _, err := r.kids[src].Fstat(ctx, fds[src], nil)
		if err != nil {
			return false, err
		}
		for i, s := range sinks {
			if s && fds[i] != nil {
				if _, _, _, err := r.kids[i].Ftruncate(ctx, fds[i], st.Size, nil); err != nil {
					return false, err
				}
			}
		}
	}
	for i := range r.kids {
		var dirty counts
		if sinks[i] && now.dirty[i] > 1 {
			dirty[slotData] = -(now.dirty[i] - 1)
		}
		pending := map[int]counts{}
		for j := range r.kids {
			if sinks[j] && snap.m[i][j] != 0 {
				pending[j] = slotOnly(slotData, -snap.m[i][j])
			}
		}
		if dirty == (counts{}) && len(pending) == 0 {
			continue
		}
		one := make([]bool, r.n())
		one[i] = true
		if ok, _ := r.xattrop(ctx, ino.gfid, ino.owner, one, dirty, pending, nil); !ok[i] {
			return false, &fop.OpError{Brick: r.kids[i].Name(), Fop: "XATTROP", GFID: ino.gfid, Errno: syscall.EIO}
		}
	}
	r.setReadable(ino, part, make([]xdr.Dict, r.n()), false, r.gen.Load())
	return true, nil
}
