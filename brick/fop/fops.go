package fop

import (
	"context"

	"github.com/brickfs/brickfs/brick/xdr"
)

// Fops is every file operation a volume offers, in brick terms: what the
// filesystem drives and what each layer of the graph and each brick
// client carries out.
type Fops interface {
	Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xdata xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Stat(ctx context.Context, gfid xdr.GFID) (xdr.Iatt, error)
	Fstat(ctx context.Context, f *Fd) (xdr.Iatt, error)
	Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32) (pre, post xdr.Iatt, err error)
	Fsetattr(ctx context.Context, f *Fd, attr *xdr.Iatt, valid uint32) (pre, post xdr.Iatt, err error)
	Truncate(ctx context.Context, gfid xdr.GFID, size uint64) (pre, post xdr.Iatt, err error)
	Ftruncate(ctx context.Context, f *Fd, size uint64) (pre, post xdr.Iatt, err error)
	Access(ctx context.Context, gfid xdr.GFID, mask uint32) error
	Open(ctx context.Context, gfid xdr.GFID, flags uint32) (*Fd, error)
	Opendir(ctx context.Context, gfid xdr.GFID) (*Fd, error)
	Release(ctx context.Context, f *Fd) error
	Readdirp(ctx context.Context, f *Fd, offset uint64, size uint32) ([]Dirent, bool, error)
	Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (*Fd, xdr.Iatt, error)
	Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error)
	Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error)
	Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error)
	Readlink(ctx context.Context, gfid xdr.GFID) (string, error)
	Link(ctx context.Context, gfid, newParent xdr.GFID, newName string) (xdr.Iatt, error)
	Unlink(ctx context.Context, parent xdr.GFID, name string) error
	Rmdir(ctx context.Context, parent xdr.GFID, name string) error
	Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string) (xdr.Iatt, error)
	Read(ctx context.Context, f *Fd, off uint64, size uint32) ([]byte, error)
	Write(ctx context.Context, f *Fd, off uint64, data []byte, xdata xdr.Dict) (xdr.Iatt, error)
	Flush(ctx context.Context, f *Fd) error
	Fsync(ctx context.Context, f *Fd, datasync bool) error
	Fsyncdir(ctx context.Context, f *Fd, datasync bool) error
	Statfs(ctx context.Context, gfid xdr.GFID) (xdr.Statfs, error)
	Getxattr(ctx context.Context, gfid xdr.GFID, name string) (xdr.Dict, error)
	Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32) error
	Removexattr(ctx context.Context, gfid xdr.GFID, name string) error
	Fallocate(ctx context.Context, f *Fd, mode uint32, off, length uint64) error
	Discard(ctx context.Context, f *Fd, off, length uint64) error
	Zerofill(ctx context.Context, f *Fd, off, length uint64) error
	Seek(ctx context.Context, f *Fd, off uint64, what int32) (uint64, error)
	Lk(ctx context.Context, f *Fd, cmd uint32, fl xdr.Flock) (xdr.Flock, error)
}

// Dirent is one READDIRP entry (gfx_dirplist).
type Dirent struct {
	Ino, Off uint64
	Type     uint32
	Name     string
	Stat     xdr.Iatt
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
