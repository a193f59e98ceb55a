package fop

import (
	"context"

	"github.com/brickfs/brickfs/brick/xdr"
)

// Fops is GlusterFS's fop table in Go casing: what the filesystem drives
// and what each layer of the graph and each brick client carries out.
// Every fop takes the request's xdata last (nil for none) and returns the
// reply's xdata before its error, so a key a parent sets (gfid-req, a
// DHT linkto, glusterfs.inodelk-count) reaches the brick and what the
// brick answers reaches the parent. Errors are *OpError or wrap one.
//
// Release is not a fop in GlusterFS (it is the fd's release callback) and
// carries no xdata.
type Fops interface {
	// Inode fops.
	Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Stat(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Truncate(ctx context.Context, gfid xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Access(ctx context.Context, gfid xdr.GFID, mask uint32, xd xdr.Dict) (xdr.Dict, error)
	Readlink(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (string, xdr.Dict, error)
	Getxattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error)
	Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error)
	Removexattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error)
	// Xattrop applies flags (Xattrop*) to the keys of dict and returns
	// the resulting values.
	Xattrop(ctx context.Context, gfid xdr.GFID, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error)
	Statfs(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error)

	// Locks a parent layer takes through this node (inodelk and entrylk
	// domains; POSIX locks are Lk).
	Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error)
	Finodelk(ctx context.Context, f *Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error)
	Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error)

	// Entry fops. gfid is the gfid the new inode gets (sent as gfid-req).
	Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*Fd, xdr.Iatt, xdr.Dict, error)
	Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Link(ctx context.Context, gfid, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error)
	// Rmdir removes an empty directory; flags RmdirRecursive has the
	// brick move a non-empty one, with its contents, to its landfill
	// (what self-heal uses to delete a directory).
	Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error)
	Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)

	// Fd fops.
	Open(ctx context.Context, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*Fd, xdr.Dict, error)
	Opendir(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (*Fd, xdr.Dict, error)
	Release(ctx context.Context, f *Fd) error
	// Readdirp reads entries with their attributes from offset, up to
	// size bytes of reply; eof is set at the end of the directory.
	Readdirp(ctx context.Context, f *Fd, offset uint64, size uint32, xd xdr.Dict) (ents []Dirent, eof bool, rx xdr.Dict, err error)
	// Read returns up to size bytes at off; short means end of file. The
	// data may live in the caller's buffer (see ReadDest): a layer does
	// not keep data it hands up.
	Read(ctx context.Context, f *Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error)
	// Write answers the file's attributes before and after it (the
	// shard layer counts blocks from the two).
	Write(ctx context.Context, f *Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Flush(ctx context.Context, f *Fd, xd xdr.Dict) (xdr.Dict, error)
	Fsync(ctx context.Context, f *Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error)
	Fsyncdir(ctx context.Context, f *Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error)
	Fstat(ctx context.Context, f *Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Fsetattr(ctx context.Context, f *Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Ftruncate(ctx context.Context, f *Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Fallocate(ctx context.Context, f *Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Discard(ctx context.Context, f *Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Zerofill(ctx context.Context, f *Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
	Seek(ctx context.Context, f *Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error)
	Lk(ctx context.Context, f *Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error)
	Fxattrop(ctx context.Context, f *Fd, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error)
	// CopyFileRange copies size bytes from in at offIn to out at offOut
	// (reflinking where the brick's filesystem can) and returns how many
	// it copied and out's attributes after.
	CopyFileRange(ctx context.Context, in *Fd, offIn uint64, out *Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (n uint64, post xdr.Iatt, rx xdr.Dict, err error)
}

// Subvolume is a node of the graph as its parent sees it: a brick client
// or a layer.
type Subvolume interface {
	Fops
	// Name is the node's translator name in the volfile.
	Name() string
	// Up is CHILD_UP as this node defines it (a brick: connected; a
	// replica set: client quorum of children up).
	Up() bool
	// Watch registers fn to be called with the node's new state each
	// time it goes up or down (GlusterFS's notify). fn must not block.
	Watch(fn func(up bool))
}

// Dirent is one READDIRP entry (gfx_dirplist).
type Dirent struct {
	Ino, Off uint64
	Type     uint32
	Name     string
	Stat     xdr.Iatt
	// Stale says Stat may be out of date (a copy that may need heal, or
	// an arbiter's, which holds no data): good for the entry's type, mode
	// and gfid, not for answering a stat.
	Stale bool
	// Xdata is the entry's own dict: the xattrs the request's xdata
	// named (the shard layer's file size, for one).
	Xdata xdr.Dict
}

// Setattr valid bits (libglusterfs/src/glusterfs/xlator.h GF_SET_ATTR_*).
const (
	SetAttrMode     = 0x1
	SetAttrUID      = 0x2
	SetAttrGID      = 0x4
	SetAttrSize     = 0x8
	SetAttrAtime    = 0x10
	SetAttrMtime    = 0x20
	SetAttrCtime    = 0x40
	SetAttrAtimeNow = 0x80
	SetAttrMtimeNow = 0x100
)

// XattrSubvolume is a virtual xattr of a file: the name of the
// subvolume of the distribute layer that holds its data (ENODATA on a
// volume that is not distributed). brickfs clone reads it to place a
// clone's data beside its source's, where the bricks can reflink it. In
// the user namespace, so that any user who can read the file can ask.
const XattrSubvolume = "user.brickfs.subvolume"

// Seek whence values for SEEK.
const (
	SeekData = 0
	SeekHole = 1
)

// Lock commands and types (glusterfs-fops.h GF_LK_*).
const (
	LkGet  = 0
	LkSet  = 1
	LkSetW = 2

	LkRead   = 0
	LkWrite  = 1
	LkUnlock = 2
)

// Entry lock commands (ENTRYLK_*).
const (
	EntrylkLock   = 0
	EntrylkUnlock = 1
	EntrylkLockNB = 2
)

// Rmdir flags.
const RmdirRecursive = 1

// Xattrop flags (GF_XATTROP_*).
const (
	XattropAddArray        = 0
	XattropAddArray64      = 1
	XattropOrArray         = 2
	XattropAndArray        = 3
	XattropGetAndSet       = 4
	XattropAddArrayWithDef = 5
	XattropAddArray64Def   = 6
)
