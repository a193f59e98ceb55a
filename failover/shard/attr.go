package shard

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// The namespace and attributes: sharded files show their logical size
// and block count; .shard and the layer's xattrs are hidden, as native
// hides them (reference §4.14).

const keyPrefix = "trusted.glusterfs.shard."

var errHidden = errors.New("the shard translator's own directory is not accessible")

// hidden refuses entry fops on /.shard or inside it (EPERM, as
// SHARD_ENTRY_FOP_CHECK answers).
func (s *Shard) hidden(op string, parent xdr.GFID, name string) error {
	if parent == DotShardGFID || parent == RemoveMeGFID || (parent == xdr.RootGFID && name == DotShard) {
		return s.opErr(op, parent, syscall.EPERM, errHidden)
	}
	return nil
}

func (s *Shard) hiddenGFID(op string, g xdr.GFID) error {
	if g == DotShardGFID || g == RemoveMeGFID {
		return s.opErr(op, g, syscall.EPERM, errHidden)
	}
	return nil
}

// Lookup resolves a name, with the logical size of a sharded file. The
// first regular file seen after mount starts the background deletion,
// as native's first lookup does.
func (s *Shard) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("LOOKUP", parent, name); err != nil {
		return xdr.Iatt{}, nil, err
	}
	if name == "" {
		if err := s.hiddenGFID("LOOKUP", gfid); err != nil {
			return xdr.Iatt{}, nil, err
		}
	}
	sent := s.epoch.Load()
	st, rx, err := s.Subvolume.Lookup(ctx, parent, name, gfid, withSizeKeys(xd))
	if err != nil {
		return st, rx, err
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		ino := s.inode(st.GFID)
		if s.learn(ino, &st, rx, true, sent) {
			s.patch(ino, &st)
		}
		s.startDeletion()
	}
	return st, rx, nil
}

// Stat returns the attributes, with the logical size of a sharded file.
func (s *Shard) Stat(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hiddenGFID("STAT", gfid); err != nil {
		return xdr.Iatt{}, nil, err
	}
	sent := s.epoch.Load()
	st, rx, err := s.Subvolume.Stat(ctx, gfid, withSizeKeys(xd))
	if err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		ino := s.inode(st.GFID)
		if s.learn(ino, &st, rx, true, sent) {
			s.patch(ino, &st)
		}
	}
	return st, rx, err
}

// Fstat is Stat through an open file.
func (s *Shard) Fstat(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	sent := s.epoch.Load()
	st, rx, err := s.Subvolume.Fstat(ctx, f, withSizeKeys(xd))
	if err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		ino := s.inode(f.GFID)
		if s.learn(ino, &st, rx, true, sent) {
			s.patch(ino, &st)
		}
	}
	return st, rx, err
}

// Readdirp lists a directory with each sharded file's logical size;
// .shard is left out of the root's listing.
func (s *Shard) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) ([]fop.Dirent, bool, xdr.Dict, error) {
	if err := s.hiddenGFID("READDIRP", f.GFID); err != nil {
		return nil, false, nil, err
	}
	for {
		sent := s.epoch.Load()
		ents, eof, rx, err := s.Subvolume.Readdirp(ctx, f, offset, size, withSizeKeys(xd))
		if err != nil {
			return ents, eof, rx, err
		}
		out := ents[:0]
		var skipped *fop.Dirent
		for i := range ents {
			e := &ents[i]
			if f.GFID == xdr.RootGFID && e.Name == DotShard {
				skipped = e
				continue
			}
			if e.Stat.Mode&syscall.S_IFMT == syscall.S_IFREG && !e.Stat.GFID.IsZero() && !e.Stale {
				ino := s.inode(e.Stat.GFID)
				if s.learn(ino, &e.Stat, e.Xdata, true, sent) {
					s.patch(ino, &e.Stat)
				}
			}
			out = append(out, *e)
		}
		if len(out) == 0 && skipped != nil && !eof {
			// .shard was all this batch held: read on past it.
			offset = skipped.Off
			continue
		}
		return out, eof, rx, nil
	}
}

// Setattr changes the base file only and answers the logical size.
func (s *Shard) Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := s.hiddenGFID("SETATTR", gfid); err != nil {
		return pre, post, nil, err
	}
	pre, post, rx, err = s.Subvolume.Setattr(ctx, gfid, attr, valid, xd)
	if err == nil {
		s.patchKnown(ctx, gfid, nil, &pre, &post)
	}
	return pre, post, rx, err
}

// Fsetattr is Setattr through an open file.
func (s *Shard) Fsetattr(ctx context.Context, f *fop.Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	pre, post, rx, err = s.Subvolume.Fsetattr(ctx, f, attr, valid, xd)
	if err == nil {
		s.patchKnown(ctx, f.GFID, f, &pre, &post)
	}
	return pre, post, rx, err
}

// patchKnown puts the logical size of gfid in the attributes of a
// regular file, learning first whether the file is sharded if the layer
// does not know (the fop's reply carries no file size).
func (s *Shard) patchKnown(ctx context.Context, g xdr.GFID, f *fop.Fd, sts ...*xdr.Iatt) {
	if len(sts) == 0 || sts[0].Mode&syscall.S_IFMT != syscall.S_IFREG {
		return
	}
	ino, sharded, err := s.state(ctx, g, f)
	if err != nil || !sharded {
		return
	}
	for _, st := range sts {
		s.patch(ino, st)
	}
}

// creationXdata is what every new regular file (and mknod) carries: the
// block size new files get and a zero file size (reference §3.1).
func (s *Shard) creationXdata(xd xdr.Dict) (xdr.Dict, uint64) {
	bs := s.Options().BlockSize
	return append(append(xdr.Dict{}, xd...),
		xdr.Pair{Key: KeyBlockSize, Value: xdr.Ptr(EncodeBlockSize(bs))},
		xdr.Pair{Key: KeyFileSize, Value: xdr.Ptr(make([]byte, 32))}), bs
}

// born records a file the layer just created as sharded and empty.
func (s *Shard) born(st xdr.Iatt, bs uint64) {
	ino := s.inode(st.GFID)
	ino.mu.Lock()
	ino.known, ino.sharded, ino.bs, ino.size, ino.blocks = true, true, bs, 0, 0
	ino.perm = st.Mode & 07777
	ino.mu.Unlock()
}

// Create creates a sharded file. O_APPEND is not sent: past block 0 the
// offset is the layer's to place, and the kernel gives the end of file
// as the offset of every append (reference trap 8).
func (s *Shard) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("CREATE", parent, name); err != nil {
		return nil, xdr.Iatt{}, nil, err
	}
	cxd, bs := s.creationXdata(xd)
	f, st, rx, err := s.Subvolume.Create(ctx, parent, name, flags&^syscall.O_APPEND, mode, umask, gfid, cxd)
	if err != nil {
		return f, st, rx, err
	}
	s.born(st, bs)
	ino := s.inode(st.GFID)
	ino.mu.Lock()
	ino.fds++
	ino.mu.Unlock()
	st.Size, st.Blocks = 0, 0
	return f, st, rx, nil
}

// Mknod makes a node; regular files become sharded ones (native sets
// the xattrs on every mknod).
func (s *Shard) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("MKNOD", parent, name); err != nil {
		return xdr.Iatt{}, nil, err
	}
	cxd, bs := s.creationXdata(xd)
	st, rx, err := s.Subvolume.Mknod(ctx, parent, name, mode, rdev, umask, gfid, cxd)
	if err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		s.born(st, bs)
		st.Size, st.Blocks = 0, 0
	}
	return st, rx, err
}

// Mkdir refuses .shard.
func (s *Shard) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("MKDIR", parent, name); err != nil {
		return xdr.Iatt{}, nil, err
	}
	return s.Subvolume.Mkdir(ctx, parent, name, mode, umask, gfid, xd)
}

// Symlink refuses .shard.
func (s *Shard) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("SYMLINK", parent, name); err != nil {
		return xdr.Iatt{}, nil, err
	}
	return s.Subvolume.Symlink(ctx, parent, name, target, umask, gfid, xd)
}

// Link adds a name; the blocks are shared through the base gfid. The
// reply carries the logical size.
func (s *Shard) Link(ctx context.Context, gfid, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := s.hidden("LINK", newParent, newName); err != nil {
		return xdr.Iatt{}, nil, err
	}
	if err := s.hiddenGFID("LINK", gfid); err != nil {
		return xdr.Iatt{}, nil, err
	}
	st, rx, err := s.Subvolume.Link(ctx, gfid, newParent, newName, xd)
	if err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		s.patchKnown(ctx, gfid, nil, &st)
	}
	return st, rx, err
}

// Rmdir refuses .shard.
func (s *Shard) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	if err := s.hidden("RMDIR", parent, name); err != nil {
		return nil, err
	}
	return s.Subvolume.Rmdir(ctx, parent, name, flags, xd)
}

// Opendir refuses .shard.
func (s *Shard) Opendir(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	if err := s.hiddenGFID("OPENDIR", gfid); err != nil {
		return nil, nil, err
	}
	return s.Subvolume.Opendir(ctx, gfid, xd)
}

// Open opens a file. On a sharded file O_TRUNC is carried out by the
// layer (all blocks, then the size) and never sent: the brick would
// empty the base file only; O_APPEND is not sent either (see Create).
func (s *Shard) Open(ctx context.Context, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	if err := s.hiddenGFID("OPEN", gfid); err != nil {
		return nil, nil, err
	}
	ino, sharded, err := s.state(ctx, gfid, nil)
	if err != nil {
		return nil, nil, err
	}
	if !sharded {
		return s.Subvolume.Open(ctx, gfid, flags, xd)
	}
	f, rx, err := s.Subvolume.Open(ctx, gfid, flags&^(syscall.O_TRUNC|syscall.O_APPEND), xd)
	if err != nil {
		return nil, nil, err
	}
	ino.mu.Lock()
	ino.fds++
	ino.mu.Unlock()
	// The size as the bricks hold it now: another client may have
	// changed it since this one looked (a VM migrating here, reference
	// trap 3).
	if _, _, err := s.Fstat(ctx, f, nil); err != nil {
		_ = s.Release(ctx, f)
		return nil, nil, err
	}
	if flags&syscall.O_TRUNC != 0 {
		if _, _, _, err := s.truncate(ctx, ino, f, 0); err != nil {
			_ = s.Release(ctx, f)
			return nil, nil, err
		}
	}
	return f, rx, nil
}

// Release closes the base fd; the last one closes the file's block fds.
func (s *Shard) Release(ctx context.Context, f *fop.Fd) error {
	if !f.Dir {
		s.mu.Lock()
		ino := s.inodes[f.GFID]
		s.mu.Unlock()
		if ino != nil {
			ino.mu.Lock()
			last := false
			if ino.fds > 0 {
				if ino.fds--; ino.fds == 0 {
					// Closed: its blocks are looked up again when it is
					// next used, so the table can let it go.
					ino.blks = map[uint64]*block{}
					last = true
				}
			}
			ino.mu.Unlock()
			if last {
				s.lru.drop(ino, nil)
			}
		}
	}
	return s.Subvolume.Release(ctx, f)
}

// Getxattr hides the layer's xattrs (ENODATA, as native answers).
func (s *Shard) Getxattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if err := s.hiddenGFID("GETXATTR", gfid); err != nil {
		return nil, nil, err
	}
	if strings.HasPrefix(name, keyPrefix) {
		return nil, nil, s.opErr("GETXATTR", gfid, syscall.ENODATA, nil)
	}
	d, rx, err := s.Subvolume.Getxattr(ctx, gfid, name, xd)
	if err != nil || name != "" {
		return d, rx, err
	}
	out := d[:0:0]
	for _, p := range d {
		if !strings.HasPrefix(p.Key, keyPrefix) {
			out = append(out, p)
		}
	}
	return out, rx, nil
}

// Setxattr refuses the layer's xattrs (EPERM).
func (s *Shard) Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error) {
	if err := s.hiddenGFID("SETXATTR", gfid); err != nil {
		return nil, err
	}
	for _, p := range dict {
		if strings.HasPrefix(p.Key, keyPrefix) {
			return nil, s.opErr("SETXATTR", gfid, syscall.EPERM, errors.New(p.Key+" is the shard translator's own"))
		}
	}
	return s.Subvolume.Setxattr(ctx, gfid, dict, flags, xd)
}

// Removexattr refuses the layer's xattrs (EPERM).
func (s *Shard) Removexattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	if err := s.hiddenGFID("REMOVEXATTR", gfid); err != nil {
		return nil, err
	}
	if strings.HasPrefix(name, keyPrefix) {
		return nil, s.opErr("REMOVEXATTR", gfid, syscall.EPERM, errors.New(name+" is the shard translator's own"))
	}
	return s.Subvolume.Removexattr(ctx, gfid, name, xd)
}
