package shard

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
)

// Fops that change a block (write, fallocate, discard, zerofill) go
// through an fd opened on it once and kept, in a volume-wide LRU: an
// anonymous fd makes the brick open and close the file, resolve its gfid
// and read its gfid xattr around every fop (five syscalls per write,
// measured with strace: 4k random writes at 0.75x of an unsharded
// volume, 1.0x through kept fds). A kept fd could reach a block another
// client deleted (the brick keeps an unlinked file alive while it is
// open): the attributes each of those fops answers show it (nlink 0),
// and the fop is done again on the block as it is now. Reads, fsync and
// seek stay on anonymous fds.

// errUnlinkedBlock is a change that reached a block file no longer in
// .shard: it is redone (ESTALE, which eachPiece retries once).
var errUnlinkedBlock = &fop.OpError{Fop: "WRITE", Errno: syscall.ESTALE, Err: errors.New("the block was deleted by another client")}

// openBlock is a kept fd of a block, in the LRU.
type openBlock struct {
	ino    *inode
	blk    *block
	direct int
	fd     *fop.Fd
	users  int // GUARDED_BY(lru.mu); fops using fd now
	elem   *list.Element
	// drop is set once it left the LRU while in use: the last put
	// releases it (GUARDED_BY(lru.mu)).
	drop bool
}

// fdLRU keeps block fds open across the volume, at most limit of them;
// the least recently used idle one is released when another is needed.
type fdLRU struct {
	s     *Shard
	mu    sync.Mutex
	limit int
	order list.List // of *openBlock, most recent first; GUARDED_BY(mu)
	n     int       // GUARDED_BY(mu)
}

// take returns b's kept fd of that kind, in use by the caller until it
// calls put, or nil.
func (l *fdLRU) take(b *block, direct int) *openBlock {
	l.mu.Lock()
	defer l.mu.Unlock()
	ob := b.open[direct]
	if ob == nil {
		return nil
	}
	ob.users++
	l.order.MoveToFront(ob.elem)
	return ob
}

// put ends the caller's use of ob; the last user of an fd that left the
// LRU releases it.
func (l *fdLRU) put(ob *openBlock) {
	l.mu.Lock()
	ob.users--
	release := ob.users == 0 && ob.drop
	l.mu.Unlock()
	if release {
		go l.s.release(ob)
	}
}

// add keeps a newly opened fd of b, in use by the caller, and releases
// the idle fds beyond the limit.
func (l *fdLRU) add(ino *inode, b *block, direct int, fd *fop.Fd) *openBlock {
	ob := &openBlock{ino: ino, blk: b, direct: direct, fd: fd, users: 1}
	var evict []*openBlock
	l.mu.Lock()
	if old := b.open[direct]; old != nil {
		l.unlinkL(old)
		evict = append(evict, old)
	}
	b.open[direct] = ob
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
	l.mu.Unlock()
	if len(evict) > 0 {
		go l.s.releaseBlocks(evict)
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
	if o.blk.open[o.direct] == o {
		o.blk.open[o.direct] = nil
	}
}

// drop takes the kept fds of ino's blocks for which gone is true (all
// when gone is nil) out of the LRU and releases them once idle.
func (l *fdLRU) drop(ino *inode, gone func(n uint64) bool) {
	var out []*openBlock
	l.mu.Lock()
	for e := l.order.Front(); e != nil; {
		next := e.Next()
		if o := e.Value.(*openBlock); o.ino == ino && (gone == nil || gone(o.blk.n)) {
			l.unlinkL(o)
			out = append(out, o)
		}
		e = next
	}
	l.mu.Unlock()
	if len(out) > 0 {
		go l.s.releaseBlocks(out)
	}
}

// closeAll releases every kept fd (at unmount).
func (l *fdLRU) closeAll() {
	l.mu.Lock()
	var all []*openBlock
	for e := l.order.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*openBlock))
	}
	for _, o := range all {
		l.unlinkL(o)
	}
	l.mu.Unlock()
	l.s.releaseBlocks(all)
}

// releaseBlocks releases kept fds taken out of the LRU: the idle ones
// now, the others at their last put. Nothing needs syncing first: a
// later fsync reaches the block through an anonymous fd (an fsync syncs
// the file, whichever fd).
func (s *Shard) releaseBlocks(obs []*openBlock) {
	for _, o := range obs {
		s.lru.mu.Lock()
		busy := o.users > 0
		o.drop = busy
		s.lru.mu.Unlock()
		if !busy {
			s.release(o)
		}
	}
}

func (s *Shard) release(o *openBlock) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = s.Subvolume.Release(ctx, o.fd)
}

// changeFd returns a kept fd of block n for a fop that changes it, in
// use until the caller puts it back; made says the block was made now.
func (s *Shard) changeFd(ctx context.Context, ino *inode, n uint64, create, direct bool) (*openBlock, bool, error) {
	anon, made, err := s.blockFd(ctx, ino, n, create, direct)
	if err != nil {
		return nil, made, err
	}
	d := 0
	if direct {
		d = 1
	}
	ino.mu.Lock()
	b := ino.blks[n]
	ino.mu.Unlock()
	if b == nil {
		return nil, made, errUnlinkedBlock // forgotten meanwhile: redo
	}
	if ob := s.lru.take(b, d); ob != nil {
		return ob, made, nil
	}
	if err := b.lock(ctx); err != nil {
		return nil, made, err
	}
	defer b.unlock()
	if ob := s.lru.take(b, d); ob != nil {
		return ob, made, nil
	}
	fd, _, err := s.Subvolume.Open(internal(ctx), anon.GFID, anonFlags(direct)|syscall.O_RDWR, nil)
	if err != nil {
		return nil, made, err
	}
	ob := s.lru.add(ino, b, d, fd)
	ino.mu.Lock()
	current := ino.blks[n] == b
	ino.mu.Unlock()
	if !current {
		// Forgotten while it was being opened (a truncate, the file's
		// last close): its drop has run, so this fd leaves now, after
		// this one use.
		s.lru.drop(ino, func(x uint64) bool { return x == n })
	}
	return ob, made, nil
}
