package brick

import (
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/volfile"
)

// RPC programs spoken by bricks and glusterd (rpc/rpc-lib/src/protocol-common.h,
// xdr-common.h); the management ones are volfile's.
const (
	ProgDump        = volfile.ProgDump
	VersDump        = volfile.VersDump
	ProcDump        = volfile.ProcDump
	ProcPing        = volfile.ProcPing
	ProgHandshake   = volfile.ProgHandshake
	VersHandshake   = volfile.VersHandshake
	ProcSetVolume   = 1 // GF_HNDSK_SETVOLUME
	ProcGetSpec     = volfile.ProcGetSpec
	ProgPortmap     = 34123456 // GLUSTER_PMAP_PROGRAM
	VersPortmap     = 1
	ProcPortByBrick = 1       // GF_PMAP_PORTBYBRICK
	ProgFOP         = 1298437 // GLUSTER_FOP_PROGRAM
	VersFOP         = 400     // GLUSTER_FOP_VERSION_v2 ("GlusterFS 4.x v1")
	ProgCallback    = volfile.ProgCallback
	CbkFetchSpec    = volfile.CbkFetchSpec
)

// Fop procedure numbers: enum gf_fop_procnum (GFS3_OP_*), not glusterfs_fop_t.
const (
	opStat          = 1
	opReadlink      = 2
	opMknod         = 3
	opMkdir         = 4
	opUnlink        = 5
	opRmdir         = 6
	opSymlink       = 7
	opRename        = 8
	opLink          = 9
	opTruncate      = 10
	opOpen          = 11
	opRead          = 12
	opWrite         = 13
	opStatfs        = 14
	opFlush         = 15
	opFsync         = 16
	opSetxattr      = 17
	opGetxattr      = 18
	opRemovexattr   = 19
	opOpendir       = 20
	opFsyncdir      = 21
	opAccess        = 22
	opCreate        = 23
	opFtruncate     = 24
	opFstat         = 25
	opLk            = 26
	opLookup        = 27
	opReaddir       = 28
	opInodelk       = 29
	opFinodelk      = 30
	opEntrylk       = 31
	opFentrylk      = 32
	opXattrop       = 33
	opFxattrop      = 34
	opFgetxattr     = 35
	opFsetxattr     = 36
	opRchecksum     = 37
	opSetattr       = 38
	opFsetattr      = 39
	opReaddirp      = 40
	opRelease       = 41
	opReleasedir    = 42
	opFremovexattr  = 43
	opFallocate     = 44
	opDiscard       = 45
	opZerofill      = 46
	opIpc           = 47
	opSeek          = 48
	opCopyFileRange = 56
)

var fopNames = [...]string{
	opStat: "STAT", opReadlink: "READLINK", opMknod: "MKNOD", opMkdir: "MKDIR", opUnlink: "UNLINK",
	opRmdir: "RMDIR", opSymlink: "SYMLINK", opRename: "RENAME", opLink: "LINK", opTruncate: "TRUNCATE",
	opOpen: "OPEN", opRead: "READ", opWrite: "WRITE", opStatfs: "STATFS", opFlush: "FLUSH",
	opFsync: "FSYNC", opSetxattr: "SETXATTR", opGetxattr: "GETXATTR", opRemovexattr: "REMOVEXATTR",
	opOpendir: "OPENDIR", opFsyncdir: "FSYNCDIR", opAccess: "ACCESS", opCreate: "CREATE",
	opFtruncate: "FTRUNCATE", opFstat: "FSTAT", opLk: "LK", opLookup: "LOOKUP", opReaddir: "READDIR",
	opInodelk: "INODELK", opFinodelk: "FINODELK", opEntrylk: "ENTRYLK", opFentrylk: "FENTRYLK",
	opXattrop: "XATTROP", opFxattrop: "FXATTROP", opFgetxattr: "FGETXATTR", opFsetxattr: "FSETXATTR",
	opRchecksum: "RCHECKSUM", opSetattr: "SETATTR", opFsetattr: "FSETATTR", opReaddirp: "READDIRP",
	opRelease: "RELEASE", opReleasedir: "RELEASEDIR", opFremovexattr: "FREMOVEXATTR",
	opFallocate: "FALLOCATE", opDiscard: "DISCARD", opZerofill: "ZEROFILL", opIpc: "IPC", opSeek: "SEEK",
	opCopyFileRange: "COPY_FILE_RANGE",
}

// FopName is the GlusterFS name of a fop procedure.
func FopName(proc uint32) string {
	if int(proc) < len(fopNames) && fopNames[proc] != "" {
		return fopNames[proc]
	}
	return "FOP?"
}

// Timestamp flags per fop, as features/utime sets them
// (utime_update_attribute_flags, xlators/features/utime/src/utime-helpers.c),
// with noatime on as in every generated client volfile. useCtime tells
// whether utime wraps the fop at all (it then stamps frame ctime = now).
func utimeFlags(proc uint32) (flags uint32, useCtime bool) {
	const (
		c  = 0x1
		m  = 0x2
		a  = 0x4
		pc = 0x8
		pm = 0x10
	)
	switch proc {
	case opMknod, opMkdir, opSymlink, opCreate:
		return a | c | m | pc | pm, true
	case opUnlink, opRmdir, opLink, opRename:
		return c | pc | pm, true
	case opWrite, opTruncate, opFtruncate:
		return m | c, true
	case opCopyFileRange:
		return m | c, true
	case opFallocate, opZerofill:
		return m | a, true
	case opRemovexattr, opFremovexattr:
		return c, true
	case opOpen, opOpendir, opRead:
		return 0, true
	case opSetattr, opFsetattr:
		return 0, true // flags depend on `valid`: see setattrFlags
	}
	return 0, false
}

// Setattr valid bits (libglusterfs/src/glusterfs/xlator.h GF_SET_ATTR_*).
const (
	SetAttrMode     = fop.SetAttrMode
	SetAttrUID      = fop.SetAttrUID
	SetAttrGID      = fop.SetAttrGID
	SetAttrSize     = fop.SetAttrSize
	SetAttrAtime    = fop.SetAttrAtime
	SetAttrMtime    = fop.SetAttrMtime
	SetAttrCtime    = fop.SetAttrCtime
	SetAttrAtimeNow = fop.SetAttrAtimeNow
	SetAttrMtimeNow = fop.SetAttrMtimeNow
)

// setattrFlags mirrors utime's setattr template (utime-gen-fops-c.py).
func setattrFlags(valid uint32) uint32 {
	if valid == 0 || valid&(SetAttrUID|SetAttrGID|SetAttrMode) != 0 {
		return 0x1
	}
	return 0
}
