package failover

import (
	"context"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Client-side data heal.
//
// The self-heal daemon heals what the changelog marks, but only when its
// own connection to a brick saw the brick go and come back, or at its next
// crawl (10 minutes by default). After a brick hung (SIGSTOP) or its host
// went silent, only brickfs noticed, so brickfs heals the files it marked
// itself, as soon as the brick is back, the way AFR's heal does: copy from
// a brick nobody accuses to the accused ones, chunk by chunk under the
// file's data lock, then clear the accusations with negated xattrops.

// healChunk is the size copied under one lock (AFR uses 128 KiB).
const healChunk = 1 << 20

// noteHeal remembers that gfid has a data accusation brickfs made.
func (r *Replicate) noteHeal(gfid xdr.GFID) {
	r.healMu.Lock()
	if r.toHeal == nil {
		r.toHeal = map[xdr.GFID]bool{}
	}
	r.toHeal[gfid] = true
	r.healMu.Unlock()
}

// kickHeal wakes the heal worker.
func (r *Replicate) kickHeal() {
	r.healOnce.Do(func() {
		r.healKick = make(chan struct{}, 1)
		r.healStop = make(chan struct{})
		r.healDone = make(chan struct{})
		go r.healWorker()
	})
	select {
	case r.healKick <- struct{}{}:
	default:
	}
}

// Close stops the heal worker.
func (r *Replicate) Close() {
	r.healOnce.Do(func() {})
	if r.healStop != nil {
		close(r.healStop)
		<-r.healDone
	}
}

func (r *Replicate) healWorker() {
	defer close(r.healDone)
	for {
		select {
		case <-r.healStop:
			return
		case <-r.healKick:
		}
		// Let a returning brick finish its handshake and the writers move
		// their eager locks over to it first.
		select {
		case <-r.healStop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		r.healMu.Lock()
		todo := make([]xdr.GFID, 0, len(r.toHeal))
		for g := range r.toHeal {
			todo = append(todo, g)
		}
		r.healMu.Unlock()
		for _, g := range todo {
			select {
			case <-r.healStop:
				return
			default:
			}
			done, err := r.healData(context.Background(), g)
			if err != nil {
				r.log.Warn("heal failed; the self-heal daemon will heal it", zap.Stringer("gfid", g), zap.Error(err))
			}
			if done || brick.Errno(err) == syscall.ENOENT || brick.Errno(err) == syscall.ESTALE {
				r.healMu.Lock()
				delete(r.toHeal, g)
				r.healMu.Unlock()
			}
		}
	}
}

// healData heals one regular file. It reports done when no up brick is
// left accused for data.
func (r *Replicate) healData(ctx context.Context, g xdr.GFID) (bool, error) {
	ino := r.inode(g)
	sts, ok, err := r.refresh(ctx, ino)
	if err != nil {
		return false, err
	}
	ino.mu.Lock()
	readable, isDir := clone(ino.readable), ino.isDir
	ino.mu.Unlock()
	if isDir {
		return true, nil
	}
	up := r.up()
	sources := and(readable, and(ok, up))
	// The arbiter is never readable for data; it counts as a sink so that
	// an accusation of it is cleared, but no data is copied to it.
	sinks := and(and(ok, up), not(readable))
	if a := r.opts.Arbiter; a >= 0 && sinks[a] && !r.accused(ctx, ino, a, sources) {
		sinks[a] = false // unreadable by design, not accused
	}
	if count(sinks) == 0 {
		// Nothing up to heal; an accused brick still down is healed when
		// it returns.
		return count(not(up)) == 0, nil
	}
	if count(sources) == 0 {
		return false, nil // split-brain: left to the operator and shd
	}
	src := first(sources)
	var names []string
	for i, s := range sinks {
		if s {
			names = append(names, r.kids[i].Name())
		}
	}
	r.log.Info("healing file", zap.Stringer("gfid", g), zap.String("source", r.kids[src].Name()), zap.Strings("sinks", names), zap.Uint64("size", sts[src].Size))
	start := time.Now()

	fds := make([]*brick.Fd, r.n())
	defer func() {
		for i, f := range fds {
			if f != nil {
				_ = r.kids[i].Release(ctx, f)
			}
		}
	}()
	for i := range r.kids {
		if i == src || sinks[i] {
			f, err := r.kids[i].Open(ctx, g, syscall.O_RDWR)
			if err != nil {
				return false, err
			}
			fds[i] = f
		}
	}
	size := sts[src].Size
	for off := uint64(0); off < size; off += healChunk {
		if err := r.healChunkAt(ctx, ino, fds, src, sinks, off); err != nil {
			return false, err
		}
	}
	if err := r.healFinish(ctx, ino, fds, src, sinks); err != nil {
		return false, err
	}
	r.log.Info("file healed", zap.Stringer("gfid", g), zap.Duration("took", time.Since(start)))
	return true, nil
}

// accused reports whether any of the children in by accuses child k for data.
func (r *Replicate) accused(ctx context.Context, ino *inode, k int, by []bool) bool {
	for _, d := range r.xattropGet(ctx, ino, by) {
		if b, ok := d.Bytes(r.keys[k]); ok {
			if c, ok := parseCounts(b); ok && c[slotData] != 0 {
				return true
			}
		}
	}
	return false
}

// healChunkAt copies one chunk from src to the sinks, ordered against the
// file's writers by the eager lock's busy ranges.
func (r *Replicate) healChunkAt(ctx context.Context, ino *inode, fds []*brick.Fd, src int, sinks []bool, off uint64) error {
	if _, err := r.acquire(ctx, ino, off, healChunk); err != nil {
		return err
	}
	defer r.release(ino, off, healChunk, false)
	data, err := r.kids[src].Read(ctx, fds[src], off, healChunk)
	if err != nil {
		return err
	}
	if len(data) == 0 {
		return nil
	}
	for i, s := range sinks {
		if s && i != r.opts.Arbiter {
			if _, err := r.kids[i].Write(ctx, fds[i], off, data, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// healFinish sets the sinks' size to the source's and clears the
// accusations, all under the whole-file range: nothing of ours is in flight
// and no other client holds the data lock, so every dirty count above the
// one this eager lock's pre-op added is a leftover of the failure.
func (r *Replicate) healFinish(ctx context.Context, ino *inode, fds []*brick.Fd, src int, sinks []bool) error {
	part, err := r.acquire(ctx, ino, 0, whole)
	if err != nil {
		return err
	}
	defer r.release(ino, 0, whole, false)
	st, err := r.kids[src].Fstat(ctx, fds[src])
	if err != nil {
		return err
	}
	for i, s := range sinks {
		if s && i != r.opts.Arbiter {
			if _, _, err := r.kids[i].Ftruncate(ctx, fds[i], st.Size); err != nil {
				return err
			}
		}
	}
	cur := r.xattropGet(ctx, ino, part)
	for i, d := range cur {
		if d == nil {
			continue
		}
		var dirty counts
		if b, ok := d.Bytes(dirtyKey); ok {
			if c, ok := parseCounts(b); ok && c[slotData] > 1 {
				dirty[slotData] = -(c[slotData] - 1)
			}
		}
		pending := map[int]counts{}
		for k, key := range r.keys {
			if !sinks[k] {
				continue
			}
			if b, ok := d.Bytes(key); ok {
				if c, ok := parseCounts(b); ok && c[slotData] != 0 {
					pending[k] = slotOnly(slotData, -c[slotData])
				}
			}
		}
		if dirty != (counts{}) || len(pending) > 0 {
			one := make([]bool, r.n())
			one[i] = true
			if ok := r.xattrop(ctx, ino.gfid, ino.owner, one, dirty, pending, nil); !ok[i] {
				return &brick.OpError{Brick: r.kids[i].Name(), Fop: "XATTROP", GFID: ino.gfid, Errno: syscall.EIO}
			}
		}
	}
	r.setReadable(ino, and(part, r.up()), make([]xdr.Dict, r.n()), false, r.gen.Load())
	return nil
}

// xattropGet reads the changelog of the children in set (all-zero adds).
func (r *Replicate) xattropGet(ctx context.Context, ino *inode, set []bool) []xdr.Dict {
	dict := r.changelog(counts{}, nil)
	out := make([]xdr.Dict, r.n())
	r.fanout(internal(ctx, ino.owner), set, func(ctx context.Context, i int) error {
		d, err := r.kids[i].Xattrop(ctx, ino.gfid, xattropAddArray, dict, nil)
		out[i] = d
		return err
	})
	return out
}
