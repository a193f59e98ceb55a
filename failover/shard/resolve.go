package shard

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Blocks 1.. of a file are files in .shard, found by name and opened
// through the child once; their fds stay open, in a volume-wide LRU, so
// that steady I/O costs no lookup or open (the native client keeps the
// inodes and uses anonymous fds instead).

// block is one block N ≥ 1 of a base file.
type block struct {
	n uint64
	// sem holds a token while the block is being resolved or opened: a
	// network round trip that a hung brick may hold, so waiting for it
	// gives up with the caller's context.
	sem chan struct{}
	// gfid is the block file's gfid once resolved (GUARDED_BY(sem)).
	gfid xdr.GFID
	// fds are its open fds, buffered and O_DIRECT (GUARDED_BY(lru.mu)).
	fds [2]*openBlock
}

func newBlock(n uint64) *block { return &block{n: n, sem: make(chan struct{}, 1)} }

func (b *block) lock(ctx context.Context) error {
	select {
	case b.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *block) unlock() { <-b.sem }

// openBlock is an open fd of a block, in the LRU.
type openBlock struct {
	ino    *inode
	blk    *block
	direct int
	fd     *fop.Fd
	users  int // GUARDED_BY(lru.mu); fops using fd now
	elem   *list.Element
}

// fdLRU keeps the block fds open across the volume, at most limit of
// them; the least recently used idle one is closed (after an fsync if it
// was written since the last one) when another is needed.
type fdLRU struct {
	s     *Shard
	mu    sync.Mutex
	limit int
	order list.List // of *openBlock, most recent first; GUARDED_BY(mu)
	n     int       // GUARDED_BY(mu)
}

func (l *fdLRU) init(s *Shard, limit int) { l.s, l.limit = s, limit }

func (l *fdLRU) lockL()   { l.mu.Lock() }
func (l *fdLRU) unlockL() { l.mu.Unlock() }

// take returns b's open fd of that kind, in use by the caller until it
// calls put, or nil.
func (l *fdLRU) take(b *block, direct int) *openBlock {
	l.lockL()
	defer l.unlockL()
	ob := b.fds[direct]
	if ob == nil {
		return nil
	}
	ob.users++
	l.order.MoveToFront(ob.elem)
	return ob
}

// put ends the caller's use of ob.
func (l *fdLRU) put(ob *openBlock) {
	l.lockL()
	ob.users--
	l.unlockL()
}

// add records a newly opened fd of b, in use by the caller, and closes
// the idle fds beyond the limit.
func (l *fdLRU) add(ino *inode, b *block, direct int, fd *fop.Fd) *openBlock {
	ob := &openBlock{ino: ino, blk: b, direct: direct, fd: fd, users: 1}
	var evict []*openBlock
	l.lockL()
	if old := b.fds[direct]; old != nil {
		// Opened twice (the block was dropped and found again): keep
		// the new one.
		l.unlinkL(old)
		evict = append(evict, old)
	}
	b.fds[direct] = ob
	ob.elem = l.order.PushFront(ob)
	l.n++
	for e := l.order.Back(); e != nil && l.n > l.limit; {
		prev := e.Prev()
		if o := e.Value.(*openBlock); o.users == 0 {
			l.unlinkL(o)
			evict = append(evict, o)
		}
		e = prev
	}
	l.unlockL()
	if len(evict) > 0 {
		go l.s.closeBlocks(evict)
	}
	return ob
}

// unlinkL takes o out of the LRU and its block.
//
// REQUIRES l.mu.
func (l *fdLRU) unlinkL(o *openBlock) {
	if o.elem == nil {
		return
	}
	l.order.Remove(o.elem)
	o.elem = nil
	l.n--
	if o.blk.fds[o.direct] == o {
		o.blk.fds[o.direct] = nil
	}
}

// detach takes the fds of ino's blocks for which keep is false out of
// the LRU and returns them (to close once their users are done).
func (l *fdLRU) detach(ino *inode, keep func(n uint64) bool) []*openBlock {
	var out []*openBlock
	l.lockL()
	for e := l.order.Front(); e != nil; {
		next := e.Next()
		if o := e.Value.(*openBlock); o.ino == ino && (keep == nil || !keep(o.blk.n)) {
			l.unlinkL(o)
			out = append(out, o)
		}
		e = next
	}
	l.unlockL()
	return out
}

// dropAbove forgets ino's blocks past keep (their files may be gone)
// and closes their fds.
//
// REQUIRES ino.mu.
func (l *fdLRU) dropAbove(ino *inode, keep uint64) {
	for n := range ino.blks {
		if n > keep {
			delete(ino.blks, n)
		}
	}
	if obs := l.detach(ino, func(n uint64) bool { return n <= keep }); len(obs) > 0 {
		go l.s.closeBlocks(obs)
	}
}

// closeAll closes every block fd (at unmount).
func (l *fdLRU) closeAll() {
	l.lockL()
	var all []*openBlock
	for e := l.order.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*openBlock))
	}
	for _, o := range all {
		l.unlinkL(o)
	}
	l.unlockL()
	l.s.closeBlocks(all)
}

// closeBlocks releases block fds taken out of the LRU, waiting for their
// users to finish, and fsyncs first those written since the last fsync
// so that a later fsync of the file need not find them.
func (s *Shard) closeBlocks(obs []*openBlock) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, o := range obs {
		for {
			s.lru.lockL()
			busy := o.users > 0
			s.lru.unlockL()
			if !busy || ctx.Err() != nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		o.ino.mu.Lock()
		seq, dirty := o.ino.dirty[o.blk.n]
		o.ino.mu.Unlock()
		if dirty {
			if err := fop.ErrOnly(s.Subvolume.Fsync(ctx, o.fd, false, nil)); err == nil {
				o.ino.mu.Lock()
				if o.ino.dirty[o.blk.n] == seq {
					delete(o.ino.dirty, o.blk.n)
				}
				o.ino.mu.Unlock()
			} else {
				s.log.Warn("fsync of a block before closing its fd failed; the file's next fsync retries it",
					zap.Stringer("gfid", o.ino.gfid), zap.Uint64("block", o.blk.n), zap.Error(err))
			}
		}
		_ = s.Subvolume.Release(ctx, o.fd)
	}
}

// errNoBlock is a block that does not exist (a hole).
var errNoBlock = errors.New("no such block")

func missing(err error) bool {
	en := fop.Errno(err)
	return en == syscall.ENOENT || en == syscall.ESTALE
}

// blockFd returns an open fd of block n of ino (n ≥ 1), in use until
// the caller puts it back. With create, a block that does not exist is
// made; without, errNoBlock says it is a hole.
func (s *Shard) blockFd(ctx context.Context, ino *inode, n uint64, create, direct bool) (*openBlock, error) {
	d := 0
	if direct {
		d = 1
	}
	ino.mu.Lock()
	b := ino.blks[n]
	if b == nil {
		b = newBlock(n)
		ino.blks[n] = b
	}
	ino.mu.Unlock()
	if ob := s.lru.take(b, d); ob != nil {
		return ob, nil
	}
	if err := b.lock(ctx); err != nil {
		return nil, err
	}
	defer b.unlock()
	if ob := s.lru.take(b, d); ob != nil {
		return ob, nil
	}
	flags := uint32(syscall.O_RDWR)
	if direct {
		flags |= syscall.O_DIRECT
	}
	ictx := internal(ctx)
	for attempt := 0; ; attempt++ {
		if b.gfid.IsZero() {
			g, err := s.resolve(ctx, ino, n, create)
			if err != nil {
				return nil, err
			}
			b.gfid = g
		}
		fd, _, err := s.Subvolume.Open(ictx, b.gfid, flags, nil)
		if err == nil {
			return s.lru.add(ino, b, d, fd), nil
		}
		if !missing(err) || attempt > 0 {
			return nil, err
		}
		// Deleted since it was resolved (a truncate elsewhere): find it
		// again, or make it anew.
		b.gfid = xdr.GFID{}
	}
}

// resolve finds block n's gfid by name in .shard, making the block when
// create is set and it does not exist: MKNOD with a fresh gfid, which
// the replica set sends to every brick under its entry lock; a creation
// lost to another client (EEXIST) is looked up, as native does.
func (s *Shard) resolve(ctx context.Context, ino *inode, n uint64, create bool) (xdr.GFID, error) {
	ictx := internal(ctx)
	name := Name(ino.gfid, n)
	st, _, err := s.Subvolume.Lookup(ictx, DotShardGFID, name, xdr.GFID{}, nil)
	if err == nil {
		return st.GFID, nil
	}
	if !missing(err) {
		return xdr.GFID{}, err
	}
	if !create {
		return xdr.GFID{}, errNoBlock
	}
	if err := s.ensureDir(ctx, dirShard); err != nil {
		return xdr.GFID{}, err
	}
	ino.mu.Lock()
	perm := ino.perm
	ino.mu.Unlock()
	st, _, err = s.Subvolume.Mknod(ictx, DotShardGFID, name, syscall.S_IFREG|perm, 0, 0, newGFID(), nil)
	if err == nil {
		return st.GFID, nil
	}
	if fop.Errno(err) != syscall.EEXIST {
		return xdr.GFID{}, err
	}
	st, _, err = s.Subvolume.Lookup(ictx, DotShardGFID, name, xdr.GFID{}, nil)
	if err != nil {
		return xdr.GFID{}, err
	}
	return st.GFID, nil
}

// The layer's two directories.
const (
	dirShard    = 0 // /.shard
	dirRemoveMe = 1 // /.shard/.remove_me
)

// ensureDir makes sure .shard (or .remove_me in it) exists with its
// fixed gfid: a nameless lookup, else MKDIR as root with the gfid, as
// shard_mkdir_internal_dir does; EEXIST means another client won.
func (s *Shard) ensureDir(ctx context.Context, which int) error {
	s.dirMu.Lock()
	ready := s.dirReady[which]
	s.dirMu.Unlock()
	if ready {
		return nil
	}
	if which == dirRemoveMe {
		if err := s.ensureDir(ctx, dirShard); err != nil {
			return err
		}
	}
	parent, name, g := xdr.RootGFID, DotShard, DotShardGFID
	if which == dirRemoveMe {
		parent, name, g = DotShardGFID, RemoveMe, RemoveMeGFID
	}
	ictx := internal(ctx)
	st, _, err := s.Subvolume.Lookup(ictx, parent, name, xdr.GFID{}, nil)
	if missing(err) {
		_, _, err = s.Subvolume.Mkdir(ictx, parent, name, 0o755, 0, g, xdr.Dict{{Key: "glusterfs-internal-fop", Value: xdr.Int(1)}})
		if fop.Errno(err) == syscall.EEXIST {
			st, _, err = s.Subvolume.Lookup(ictx, parent, name, xdr.GFID{}, nil)
		} else if err == nil {
			st.GFID = g
		}
	}
	if err != nil {
		return err
	}
	if st.GFID != g {
		return s.opErr("MKDIR", parent, syscall.EIO, fmt.Errorf("%s has gfid %s, not %s: the volume's shard directories are damaged; repair them on the bricks", name, st.GFID, g))
	}
	s.dirMu.Lock()
	s.dirReady[which] = true
	s.dirMu.Unlock()
	return nil
}
