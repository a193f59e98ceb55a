// single's forwarders, one per fop of fop.Fops (written by a script from
// the table; a fop added to the table must be added here, or single stops
// compiling). Mkdir, Opendir, Open and Create are in grow.go.

package failover

import (
	"context"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

func (s *single) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.sub().Lookup(ctx, parent, name, gfid, xd)
}

func (s *single) Stat(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.sub().Stat(ctx, gfid, xd)
}

func (s *single) Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.sub().Setattr(ctx, gfid, attr, valid, xd)
}

func (s *single) Truncate(ctx context.Context, gfid xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.sub().Truncate(ctx, gfid, size, xd)
}

func (s *single) Access(ctx context.Context, gfid xdr.GFID, mask uint32, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Access(ctx, gfid, mask, xd)
}

func (s *single) Readlink(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (string, xdr.Dict, error) {
	return s.sub().Readlink(ctx, gfid, xd)
}

func (s *single) Getxattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	return s.sub().Getxattr(ctx, gfid, name, xd)
}

func (s *single) Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Setxattr(ctx, gfid, dict, flags, xd)
}

func (s *single) Removexattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Removexattr(ctx, gfid, name, xd)
}

func (s *single) Xattrop(ctx context.Context, gfid xdr.GFID, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	return s.sub().Xattrop(ctx, gfid, flags, dict, xd)
}

func (s *single) Statfs(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error) {
	return s.sub().Statfs(ctx, gfid, xd)
}

func (s *single) Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Inodelk(ctx, gfid, domain, cmd, fl, xd)
}

func (s *single) Finodelk(ctx context.Context, f *fop.Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	return s.forFd(f).Finodelk(ctx, f, domain, cmd, fl, xd)
}

func (s *single) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Entrylk(ctx, parent, name, domain, cmd, typ, xd)
}

func (s *single) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.sub().Mknod(ctx, parent, name, mode, rdev, umask, gfid, xd)
}

func (s *single) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.sub().Symlink(ctx, parent, name, target, umask, gfid, xd)
}

func (s *single) Link(ctx context.Context, gfid, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.sub().Link(ctx, gfid, newParent, newName, xd)
}

func (s *single) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Unlink(ctx, parent, name, xd)
}

func (s *single) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	return s.sub().Rmdir(ctx, parent, name, flags, xd)
}

func (s *single) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.sub().Rename(ctx, oldParent, oldName, newParent, newName, xd)
}

func (s *single) Release(ctx context.Context, f *fop.Fd) error {
	return s.forFd(f).Release(ctx, f)
}

func (s *single) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) (ents []fop.Dirent, eof bool, rx xdr.Dict, err error) {
	return s.forFd(f).Readdirp(ctx, f, offset, size, xd)
}

func (s *single) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	return s.forFd(f).Read(ctx, f, off, size, xd)
}

func (s *single) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(f).Write(ctx, f, off, data, xd)
}

func (s *single) Flush(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Dict, error) {
	return s.forFd(f).Flush(ctx, f, xd)
}

func (s *single) Fsync(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	return s.forFd(f).Fsync(ctx, f, datasync, xd)
}

func (s *single) Fsyncdir(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	return s.forFd(f).Fsyncdir(ctx, f, datasync, xd)
}

func (s *single) Fstat(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	return s.forFd(f).Fstat(ctx, f, xd)
}

func (s *single) Fsetattr(ctx context.Context, f *fop.Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(f).Fsetattr(ctx, f, attr, valid, xd)
}

func (s *single) Ftruncate(ctx context.Context, f *fop.Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(f).Ftruncate(ctx, f, size, xd)
}

func (s *single) Fallocate(ctx context.Context, f *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(f).Fallocate(ctx, f, mode, off, length, xd)
}

func (s *single) Discard(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(f).Discard(ctx, f, off, length, xd)
}

func (s *single) Zerofill(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(f).Zerofill(ctx, f, off, length, xd)
}

func (s *single) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	return s.forFd(f).Seek(ctx, f, off, what, xd)
}

func (s *single) Lk(ctx context.Context, f *fop.Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error) {
	return s.forFd(f).Lk(ctx, f, cmd, fl, xd)
}

func (s *single) Fxattrop(ctx context.Context, f *fop.Fd, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	return s.forFd(f).Fxattrop(ctx, f, flags, dict, xd)
}

func (s *single) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (n uint64, post xdr.Iatt, rx xdr.Dict, err error) {
	return s.forFd(in).CopyFileRange(ctx, in, offIn, out, offOut, size, flags, xd)
}
