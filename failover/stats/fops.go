package stats

// One method per fop of the table, all to one pattern: time the call,
// count it and its errno. TestStatsIntercepts fails when the table gains a
// fop that is not here.

import (
	"context"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Indexes of the fops into Stats.fops, in the table's order.
const (
	opLookup = iota
	opStat
	opSetattr
	opTruncate
	opAccess
	opReadlink
	opGetxattr
	opSetxattr
	opRemovexattr
	opXattrop
	opStatfs
	opInodelk
	opFinodelk
	opEntrylk
	opCreate
	opMkdir
	opMknod
	opSymlink
	opLink
	opUnlink
	opRmdir
	opRename
	opOpen
	opOpendir
	opRelease
	opReaddirp
	opRead
	opWrite
	opFlush
	opFsync
	opFsyncdir
	opFstat
	opFsetattr
	opFtruncate
	opFallocate
	opDiscard
	opZerofill
	opSeek
	opLk
	opFxattrop
	opCopyFileRange
	numFops
)

// fopNames are GlusterFS's names of the fops (glusterfs_fop_list).
var fopNames = [numFops]string{
	opLookup:        "LOOKUP",
	opStat:          "STAT",
	opSetattr:       "SETATTR",
	opTruncate:      "TRUNCATE",
	opAccess:        "ACCESS",
	opReadlink:      "READLINK",
	opGetxattr:      "GETXATTR",
	opSetxattr:      "SETXATTR",
	opRemovexattr:   "REMOVEXATTR",
	opXattrop:       "XATTROP",
	opStatfs:        "STATFS",
	opInodelk:       "INODELK",
	opFinodelk:      "FINODELK",
	opEntrylk:       "ENTRYLK",
	opCreate:        "CREATE",
	opMkdir:         "MKDIR",
	opMknod:         "MKNOD",
	opSymlink:       "SYMLINK",
	opLink:          "LINK",
	opUnlink:        "UNLINK",
	opRmdir:         "RMDIR",
	opRename:        "RENAME",
	opOpen:          "OPEN",
	opOpendir:       "OPENDIR",
	opRelease:       "RELEASE",
	opReaddirp:      "READDIRP",
	opRead:          "READ",
	opWrite:         "WRITE",
	opFlush:         "FLUSH",
	opFsync:         "FSYNC",
	opFsyncdir:      "FSYNCDIR",
	opFstat:         "FSTAT",
	opFsetattr:      "FSETATTR",
	opFtruncate:     "FTRUNCATE",
	opFallocate:     "FALLOCATE",
	opDiscard:       "DISCARD",
	opZerofill:      "ZEROFILL",
	opSeek:          "SEEK",
	opLk:            "LK",
	opFxattrop:      "FXATTROP",
	opCopyFileRange: "COPY_FILE_RANGE",
}

// Lookup counts and times LOOKUP.
func (s *Stats) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Lookup(ctx, parent, name, gfid, xd)
	s.end(opLookup, start, err)
	return r0, r1, err
}

// Stat counts and times STAT.
func (s *Stats) Stat(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Stat(ctx, gfid, xd)
	s.end(opStat, start, err)
	return r0, r1, err
}

// Setattr counts and times SETATTR.
func (s *Stats) Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Setattr(ctx, gfid, attr, valid, xd)
	s.end(opSetattr, start, err)
	return r0, r1, r2, err
}

// Truncate counts and times TRUNCATE.
func (s *Stats) Truncate(ctx context.Context, gfid xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Truncate(ctx, gfid, size, xd)
	s.end(opTruncate, start, err)
	return r0, r1, r2, err
}

// Access counts and times ACCESS.
func (s *Stats) Access(ctx context.Context, gfid xdr.GFID, mask uint32, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Access(ctx, gfid, mask, xd)
	s.end(opAccess, start, err)
	return r0, err
}

// Readlink counts and times READLINK.
func (s *Stats) Readlink(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (string, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Readlink(ctx, gfid, xd)
	s.end(opReadlink, start, err)
	return r0, r1, err
}

// Getxattr counts and times GETXATTR.
func (s *Stats) Getxattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Getxattr(ctx, gfid, name, xd)
	s.end(opGetxattr, start, err)
	return r0, r1, err
}

// Setxattr counts and times SETXATTR.
func (s *Stats) Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Setxattr(ctx, gfid, dict, flags, xd)
	s.end(opSetxattr, start, err)
	return r0, err
}

// Removexattr counts and times REMOVEXATTR.
func (s *Stats) Removexattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Removexattr(ctx, gfid, name, xd)
	s.end(opRemovexattr, start, err)
	return r0, err
}

// Xattrop counts and times XATTROP.
func (s *Stats) Xattrop(ctx context.Context, gfid xdr.GFID, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Xattrop(ctx, gfid, flags, dict, xd)
	s.end(opXattrop, start, err)
	return r0, r1, err
}

// Statfs counts and times STATFS.
func (s *Stats) Statfs(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Statfs(ctx, gfid, xd)
	s.end(opStatfs, start, err)
	return r0, r1, err
}

// Inodelk counts and times INODELK.
func (s *Stats) Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Inodelk(ctx, gfid, domain, cmd, fl, xd)
	s.end(opInodelk, start, err)
	return r0, err
}

// Finodelk counts and times FINODELK.
func (s *Stats) Finodelk(ctx context.Context, f *fop.Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Finodelk(ctx, f, domain, cmd, fl, xd)
	s.end(opFinodelk, start, err)
	return r0, err
}

// Entrylk counts and times ENTRYLK.
func (s *Stats) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Entrylk(ctx, parent, name, domain, cmd, typ, xd)
	s.end(opEntrylk, start, err)
	return r0, err
}

// Create counts and times CREATE.
func (s *Stats) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Create(ctx, parent, name, flags, mode, umask, gfid, xd)
	s.end(opCreate, start, err)
	return r0, r1, r2, err
}

// Mkdir counts and times MKDIR.
func (s *Stats) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Mkdir(ctx, parent, name, mode, umask, gfid, xd)
	s.end(opMkdir, start, err)
	return r0, r1, err
}

// Mknod counts and times MKNOD.
func (s *Stats) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Mknod(ctx, parent, name, mode, rdev, umask, gfid, xd)
	s.end(opMknod, start, err)
	return r0, r1, err
}

// Symlink counts and times SYMLINK.
func (s *Stats) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Symlink(ctx, parent, name, target, umask, gfid, xd)
	s.end(opSymlink, start, err)
	return r0, r1, err
}

// Link counts and times LINK.
func (s *Stats) Link(ctx context.Context, gfid, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Link(ctx, gfid, newParent, newName, xd)
	s.end(opLink, start, err)
	return r0, r1, err
}

// Unlink counts and times UNLINK.
func (s *Stats) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Unlink(ctx, parent, name, xd)
	s.end(opUnlink, start, err)
	return r0, err
}

// Rmdir counts and times RMDIR.
func (s *Stats) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Rmdir(ctx, parent, name, flags, xd)
	s.end(opRmdir, start, err)
	return r0, err
}

// Rename counts and times RENAME.
func (s *Stats) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Rename(ctx, oldParent, oldName, newParent, newName, xd)
	s.end(opRename, start, err)
	return r0, r1, err
}

// Open counts and times OPEN.
func (s *Stats) Open(ctx context.Context, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Open(ctx, gfid, flags, xd)
	s.end(opOpen, start, err)
	return r0, r1, err
}

// Opendir counts and times OPENDIR.
func (s *Stats) Opendir(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Opendir(ctx, gfid, xd)
	s.end(opOpendir, start, err)
	return r0, r1, err
}

// Release counts and times RELEASE.
func (s *Stats) Release(ctx context.Context, f *fop.Fd) error {
	start := s.begin()
	err := s.next.Release(ctx, f)
	s.end(opRelease, start, err)
	return err
}

// Readdirp counts and times READDIRP.
func (s *Stats) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) (ents []fop.Dirent, eof bool, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Readdirp(ctx, f, offset, size, xd)
	s.end(opReaddirp, start, err)
	return r0, r1, r2, err
}

// Read counts and times READ.
func (s *Stats) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Read(ctx, f, off, size, xd)
	s.read.Add(uint64(len(r0)))
	s.end(opRead, start, err)
	return r0, r1, err
}

// Write counts and times WRITE.
func (s *Stats) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Write(ctx, f, off, data, xd)
	if err == nil {
		s.written.Add(uint64(len(data)))
	}
	s.end(opWrite, start, err)
	return r0, r1, r2, err
}

// Flush counts and times FLUSH.
func (s *Stats) Flush(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Flush(ctx, f, xd)
	s.end(opFlush, start, err)
	return r0, err
}

// Fsync counts and times FSYNC.
func (s *Stats) Fsync(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Fsync(ctx, f, datasync, xd)
	s.end(opFsync, start, err)
	return r0, err
}

// Fsyncdir counts and times FSYNCDIR.
func (s *Stats) Fsyncdir(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	start := s.begin()
	r0, err := s.next.Fsyncdir(ctx, f, datasync, xd)
	s.end(opFsyncdir, start, err)
	return r0, err
}

// Fstat counts and times FSTAT.
func (s *Stats) Fstat(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Fstat(ctx, f, xd)
	s.end(opFstat, start, err)
	return r0, r1, err
}

// Fsetattr counts and times FSETATTR.
func (s *Stats) Fsetattr(ctx context.Context, f *fop.Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Fsetattr(ctx, f, attr, valid, xd)
	s.end(opFsetattr, start, err)
	return r0, r1, r2, err
}

// Ftruncate counts and times FTRUNCATE.
func (s *Stats) Ftruncate(ctx context.Context, f *fop.Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Ftruncate(ctx, f, size, xd)
	s.end(opFtruncate, start, err)
	return r0, r1, r2, err
}

// Fallocate counts and times FALLOCATE.
func (s *Stats) Fallocate(ctx context.Context, f *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Fallocate(ctx, f, mode, off, length, xd)
	s.end(opFallocate, start, err)
	return r0, r1, r2, err
}

// Discard counts and times DISCARD.
func (s *Stats) Discard(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Discard(ctx, f, off, length, xd)
	s.end(opDiscard, start, err)
	return r0, r1, r2, err
}

// Zerofill counts and times ZEROFILL.
func (s *Stats) Zerofill(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.Zerofill(ctx, f, off, length, xd)
	s.end(opZerofill, start, err)
	return r0, r1, r2, err
}

// Seek counts and times SEEK.
func (s *Stats) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Seek(ctx, f, off, what, xd)
	s.end(opSeek, start, err)
	return r0, r1, err
}

// Lk counts and times LK.
func (s *Stats) Lk(ctx context.Context, f *fop.Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Lk(ctx, f, cmd, fl, xd)
	s.end(opLk, start, err)
	return r0, r1, err
}

// Fxattrop counts and times FXATTROP.
func (s *Stats) Fxattrop(ctx context.Context, f *fop.Fd, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	start := s.begin()
	r0, r1, err := s.next.Fxattrop(ctx, f, flags, dict, xd)
	s.end(opFxattrop, start, err)
	return r0, r1, err
}

// CopyFileRange counts and times COPY_FILE_RANGE.
func (s *Stats) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (n uint64, post xdr.Iatt, rx xdr.Dict, err error) {
	start := s.begin()
	r0, r1, r2, err := s.next.CopyFileRange(ctx, in, offIn, out, offOut, size, flags, xd)
	s.end(opCopyFileRange, start, err)
	return r0, r1, r2, err
}

// ZerofillKeepSize counts and times, as a FALLOCATE (the fop GlusterFS's
// client sends for it), fallocate(ZERO_RANGE|KEEP_SIZE) carried out by
// zero below this layer: a replica set does it as one transaction of its
// own, not through the fops above it.
func (s *Stats) ZerofillKeepSize(zero func() error) error {
	start := s.begin()
	err := zero()
	s.end(opFallocate, start, err)
	return err
}
