package shard

import (
	"context"
	"errors"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Removing a sharded file (reference §4.11, §4.12): under the layer's
// inode lock on the base file and its entry lock on the marker's name, a
// marker /.shard/.remove_me/<gfid> records the block size and size; the
// base file goes; the blocks and the marker are deleted in the
// background, by this client or any other, never while the file is
// still open somewhere.

// Unlink removes a name; the last name of a sharded file leaves a marker
// and its blocks are deleted in the background.
func (s *Shard) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	if err := s.hidden("UNLINK", parent, name); err != nil {
		return nil, err
	}
	var rx xdr.Dict
	marked, err := s.removing(ctx, parent, name, func() error {
		var err error
		rx, err = s.Subvolume.Unlink(ctx, parent, name, xd)
		return err
	})
	if err != nil {
		return nil, err
	}
	if marked {
		s.kickDeletion()
	}
	return rx, nil
}

// Rename renames; a sharded file it replaces is removed as Unlink
// removes it.
func (s *Shard) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("RENAME", oldParent, oldName); err != nil {
		return xdr.Iatt{}, nil, err
	}
	if err := s.hidden("RENAME", newParent, newName); err != nil {
		return xdr.Iatt{}, nil, err
	}
	var st xdr.Iatt
	var rx xdr.Dict
	marked, err := s.removing(ctx, newParent, newName, func() error {
		var err error
		st, rx, err = s.Subvolume.Rename(ctx, oldParent, oldName, newParent, newName, xd)
		return err
	})
	if err != nil {
		return st, nil, err
	}
	s.patchKnown(ctx, st.GFID, nil, &st)
	if marked {
		s.kickDeletion()
	}
	return st, rx, nil
}

// removing runs op, which removes the name parent/name, with the
// deletion protocol when that name is the last one of a sharded file;
// it says whether a marker was left.
func (s *Shard) removing(ctx context.Context, parent xdr.GFID, name string, op func() error) (bool, error) {
	sent := s.epoch.Load()
	st, rx, err := s.Subvolume.Lookup(ctx, parent, name, xdr.GFID{}, sizeKeys)
	if err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return false, op()
	}
	ino := s.inode(st.GFID)
	if !s.learn(ino, &st, rx, true, sent) {
		return false, op()
	}
	if err := s.ensureDir(ctx, dirRemoveMe); err != nil {
		return false, err
	}
	unlock, err := s.lockBase(ctx, st.GFID)
	if err != nil {
		return false, err
	}
	defer unlock()
	// Fresh under the lock: the size to record, and whether other names
	// keep the file.
	sent = s.epoch.Load()
	st, rx, err = s.Subvolume.Lookup(ctx, parent, name, xdr.GFID{}, sizeKeys)
	if err != nil {
		return false, op()
	}
	if st.GFID != ino.gfid || !s.learn(ino, &st, rx, true, sent) || st.Nlink > 1 {
		return false, op()
	}
	ino.mu.Lock()
	bs, size := ino.bs, ino.size
	// Blocks this client knows past the size (made for failed writes)
	// go with the others: the marker's size only tells the deletion how
	// far to look.
	for b := range ino.orphans {
		size = max(size, int64(b+1)*int64(bs))
	}
	ino.mu.Unlock()
	mctx := owned(ctx)
	marker := ino.gfid.String()
	if _, err := s.Subvolume.Entrylk(mctx, RemoveMeGFID, marker, s.name, fop.EntrylkLock, fop.LkWrite, nil); err != nil {
		return false, err
	}
	defer func() {
		if _, err := s.Subvolume.Entrylk(context.WithoutCancel(mctx), RemoveMeGFID, marker, s.name, fop.EntrylkUnlock, fop.LkWrite, nil); err != nil {
			s.log.Warn("unlocking a deletion marker failed; the bricks release the lock when this client disconnects",
				zap.String("marker", marker), zap.Error(err))
		}
	}()
	if err := s.mark(ctx, ino.gfid, bs, size); err != nil {
		return false, err
	}
	if err := op(); err != nil {
		// The file stays; its marker is dropped by the deletion, which
		// finds the base file still there.
		return true, err
	}
	return true, nil
}

// mark creates the marker of base: mode 0, the block size and the size
// in its xattrs; an existing one (a previous attempt) gets the size with
// GET_AND_SET (reference §2.5).
func (s *Shard) mark(ctx context.Context, base xdr.GFID, bs uint64, size int64) error {
	ictx := internal(ctx)
	fsz := Size{Size: size}.Bytes()
	xd := xdr.Dict{
		{Key: KeyBlockSize, Value: xdr.Ptr(EncodeBlockSize(bs))},
		{Key: KeyFileSize, Value: xdr.Ptr(fsz)},
		{Key: "glusterfs-internal-fop", Value: xdr.Int(1)},
	}
	_, _, err := s.Subvolume.Mknod(ictx, RemoveMeGFID, base.String(), syscall.S_IFREG, 0, 0o644, newGFID(), xd)
	if fop.Errno(err) != syscall.EEXIST {
		return err
	}
	st, _, err := s.Subvolume.Lookup(ictx, RemoveMeGFID, base.String(), xdr.GFID{}, nil)
	if err != nil {
		return err
	}
	_, _, err = s.Subvolume.Xattrop(ictx, st.GFID, fop.XattropGetAndSet, xdr.Dict{{Key: KeyFileSize, Value: xdr.Ptr(fsz)}}, nil)
	return err
}

// startDeletion starts the background deletion once (at the first
// lookup of a regular file, as native).
func (s *Shard) startDeletion() {
	s.started.Do(func() { go s.deleter() })
}

// kickDeletion has the background deletion run now.
func (s *Shard) kickDeletion() {
	s.startDeletion()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// deleter runs the deletion at start, when kicked, and every
// DeleteInterval, until Close.
func (s *Shard) deleter() {
	defer close(s.done)
	t := time.NewTicker(s.Options().DeleteInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-s.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if err := s.deleteMarked(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("deleting the blocks of removed files failed; retrying later", zap.Error(err))
		}
		cancel()
		select {
		case <-s.stop:
			return
		case <-s.kick:
		case <-t.C:
		}
	}
}

// deleteMarked deletes the blocks of every file marked in .remove_me.
func (s *Shard) deleteMarked(ctx context.Context) error {
	ictx := internal(ctx)
	if _, _, err := s.Subvolume.Lookup(ictx, DotShardGFID, RemoveMe, xdr.GFID{}, nil); err != nil {
		if missing(err) {
			return nil
		}
		return err
	}
	f, _, err := s.Subvolume.Opendir(ictx, RemoveMeGFID, nil)
	if err != nil {
		return err
	}
	defer func() { _ = s.Subvolume.Release(context.WithoutCancel(ictx), f) }()
	var names []string
	for off := uint64(0); ; {
		ents, eof, _, err := s.Subvolume.Readdirp(ictx, f, off, 128<<10, nil)
		if err != nil {
			return err
		}
		for _, e := range ents {
			off = e.Off
			if e.Name != "." && e.Name != ".." {
				names = append(names, e.Name)
			}
		}
		if eof || len(ents) == 0 {
			break
		}
	}
	var errs []error
	s.backlog.Store(int64(len(names)))
	for _, name := range names {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		gone, err := s.deleteOne(ctx, name)
		if err != nil {
			errs = append(errs, err)
		}
		if gone {
			s.backlog.Add(-1)
		}
	}
	return errors.Join(errs...)
}

// deleteOne deletes the blocks of the file whose marker is name, unless
// the file is still open somewhere or exists again, then the marker
// (§4.11 steps 2-7).
func (s *Shard) deleteOne(ctx context.Context, name string) (gone bool, err error) {
	base, perr := xdr.ParseGFID(name)
	if perr != nil {
		s.log.Warn("a file in .shard/.remove_me is not a marker; leaving it", zap.String("name", name))
		return false, nil
	}
	ictx := internal(ctx)
	unlinked := xdr.Dict{{Key: "unlinked-lookup", Value: xdr.Uint(1)}}
	if st, _, err := s.Subvolume.Lookup(ictx, xdr.GFID{}, "", base, unlinked); err == nil && st.Nlink == 0 {
		return false, nil // removed but still open somewhere: its blocks are in use
	}
	mctx := owned(ctx)
	if _, err := s.Subvolume.Entrylk(mctx, RemoveMeGFID, name, s.name, fop.EntrylkLockNB, fop.LkWrite, nil); err != nil {
		if fop.Errno(err) == syscall.EAGAIN {
			return false, nil // another client deletes them
		}
		return false, err
	}
	defer func() {
		_, _ = s.Subvolume.Entrylk(context.WithoutCancel(mctx), RemoveMeGFID, name, s.name, fop.EntrylkUnlock, fop.LkWrite, nil)
	}()
	_, rx, err := s.Subvolume.Lookup(ictx, RemoveMeGFID, name, xdr.GFID{}, sizeKeys)
	if missing(err) {
		return true, nil // deleted meanwhile
	}
	if err != nil {
		return false, err
	}
	bsb, ok1 := rx.Bytes(KeyBlockSize)
	fsb, ok2 := rx.Bytes(KeyFileSize)
	bs, err1 := ParseBlockSize(bsb)
	sz, err2 := ParseSize(fsb)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		s.log.Warn("a deletion marker lacks a valid block size or size; leaving it for a person to look at",
			zap.String("marker", name))
		return false, nil
	}
	if _, _, err := s.Subvolume.Lookup(ictx, xdr.GFID{}, "", base, nil); err == nil {
		// The base file exists (its removal failed after the marker
		// was made; the marker's lock rules out one in progress): only
		// the marker goes. Native leaves it until the file is removed.
		err := fop.ErrOnly(s.Subvolume.Unlink(ictx, RemoveMeGFID, name, nil))
		return err == nil, err
	} else if !missing(err) {
		// Not known to be gone (a brick down, a timeout): its blocks
		// stay until the next pass can tell.
		return false, err
	}
	last := Blocks(sz.Size, bs) - 1
	rate := uint64(s.Options().DeletionRate)
	for from := uint64(1); from <= last; from += rate {
		var batch []uint64
		for b := from; b <= last && b < from+rate; b++ {
			batch = append(batch, b)
		}
		if _, err := s.unlinkBlocks(ctx, base, batch, false); err != nil {
			return false, err
		}
	}
	s.mu.Lock()
	if ino := s.inodes[base]; ino != nil {
		delete(s.inodes, base)
		s.lru.drop(ino, nil)
	}
	s.mu.Unlock()
	if err := fop.ErrOnly(s.Subvolume.Unlink(ictx, RemoveMeGFID, name, nil)); err != nil && !missing(err) {
		return false, err
	}
	s.log.Debug("deleted the blocks of a removed file", zap.Stringer("gfid", base), zap.Uint64("blocks", last))
	return true, nil
}
