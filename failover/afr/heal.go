package afr

import (
	"context"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
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

// noteHeal remembers that gfid has an accusation of kind slot (data or
// metadata) that brickfs made.
func (r *Replicate) noteHeal(gfid xdr.GFID, slot int) {
	r.healMu.Lock()
	if r.toHeal == nil {
		r.toHeal = map[xdr.GFID]uint8{}
	}
	r.toHeal[gfid] |= 1 << slot
	r.healMu.Unlock()
}

// kickHeal wakes the heal worker.
func (r *Replicate) kickHeal() {
	r.healOnce.Do(func() {
		r.healKick = make(chan struct{}, 1)
		r.healStop = make(chan struct{})
		r.healDone = make(chan struct{})
		r.healCtx, r.healCancel = context.WithCancel(context.Background())
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
		r.healCancel()
		close(r.healStop)
		<-r.healDone
	}
}

func (r *Replicate) healWorker() {
	defer close(r.healDone)
	for {
		r.healMu.Lock()
		waiting := len(r.toHeal) > 0 || len(r.entryHeal) > 0
		r.healMu.Unlock()
		retry := make(<-chan time.Time)
		if waiting {
			// Heals that could not run (a brick down, the heal daemon at
			// the same file) are tried again now and then.
			retry = time.After(10 * time.Second)
		}
		select {
		case <-r.healStop:
			return
		case <-r.healKick:
		case <-retry:
		}
		// Let a returning brick finish its handshake and the writers move
		// their eager locks over to it first.
		select {
		case <-r.healStop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		// Names first: a file made on the returning brick is then filled
		// in by the data and metadata heals below.
		r.healEntries(r.healCtx)
		r.healMu.Lock()
		todo := make(map[xdr.GFID]uint8, len(r.toHeal))
		for g, kinds := range r.toHeal {
			todo[g] = kinds
		}
		r.healMu.Unlock()
		for g, kinds := range todo {
			select {
			case <-r.healStop:
				return
			default:
			}
			for _, slot := range []int{slotData, slotMeta} {
				if kinds&(1<<slot) == 0 {
					continue
				}
				heal := r.healData
				if slot == slotMeta {
					heal = r.healMeta
				}
				done, err := heal(r.healCtx, g)
				if err != nil {
					r.log.Warn("heal failed; the self-heal daemon will heal it", zap.Stringer("gfid", g), zap.Int("slot", slot), zap.Error(err))
				}
				if done || fop.Errno(err) == syscall.ENOENT || fop.Errno(err) == syscall.ESTALE {
					r.healMu.Lock()
					if r.toHeal[g] &^= 1 << slot; r.toHeal[g] == 0 {
						delete(r.toHeal, g)
					}
					r.healMu.Unlock()
				}
			}
		}
	}
}

// healDomainSuffix names the lock domain heals take first, as the
// self-heal daemon does: two healers of one file never run at once.
const healDomainSuffix = ":self-heal"

// matrix is the data slot of every child's changelog: m[i][j] is what
// child i holds against child j; dirty[i] is child i's own dirty count.
type matrix struct {
	m     [][]int32
	dirty []int32
}

func (r *Replicate) readMatrix(ctx context.Context, ino *inode, set []bool) (matrix, bool) {
	return r.readMatrixSlot(ctx, ino, set, slotData)
}

func (r *Replicate) readMatrixSlot(ctx context.Context, ino *inode, set []bool, slot int) (matrix, bool) {
	ds := r.xattropGet(ctx, ino, set)
	mx := matrix{m: make([][]int32, r.n()), dirty: make([]int32, r.n())}
	for i := range ds {
		mx.m[i] = make([]int32, r.n())
		if !set[i] {
			continue
		}
		if ds[i] == nil {
			return mx, false
		}
		if b, ok := ds[i].Bytes(dirtyKey); ok {
			if c, ok := parseCounts(b); ok {
				mx.dirty[i] = c[slot]
			}
		}
		for j, k := range r.keys {
			if b, ok := ds[i].Bytes(k); ok {
				if c, ok := parseCounts(b); ok {
					mx.m[i][j] = c[slot]
				}
			}
		}
	}
	return mx, true
}

// direction picks sources and sinks as afr_selfheal_find_direction does:
// a child accused by no child that is not itself accused by itself.
func (r *Replicate) direction(mx matrix) (sources, sinks []bool) {
	accused := make([]bool, r.n())
	for i := range mx.m {
		if mx.m[i][i] != 0 {
			continue // a fool accuses nobody
		}
		for j, v := range mx.m[i] {
			if v != 0 && j != i {
				accused[j] = true
			}
		}
	}
	sources, sinks = make([]bool, r.n()), make([]bool, r.n())
	for i := range accused {
		switch {
		case accused[i]:
			sinks[i] = true
		case i != r.opts.Arbiter:
			sources[i] = true
		}
	}
	return sources, sinks
}

// healData heals one regular file. It reports done when nothing is left
// to heal; a heal that cannot run now (a brick down, another healer at it,
// split-brain) is left for the next round or for the self-heal daemon.
func (r *Replicate) healData(ctx context.Context, g xdr.GFID) (bool, error) {
	up := r.up()
	if count(up) < r.n() {
		return false, nil // AFR heals only with every brick locked
	}
	ino := r.inode(g)
	sts, ok, err := r.refresh(ctx, ino)
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
	part, err := r.acquire(ctx, ino, 0, whole)
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
	if _, err := r.acquire(ctx, ino, off, healChunk); err != nil {
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
			if _, _, err := r.kids[i].Write(ctx, fds[i], off, data, nil); err != nil {
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
	part, err := r.acquire(ctx, ino, 0, whole)
	if err != nil {
		return false, err
	}
	defer r.release(ino, 0, whole, false)
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

// xattropGet reads the changelog of the children in set (all-zero adds).
func (r *Replicate) xattropGet(ctx context.Context, ino *inode, set []bool) []xdr.Dict {
	dict := r.changelog(counts{}, nil)
	out := make([]xdr.Dict, r.n())
	r.fanout(internal(ctx, ino.owner), set, func(ctx context.Context, i int) error {
		d, _, err := r.kids[i].Xattrop(ctx, ino.gfid, xattropAddArray, dict, nil)
		out[i] = d
		return err
	})
	return out
}

// internalXattr names the xattrs a metadata heal leaves alone: the
// changelog, the gfid and what the bricks keep for themselves.
func internalXattr(k string) bool {
	for _, p := range []string{"trusted.afr.", "trusted.gfid", "trusted.glusterfs.", "trusted.ec.", "trusted.pgfid."} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

// healMeta heals a file's metadata (mode, owner, times, xattrs) from a
// brick nobody accuses, under AFR's metadata lock taken with the heal's own
// owner on every brick, then takes back exactly the accusations it started
// from (afr_selfheal_metadata).
func (r *Replicate) healMeta(ctx context.Context, g xdr.GFID) (bool, error) {
	up := r.up()
	if count(up) < r.n() {
		return false, nil
	}
	ino := r.inode(g)
	owner := newOwner()
	hctx := internal(ctx, owner)
	rs := r.fanout(hctx, up, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, g, r.name, fop.LkSet, metaRange, nil))
	})
	locked := succeeded(rs, up)
	defer r.fanout(hctx, locked, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, g, r.name, fop.LkSet, unlockOf(metaRange), nil))
	})
	if count(locked) < r.n() {
		return false, nil // a metadata change is in flight; try again later
	}
	snap, ok := r.readMatrixSlot(ctx, ino, locked, slotMeta)
	if !ok {
		return false, nil
	}
	sources, sinks := r.direction(snap)
	if a := r.opts.Arbiter; a >= 0 && !sinks[a] {
		sources[a] = true // an arbiter holds metadata
	}
	if count(sinks) == 0 {
		return true, nil
	}
	if count(sources) == 0 {
		return false, nil
	}
	src := first(sources)
	st, _, err := r.kids[src].Stat(hctx, g, nil)
	if err != nil {
		return false, err
	}
	want, _, err := r.kids[src].Getxattr(hctx, g, "", nil)
	if err != nil {
		return false, err
	}
	attr := xdr.Iatt{Mode: st.Mode & 07777, UID: st.UID, GID: st.GID,
		Atime: st.Atime, AtimeNsec: st.AtimeNsec, Mtime: st.Mtime, MtimeNsec: st.MtimeNsec}
	valid := uint32(fop.SetAttrMode | fop.SetAttrUID | fop.SetAttrGID | fop.SetAttrAtime | fop.SetAttrMtime)
	for i, s := range sinks {
		if !s {
			continue
		}
		if _, _, _, err := r.kids[i].Setattr(hctx, g, &attr, valid, nil); err != nil {
			return false, err
		}
		have, _, err := r.kids[i].Getxattr(hctx, g, "", nil)
		if err != nil {
			return false, err
		}
		for _, p := range want {
			if internalXattr(p.Key) {
				continue
			}
			if v, ok := have.Get(p.Key); ok && string(v.Bytes) == string(p.Value.Bytes) {
				continue
			}
			if _, err := r.kids[i].Setxattr(hctx, g, xdr.Dict{{Key: p.Key, Value: xdr.Ptr(p.Value.Bytes)}}, 0, nil); err != nil {
				return false, err
			}
		}
		for _, p := range have {
			if _, ok := want.Get(p.Key); !ok && !internalXattr(p.Key) {
				if _, err := r.kids[i].Removexattr(hctx, g, p.Key, nil); err != nil && fop.Errno(err) != syscall.ENODATA {
					return false, err
				}
			}
		}
	}
	for i := range r.kids {
		pending := map[int]counts{}
		for j := range r.kids {
			if sinks[j] && snap.m[i][j] != 0 {
				pending[j] = slotOnly(slotMeta, -snap.m[i][j])
			}
		}
		if len(pending) == 0 {
			continue
		}
		one := make([]bool, r.n())
		one[i] = true
		if ok, _ := r.xattrop(hctx, g, owner, one, counts{}, pending, nil); !ok[i] {
			return false, &fop.OpError{Brick: r.kids[i].Name(), Fop: "XATTROP", GFID: g, Errno: syscall.EIO}
		}
	}
	ino.mu.Lock()
	ino.readable = nil // refresh on the next read
	ino.mu.Unlock()
	r.log.Info("metadata healed", zap.Stringer("gfid", g), zap.String("source", r.kids[src].Name()))
	return true, nil
}
