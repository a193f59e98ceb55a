package shard

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Blocks 1.. of a file are files in .shard, found by name once and then
// read through anonymous fds (the brick opens them by gfid for each
// fop), as native's shard does: a block another client deleted answers
// ESTALE, never old data. Changes go through kept fds (openfd.go).

// block is one block N ≥ 1 of a base file.
type block struct {
	n uint64
	// sem holds a token while the block is being resolved: a network
	// round trip that a hung brick may hold, so waiting for it gives up
	// with the caller's context.
	sem chan struct{}
	// fds are its anonymous fds, buffered and O_DIRECT, once resolved
	// (GUARDED_BY(sem)).
	fds [2]*fop.Fd
	// open are its kept fds for changes (GUARDED_BY(lru.mu)).
	open [2]*openBlock
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

// maxBlocks bounds the blocks a file keeps resolved; past it the table
// starts over (each block is looked up again when next used).
const maxBlocks = 16384

// errNoBlock is a block that does not exist (a hole).
var errNoBlock = errors.New("no such block")

func missing(err error) bool {
	en := fop.Errno(err)
	return en == syscall.ENOENT || en == syscall.ESTALE
}

// anonFlags are the flags of a block's anonymous fd: O_DIRECT or
// O_RDWR, as GlusterFS's shard sends them (the brick opens O_RDWR and
// keeps only the O_DIRECT bit).
func anonFlags(direct bool) uint32 {
	if direct {
		return syscall.O_DIRECT
	}
	return syscall.O_RDWR
}

// blockFd returns the anonymous fd of block n of ino (n ≥ 1). With
// create, a block that does not exist is made; without, errNoBlock says
// it is a hole.
// made says the block was made now.
func (s *Shard) blockFd(ctx context.Context, ino *inode, n uint64, create, direct bool) (fd *fop.Fd, made bool, err error) {
	d := 0
	if direct {
		d = 1
	}
	ino.mu.Lock()
	b := ino.blks[n]
	if b == nil {
		if len(ino.blks) >= maxBlocks {
			ino.blks = map[uint64]*block{}
			s.lru.drop(ino, nil)
		}
		b = newBlock(n)
		ino.blks[n] = b
	}
	ino.mu.Unlock()
	if err := b.lock(ctx); err != nil {
		return nil, false, err
	}
	defer b.unlock()
	if b.fds[d] != nil {
		return b.fds[d], false, nil
	}
	g, made, err := s.resolve(ctx, ino, n, create)
	if err != nil {
		if errors.Is(err, errNoBlock) {
			s.forget(ino, n) // a hole: nothing to keep
		}
		return nil, false, err
	}
	b.fds[0], b.fds[1] = fop.AnonFd(g, anonFlags(false)), fop.AnonFd(g, anonFlags(true))
	return b.fds[d], made, nil
}

// forget drops what the layer knows of block n (it was found gone).
func (s *Shard) forget(ino *inode, n uint64) {
	ino.mu.Lock()
	delete(ino.blks, n)
	ino.mu.Unlock()
	s.lru.drop(ino, func(b uint64) bool { return b == n })
}

// dropAbove forgets ino's blocks past keep (their files may be gone).
//
// REQUIRES ino.mu.
func (s *Shard) dropAbove(ino *inode, keep uint64) {
	for n := range ino.blks {
		if n > keep {
			delete(ino.blks, n)
		}
	}
	s.lru.drop(ino, func(b uint64) bool { return b > keep })
}

// resolve finds block n's gfid by name in .shard, making the block when
// create is set and it does not exist: MKNOD with a fresh gfid, which
// the replica set sends to every brick under its entry lock; a creation
// lost to another client (EEXIST) is looked up, as native does.
func (s *Shard) resolve(ctx context.Context, ino *inode, n uint64, create bool) (xdr.GFID, bool, error) {
	ictx := internal(ctx)
	name := Name(ino.gfid, n)
	st, _, err := s.Subvolume.Lookup(ictx, DotShardGFID, name, xdr.GFID{}, nil)
	if err == nil {
		return st.GFID, false, nil
	}
	if !missing(err) {
		return xdr.GFID{}, false, err
	}
	if !create {
		return xdr.GFID{}, false, errNoBlock
	}
	if err := s.ensureDir(ctx, dirShard); err != nil {
		return xdr.GFID{}, false, err
	}
	ino.mu.Lock()
	perm := ino.perm
	ino.mu.Unlock()
	st, _, err = s.Subvolume.Mknod(ictx, DotShardGFID, name, syscall.S_IFREG|perm, 0, 0, newGFID(), nil)
	if err == nil {
		return st.GFID, true, nil
	}
	if fop.Errno(err) != syscall.EEXIST {
		return xdr.GFID{}, false, err
	}
	st, _, err = s.Subvolume.Lookup(ictx, DotShardGFID, name, xdr.GFID{}, nil)
	if err != nil {
		return xdr.GFID{}, false, err
	}
	return st.GFID, true, nil
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
	// By gfid first: the directories have fixed gfids, and a mount of a
	// subdirectory sees the volume's root elsewhere.
	if st, _, err := s.Subvolume.Lookup(ictx, xdr.GFID{}, "", g, nil); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		s.dirMu.Lock()
		s.dirReady[which] = true
		s.dirMu.Unlock()
		return nil
	}
	if s.Options().SubdirMount {
		return s.opErr("MKDIR", parent, syscall.EIO, fmt.Errorf("the volume has no %s yet, and a mount of a subdirectory cannot make it (it would land inside the subdirectory); mount the volume's root once, or write the first sharded file there", name))
	}
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
