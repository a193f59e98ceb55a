package shard

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Options are features/shard's volfile options.
type Options struct {
	// BlockSize is the block size new files get (shard-block-size);
	// existing files keep the one recorded on them.
	BlockSize uint64
	// DeletionRate is how many blocks the background deletion removes
	// at once (shard-deletion-rate).
	DeletionRate int
	// OpenBlocks bounds the block fds kept open for changes across the
	// volume (see openfd.go); 0 means 1024.
	OpenBlocks int
	// DeleteInterval is how often the background deletion looks for
	// markers that other clients left; 0 means 600 s, as native.
	DeleteInterval time.Duration
	// SubdirMount: the mount's root is a directory of the volume, which
	// the bricks map the root gfid to. .shard and .remove_me are found
	// by their fixed gfids but never made: made there, they would sit in
	// the subdirectory with the gfids of the volume's own.
	SubdirMount bool
}

func (o Options) withDefaults() Options {
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.DeletionRate <= 0 {
		o.DeletionRate = 100
	}
	if o.OpenBlocks <= 0 {
		o.OpenBlocks = 1024
	}
	if o.DeleteInterval <= 0 {
		o.DeleteInterval = 600 * time.Second
	}
	return o
}

// Shard is the features/shard layer over one subvolume. Fops on files
// without a block-size xattr (directories, symlinks, files created while
// sharding was off) pass through unchanged; the table in
// TestShardIntercepts lists which fops the layer takes over.
type Shard struct {
	fop.Subvolume // the child; fops not defined here pass through
	name          string
	log           *zap.Logger

	optMu sync.Mutex
	opts  Options // GUARDED_BY(optMu)

	mu     sync.Mutex
	inodes map[xdr.GFID]*inode // GUARDED_BY(mu)

	dirMu    sync.Mutex
	dirReady [2]bool // GUARDED_BY(dirMu); .shard, .remove_me known to exist

	// epoch counts the changes of any file's size this client made; a
	// reply carries a size newer than the cache only if the request went
	// out after the inode's last change (see learn).
	epoch atomic.Uint64
	// backlog is the .remove_me markers found at the last look, less
	// those deleted since.
	backlog atomic.Int64

	lru fdLRU

	kick      chan struct{} // wakes the background deletion
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	started   sync.Once
}

// New makes the shard layer named name (its lock domain) over kid.
func New(name string, kid fop.Subvolume, opts Options, log *zap.Logger) *Shard {
	opts = opts.withDefaults()
	s := &Shard{
		Subvolume: kid, name: name, log: log.With(zap.String("subvol", name)), opts: opts,
		inodes: map[xdr.GFID]*inode{},
		kick:   make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.lru.s, s.lru.limit = s, opts.OpenBlocks
	return s
}

// Name is the translator's name, also the domain of its locks.
func (s *Shard) Name() string { return s.name }

// Options returns the options in force.
func (s *Shard) Options() Options {
	s.optMu.Lock()
	defer s.optMu.Unlock()
	return s.opts
}

// Reconfigure applies new options: the block size for new files and
// the deletion rate change live, as a native client's do.
func (s *Shard) Reconfigure(o Options) []string {
	o = o.withDefaults()
	s.optMu.Lock()
	defer s.optMu.Unlock()
	var changes []string
	if o.BlockSize != s.opts.BlockSize {
		changes = append(changes, "shard-block-size")
	}
	if o.DeletionRate != s.opts.DeletionRate {
		changes = append(changes, "shard-deletion-rate")
	}
	s.opts.BlockSize, s.opts.DeletionRate = o.BlockSize, o.DeletionRate
	return changes
}

// Close stops the background deletion and releases the block fds.
func (s *Shard) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.started.Do(func() { close(s.done) })
		<-s.done
		s.lru.closeAll()
	})
	return nil
}

// inode is what the layer knows of one base file.
type inode struct {
	gfid xdr.GFID

	mu      sync.Mutex
	known   bool              // GUARDED_BY(mu); whether sharded is known
	sharded bool              // GUARDED_BY(mu)
	bad     error             // GUARDED_BY(mu); the block size xattr is unusable
	bs      uint64            // GUARDED_BY(mu)
	size    int64             // GUARDED_BY(mu); logical size from the file-size xattr
	blocks  int64             // GUARDED_BY(mu); 512-byte units from the file-size xattr
	perm    uint32            // GUARDED_BY(mu); permission bits new blocks get
	fds     int               // GUARDED_BY(mu); base fds open through the layer
	changed uint64            // GUARDED_BY(mu); the epoch of this client's last change of the size
	blks    map[uint64]*block // GUARDED_BY(mu); blocks resolved
	dirty   map[uint64]uint64 // GUARDED_BY(mu); blocks written since the last fsync, by write sequence
	// orphans are blocks this client made for fops that failed: past the
	// size, nothing would ever remove them (GUARDED_BY(mu)).
	orphans map[uint64]bool
	seq     uint64     // GUARDED_BY(mu)
	pend    []*sizeReq // GUARDED_BY(mu); size updates waiting for the one in flight
	busy    bool       // GUARDED_BY(mu); a size update is in flight

	// sizeMu serialises this client's changes of the file-size xattr
	// (the batched updates, truncate), so their replies apply in order.
	sizeMu sync.Mutex
	// io is held shared by the fops that change data (write, fallocate,
	// discard, zerofill) from their first piece to their size update,
	// and exclusively by a truncate: a block a truncate removes is never
	// written by a fop still in flight, nor the size grown back after.
	io sync.RWMutex
}

// inode returns the layer's state for gfid, making it if needed.
func (s *Shard) inode(g xdr.GFID) *inode {
	s.mu.Lock()
	defer s.mu.Unlock()
	ino := s.inodes[g]
	if ino == nil {
		if len(s.inodes) >= maxInodes {
			s.prune()
		}
		ino = &inode{gfid: g, blks: map[uint64]*block{}, dirty: map[uint64]uint64{}, orphans: map[uint64]bool{}}
		s.inodes[g] = ino
	}
	return ino
}

// maxInodes bounds the inode table; the layer is not told when the
// kernel forgets an inode, so idle ones are pruned when it fills.
const maxInodes = 65536

// prune drops inodes nothing holds: no open fd, no block fd, nothing
// to fsync.
//
// REQUIRES s.mu.
func (s *Shard) prune() {
	for g, ino := range s.inodes {
		ino.mu.Lock()
		idle := ino.fds == 0 && len(ino.dirty) == 0 && !ino.busy && len(ino.orphans) == 0
		ino.mu.Unlock()
		if idle {
			delete(s.inodes, g)
			s.lru.drop(ino, nil)
		}
	}
}

// learn records what a reply's xdata says of a regular file: whether it
// is sharded, its block size and its logical size. It returns whether
// the file is sharded. asked says the request named the block size, so
// that its absence means the file is not sharded; sent is the epoch when
// the request went out: a size from before this client's last change of
// it is older than the cache and ignored.
func (s *Shard) learn(ino *inode, st *xdr.Iatt, rx xdr.Dict, asked bool, sent uint64) bool {
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return false
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if b, ok := rx.Bytes(KeyBlockSize); ok {
		if bs, err := ParseBlockSize(b); err == nil {
			ino.known, ino.sharded, ino.bs, ino.bad = true, true, bs, nil
		} else {
			if ino.bad == nil {
				s.log.Error("a file's shard block size is invalid; its data cannot be placed, so its I/O fails with EIO",
					zap.Stringer("gfid", ino.gfid), zap.Error(err))
			}
			ino.known, ino.sharded, ino.bad = true, true, fmt.Errorf("the file's %s is unusable: %w", KeyBlockSize, err)
		}
	} else if asked && !ino.known {
		ino.known, ino.sharded = true, false
	}
	ino.perm = st.Mode & 07777
	if !ino.sharded {
		return false
	}
	if b, ok := rx.Bytes(KeyFileSize); ok && ino.changed <= sent && !ino.busy {
		if sz, err := ParseSize(b); err == nil {
			if sz.Size < ino.size && ino.bs > 0 {
				// Shrunk by another client: the blocks past it may be
				// gone.
				s.dropAbove(ino, Blocks(sz.Size, ino.bs)-1)
			}
			ino.size, ino.blocks = sz.Size, sz.Blocks
		}
	}
	return true
}

// patch puts the logical size and block count in st.
//
// REQUIRES ino.mu.
func patchLocked(ino *inode, st *xdr.Iatt) {
	st.Size = clamp(ino.size)
	st.Blocks = clamp(ino.blocks)
}

func (s *Shard) patch(ino *inode, st *xdr.Iatt) {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	if ino.sharded {
		patchLocked(ino, st)
	}
}

// sizeKeys asks a lookup or stat for the two xattrs.
var sizeKeys = xdr.Dict{{Key: KeyFileSize, Value: xdr.Uint(32)}, {Key: KeyBlockSize, Value: xdr.Uint(0)}}

func withSizeKeys(xd xdr.Dict) xdr.Dict {
	return append(append(xdr.Dict{}, xd...), sizeKeys...)
}

// state returns ino with its sharding known, asking the child (through
// f when given) if it is not.
func (s *Shard) state(ctx context.Context, g xdr.GFID, f *fop.Fd) (*inode, bool, error) {
	ino := s.inode(g)
	ino.mu.Lock()
	known, sharded, bad := ino.known, ino.sharded, ino.bad
	ino.mu.Unlock()
	if bad != nil {
		return nil, false, s.opErr("SHARD", g, syscall.EIO, bad)
	}
	if known {
		return ino, sharded, nil
	}
	var st xdr.Iatt
	var rx xdr.Dict
	var err error
	sent := s.epoch.Load()
	if f != nil {
		st, rx, err = s.Subvolume.Fstat(ctx, f, sizeKeys)
	} else {
		st, rx, err = s.Subvolume.Stat(ctx, g, sizeKeys)
	}
	if err != nil {
		return nil, false, err
	}
	sharded = s.learn(ino, &st, rx, true, sent)
	ino.mu.Lock()
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		ino.known = true
	}
	bad = ino.bad
	ino.mu.Unlock()
	if bad != nil {
		return nil, false, s.opErr("SHARD", g, syscall.EIO, bad)
	}
	return ino, sharded, nil
}

// internal is the context of the layer's own fops: as root (shard's
// SHARD_SET_ROOT_FS_ID), keeping the caller's pid.
func internal(ctx context.Context) context.Context { return fop.AsInternal(ctx) }

// owned is internal with a lock owner of its own, for the layer's
// inodelks and entrylks (shard uses a fresh frame for each).
func owned(ctx context.Context) context.Context { return fop.WithNewLkOwner(ctx) }

func newGFID() xdr.GFID {
	var g xdr.GFID
	_, _ = rand.Read(g[:])
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

func (s *Shard) opErr(op string, g xdr.GFID, en syscall.Errno, err error) error {
	return &fop.OpError{Brick: s.name, Fop: op, GFID: g, Errno: en, Err: err}
}

// Stats returns the layer's figures for `brickfs status` and the metrics.
func (s *Shard) Stats() fop.ShardStats {
	st := fop.ShardStats{BlockSize: s.Options().BlockSize, RemoveBacklog: s.backlog.Load()}
	s.mu.Lock()
	st.Inodes = len(s.inodes)
	s.mu.Unlock()
	s.lru.mu.Lock()
	st.OpenBlocks = s.lru.n
	s.lru.mu.Unlock()
	return st
}
