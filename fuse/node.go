package fuse

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// node is one inode, keyed by its GFID.
type node struct {
	fs.Inode
	fsys *FS
	gfid xdr.GFID

	// noXattr remembers, for attribute-timeout, names GETXATTR found
	// absent: the kernel asks for security.capability before every
	// buffered write and ls for ACLs and SELinux labels on every entry,
	// as md-cache answers them in the native client.
	xmu     sync.Mutex
	noXattr map[string]time.Time // GUARDED_BY(xmu)
}

func (n *node) absent(name string) bool {
	n.xmu.Lock()
	defer n.xmu.Unlock()
	t, ok := n.noXattr[name]
	return ok && time.Now().Before(t)
}

func (n *node) setAbsent(name string, absent bool) {
	n.xmu.Lock()
	defer n.xmu.Unlock()
	if !absent || n.fsys.opts.AttrTimeout <= 0 {
		delete(n.noXattr, name)
		return
	}
	if n.noXattr == nil {
		n.noXattr = map[string]time.Time{}
	}
	if len(n.noXattr) < 64 {
		n.noXattr[name] = time.Now().Add(n.fsys.opts.AttrTimeout)
	}
}

func (n *node) vol() Volume { return n.fsys.vol }

var _ = (fs.NodeLookuper)((*node)(nil))

func (n *node) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if n.fsys.hidden(n.gfid, name) {
		return nil, syscall.ENOENT
	}
	st, _, err := n.vol().Lookup(n.fsys.caller(ctx, nil), n.gfid, name, xdr.GFID{}, nil)
	if err != nil {
		return nil, n.fsys.fail("LOOKUP", err)
	}
	return n.fsys.entry(ctx, n.EmbeddedInode(), &st, out), 0
}

var _ = (fs.NodeGetattrer)((*node)(nil))

func (n *node) Getattr(ctx context.Context, fh fs.FileHandle, out *gofuse.AttrOut) syscall.Errno {
	var st xdr.Iatt
	var err error
	if h, ok := fh.(*file); ok {
		st, _, err = n.vol().Fstat(n.fsys.caller(ctx, nil), h.fd, nil)
	} else {
		st, _, err = n.vol().Stat(n.fsys.caller(ctx, nil), n.gfid, nil)
	}
	if err != nil {
		return n.fsys.fail("STAT", err)
	}
	fillAttr(&st, &out.Attr)
	out.SetTimeout(n.fsys.opts.AttrTimeout)
	return 0
}

var _ = (fs.NodeSetattrer)((*node)(nil))

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *gofuse.SetAttrIn, out *gofuse.AttrOut) syscall.Errno {
	ctx = n.fsys.caller(ctx, nil)
	h, _ := fh.(*file)
	var post xdr.Iatt
	var err error
	if size, ok := in.GetSize(); ok {
		if h != nil {
			_, post, _, err = n.vol().Ftruncate(ctx, h.fd, size, nil)
		} else {
			_, post, _, err = n.vol().Truncate(ctx, n.gfid, size, nil)
		}
		if err != nil {
			return n.fsys.fail("TRUNCATE", err)
		}
	}
	var a xdr.Iatt
	var valid uint32
	if m, ok := in.GetMode(); ok {
		a.Mode, valid = m, valid|fop.SetAttrMode
	}
	if u, ok := in.GetUID(); ok {
		a.UID, valid = u, valid|fop.SetAttrUID
	}
	if g, ok := in.GetGID(); ok {
		a.GID, valid = g, valid|fop.SetAttrGID
	}
	now := time.Now()
	if t, ok := in.GetATime(); ok {
		a.Atime, a.AtimeNsec, valid = t.Unix(), uint32(t.Nanosecond()), valid|fop.SetAttrAtime
	} else if in.Valid&gofuse.FATTR_ATIME_NOW != 0 {
		a.Atime, a.AtimeNsec, valid = now.Unix(), uint32(now.Nanosecond()), valid|fop.SetAttrAtime
	}
	if t, ok := in.GetMTime(); ok {
		a.Mtime, a.MtimeNsec, valid = t.Unix(), uint32(t.Nanosecond()), valid|fop.SetAttrMtime
	} else if in.Valid&gofuse.FATTR_MTIME_NOW != 0 {
		a.Mtime, a.MtimeNsec, valid = now.Unix(), uint32(now.Nanosecond()), valid|fop.SetAttrMtime
	}
	if valid != 0 {
		if h != nil {
			_, post, _, err = n.vol().Fsetattr(ctx, h.fd, &a, valid, nil)
		} else {
			_, post, _, err = n.vol().Setattr(ctx, n.gfid, &a, valid, nil)
		}
		if err != nil {
			return n.fsys.fail("SETATTR", err)
		}
	}
	if post.GFID.IsZero() {
		if post, _, err = n.vol().Stat(ctx, n.gfid, nil); err != nil {
			return n.fsys.fail("STAT", err)
		}
	}
	fillAttr(&post, &out.Attr)
	out.SetTimeout(n.fsys.opts.AttrTimeout)
	return 0
}

var _ = (fs.NodeAccesser)((*node)(nil))

func (n *node) Access(ctx context.Context, mask uint32) syscall.Errno {
	if _, err := n.vol().Access(n.fsys.caller(ctx, nil), n.gfid, mask, nil); err != nil {
		return n.fsys.fail("ACCESS", err)
	}
	return 0
}

var _ = (fs.NodeOpener)((*node)(nil))

// openMask drops what the kernel already handled or the brick must not see.
const openMask = ^uint32(syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOCTTY)

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, _, err := n.vol().Open(n.fsys.caller(ctx, nil), n.gfid, flags&openMask, nil)
	if err != nil {
		if fop.Errno(err) == syscall.ESTALE {
			// The name was replaced or removed since the kernel looked it
			// up; the kernel retries a stale open only once, so say what
			// happened to the file: it is gone.
			return nil, 0, syscall.ENOENT
		}
		return nil, 0, n.fsys.fail("OPEN", err)
	}
	n.fsys.files.Add(1)
	return &file{fsys: n.fsys, fd: fd}, openFlags(flags), 0
}

var _ = (fs.NodeOnForgetter)((*node)(nil))

// OnForget: the kernel forgot the inode. The root, never counted (the
// kernel does not look it up), is forgotten at unmount: skipped.
func (n *node) OnForget() {
	if n.IsRoot() {
		return
	}
	n.fsys.inodes.Add(-1)
}

// openFlags: O_DIRECT opens bypass the kernel page cache, as QEMU's
// cache=none expects.
func openFlags(flags uint32) uint32 {
	if flags&syscall.O_DIRECT != 0 {
		return gofuse.FOPEN_DIRECT_IO
	}
	return 0
}

var _ = (fs.NodeCreater)((*node)(nil))

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *gofuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	fd, st, _, err := n.vol().Create(n.fsys.caller(ctx, nil), n.gfid, name, flags&^syscall.O_NOCTTY, mode|syscall.S_IFREG, 0, newGFID(), nil)
	if err != nil {
		return nil, nil, 0, n.fsys.fail("CREATE", err)
	}
	n.fsys.files.Add(1)
	return n.fsys.entry(ctx, n.EmbeddedInode(), &st, out), &file{fsys: n.fsys, fd: fd}, openFlags(flags), 0
}

var _ = (fs.NodeMkdirer)((*node)(nil))

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	st, _, err := n.vol().Mkdir(n.fsys.caller(ctx, nil), n.gfid, name, mode, 0, newGFID(), nil)
	if err != nil {
		return nil, n.fsys.fail("MKDIR", err)
	}
	return n.fsys.entry(ctx, n.EmbeddedInode(), &st, out), 0
}

var _ = (fs.NodeMknoder)((*node)(nil))

func (n *node) Mknod(ctx context.Context, name string, mode, dev uint32, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	st, _, err := n.vol().Mknod(n.fsys.caller(ctx, nil), n.gfid, name, mode, uint64(dev), 0, newGFID(), nil)
	if err != nil {
		return nil, n.fsys.fail("MKNOD", err)
	}
	return n.fsys.entry(ctx, n.EmbeddedInode(), &st, out), 0
}

var _ = (fs.NodeSymlinker)((*node)(nil))

func (n *node) Symlink(ctx context.Context, target, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	st, _, err := n.vol().Symlink(n.fsys.caller(ctx, nil), n.gfid, name, target, 0, newGFID(), nil)
	if err != nil {
		return nil, n.fsys.fail("SYMLINK", err)
	}
	return n.fsys.entry(ctx, n.EmbeddedInode(), &st, out), 0
}

var _ = (fs.NodeReadlinker)((*node)(nil))

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	s, _, err := n.vol().Readlink(n.fsys.caller(ctx, nil), n.gfid, nil)
	if err != nil {
		return nil, n.fsys.fail("READLINK", err)
	}
	return []byte(s), 0
}

var _ = (fs.NodeLinker)((*node)(nil))

func (n *node) Link(ctx context.Context, target fs.InodeEmbedder, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	t, ok := target.(*node)
	if !ok {
		return nil, syscall.EXDEV
	}
	st, _, err := n.vol().Link(n.fsys.caller(ctx, nil), t.gfid, n.gfid, name, nil)
	if err != nil {
		return nil, n.fsys.fail("LINK", err)
	}
	return n.fsys.entry(ctx, n.EmbeddedInode(), &st, out), 0
}

var _ = (fs.NodeUnlinker)((*node)(nil))

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	if _, err := n.vol().Unlink(n.fsys.caller(ctx, nil), n.gfid, name, nil); err != nil {
		return n.fsys.fail("UNLINK", err)
	}
	return 0
}

var _ = (fs.NodeRmdirer)((*node)(nil))

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	if _, err := n.vol().Rmdir(n.fsys.caller(ctx, nil), n.gfid, name, 0, nil); err != nil {
		return n.fsys.fail("RMDIR", err)
	}
	return 0
}

var _ = (fs.NodeRenamer)((*node)(nil))

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	np, ok := newParent.(*node)
	if !ok {
		return syscall.EXDEV
	}
	if flags != 0 {
		// RENAME_NOREPLACE / EXCHANGE have no GlusterFS fop.
		return syscall.EINVAL
	}
	if _, _, err := n.vol().Rename(n.fsys.caller(ctx, nil), n.gfid, name, np.gfid, newName, nil); err != nil {
		return n.fsys.fail("RENAME", err)
	}
	return 0
}

var _ = (fs.NodeStatfser)((*node)(nil))

func (n *node) Statfs(ctx context.Context, out *gofuse.StatfsOut) syscall.Errno {
	st, _, err := n.vol().Statfs(n.fsys.caller(ctx, nil), xdr.RootGFID, nil)
	if err != nil {
		return n.fsys.fail("STATFS", err)
	}
	out.Blocks, out.Bfree, out.Bavail = st.Blocks, st.Bfree, st.Bavail
	out.Files, out.Ffree = st.Files, st.Ffree
	out.Bsize, out.Frsize = uint32(st.Bsize), uint32(st.Frsize)
	out.NameLen = uint32(st.Namemax)
	return 0
}

var _ = (fs.NodeGetxattrer)((*node)(nil))

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if n.absent(attr) {
		return 0, syscall.ENODATA
	}
	d, _, err := n.vol().Getxattr(n.fsys.caller(ctx, nil), n.gfid, attr, nil)
	if err != nil {
		en := n.fsys.fail("GETXATTR", err)
		n.setAbsent(attr, en == syscall.ENODATA)
		return 0, en
	}
	v, ok := d.Bytes(attr)
	if !ok {
		n.setAbsent(attr, true)
		return 0, syscall.ENODATA
	}
	if len(dest) == 0 {
		return uint32(len(v)), 0
	}
	if len(v) > len(dest) {
		return uint32(len(v)), syscall.ERANGE
	}
	return uint32(copy(dest, v)), 0
}

var _ = (fs.NodeListxattrer)((*node)(nil))

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	d, _, err := n.vol().Getxattr(n.fsys.caller(ctx, nil), n.gfid, "", nil)
	if err != nil {
		return 0, n.fsys.fail("LISTXATTR", err)
	}
	var buf []byte
	for _, p := range d {
		buf = append(buf, p.Key...)
		buf = append(buf, 0)
	}
	if len(dest) == 0 {
		return uint32(len(buf)), 0
	}
	if len(buf) > len(dest) {
		return uint32(len(buf)), syscall.ERANGE
	}
	return uint32(copy(dest, buf)), 0
}

var _ = (fs.NodeSetxattrer)((*node)(nil))

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	n.setAbsent(attr, false)
	v := append([]byte(nil), data...)
	if _, err := n.vol().Setxattr(n.fsys.caller(ctx, nil), n.gfid, xdr.Dict{{Key: attr, Value: xdr.Ptr(v)}}, flags, nil); err != nil {
		return n.fsys.fail("SETXATTR", err)
	}
	return 0
}

var _ = (fs.NodeRemovexattrer)((*node)(nil))

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	n.setAbsent(attr, false)
	if _, err := n.vol().Removexattr(n.fsys.caller(ctx, nil), n.gfid, attr, nil); err != nil {
		return n.fsys.fail("REMOVEXATTR", err)
	}
	return 0
}

var _ = (fs.NodeOpendirHandler)((*node)(nil))

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fd, _, err := n.vol().Opendir(n.fsys.caller(ctx, nil), n.gfid, nil)
	if err != nil {
		return nil, 0, n.fsys.fail("OPENDIR", err)
	}
	return &dir{node: n, fd: fd}, 0, 0
}
