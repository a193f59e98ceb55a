package fuse

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Options shape the filesystem.
type Options struct {
	// AttrTimeout and EntryTimeout are how long the kernel may cache
	// attributes and names (the native client's attribute-timeout and
	// entry-timeout, both 1 s by default).
	AttrTimeout, EntryTimeout time.Duration
	// NegativeTimeout caches failed lookups; 0 disables it, as the native
	// client does by default.
	NegativeTimeout time.Duration
	// VolumeID hides the brick's .glusterfs-anonymous-inode-<volume-id>
	// directory in the volume root; when empty, any such name is hidden.
	VolumeID string
	// MaxWrite is the largest READ/WRITE the kernel sends; 0 means 1 MiB.
	MaxWrite int
	// CopyOffload is the copy_file_range policy: OffloadAuto (also ""),
	// OffloadBricks or OffloadKernel (clone.go).
	CopyOffload string
	// CopyChunk bounds one copy_file_range sent to the bricks; 0 means
	// 64 MiB.
	CopyChunk int64
	Log       *zap.Logger
}

// FS is a brickfs filesystem over a Volume.
type FS struct {
	vol  Volume
	opts Options
	log  *zap.Logger

	groups groupCache
	clones cloneFds // copy_file_range destination fds (clone.go)

	// lkOwners holds the lock owner of a FLUSH in flight per caller pid:
	// go-fuse does not pass FlushIn.LockOwner to the node API, so the raw
	// wrapper (see rawFS) parks it here for the duration of the call.
	ownersMu sync.Mutex
	owners   map[uint32]*flushOwner // GUARDED_BY(ownersMu)

	// The kernel's view, for the statedump and status: inodes it knows
	// (made, not forgotten) and files it holds open.
	inodes, files atomic.Int64

	// bufs are the buffers FUSE requests and replies travel in (serve.go).
	bufs *bufPool

	// retained are WRITE data that calls still read after the write
	// returned (fop.DataHold): their request buffers wait for them.
	retainMu  sync.Mutex
	retained  []retainedData // GUARDED_BY(retainMu)
	nRetained atomic.Int32
}

// Tables reports how many inodes the kernel knows of the mount (looked
// up and not forgotten) and how many files it holds open.
func (f *FS) Tables() (inodes, files int64) { return f.inodes.Load(), f.files.Load() }

// New returns a filesystem over vol.
func New(vol Volume, opts Options) *FS {
	if opts.MaxWrite == 0 {
		opts.MaxWrite = 1 << 20
	}
	if opts.Log == nil {
		opts.Log = zap.NewNop()
	}
	return &FS{vol: vol, opts: opts, log: opts.Log, owners: map[uint32]*flushOwner{}, bufs: newBufPool(keepWarm)}
}

// BufferStats are the FUSE buffers' figures (bytes, and counts).
type BufferStats struct {
	Mapped   int64 `json:"mapped_bytes"`   // address space mapped for them
	InUse    int64 `json:"in_use_bytes"`   // held by requests in flight and waiting readers
	Warm     int64 `json:"warm_bytes"`     // idle, their pages kept for the next requests
	Maps     int64 `json:"maps"`           // buffers mapped since the mount
	Released int64 `json:"released_total"` // times an idle buffer's pages went back to the kernel
}

// Buffers reports the FUSE buffers' figures.
func (f *FS) Buffers() BufferStats {
	st := f.bufs.stats()
	return BufferStats(st)
}

// Root returns the node of the volume root.
func (f *FS) Root() fs.InodeEmbedder { return &node{fsys: f, gfid: xdr.RootGFID} }

// NodeOptions returns go-fuse options matching o.
func (f *FS) NodeOptions() *fs.Options {
	at, et, nt := f.opts.AttrTimeout, f.opts.EntryTimeout, f.opts.NegativeTimeout
	return &fs.Options{
		AttrTimeout:     &at,
		EntryTimeout:    &et,
		NegativeTimeout: &nt,
		RootStableAttr:  &fs.StableAttr{Ino: 1, Mode: syscall.S_IFDIR},
		// The mode is the bricks' bit for bit: without this go-fuse shows
		// mode 0000 as 0644 (files) or 0755 (directories).
		NullPermissions: true,
	}
}

// caller turns a FUSE request's identity into a fop.Caller. The result
// ignores the kernel's interrupts: a fop already sent may complete on the
// brick, and answering EINTR would then lie about a rename or write that
// happened (the native fuse-bridge ignores interrupts the same way). Lock
// waits handle interrupts themselves (file.setlk).
func (f *FS) caller(ctx context.Context, owner []byte) context.Context {
	return f.callerCtx(context.WithoutCancel(ctx), ctx, owner)
}

func (f *FS) callerCtx(ctx, req context.Context, owner []byte) context.Context {
	c, ok := gofuse.FromContext(req)
	if !ok {
		return ctx
	}
	return fop.WithCaller(ctx, &fop.Caller{
		Pid:     int32(c.Pid),
		UID:     c.Uid,
		GID:     c.Gid,
		Groups:  f.groups.get(c.Pid, c.Gid),
		LkOwner: owner,
	})
}

// toErrno is the one place brick errors become errnos for the kernel.
// EIO is the fallback: never ENOSYS, which would make the kernel stop
// sending that operation for the life of the mount.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	en := fop.Errno(err)
	switch en {
	case 0, syscall.ENOSYS:
		return syscall.EIO
	}
	return en
}

func (f *FS) fail(op string, err error) syscall.Errno {
	en := toErrno(err)
	switch en {
	case syscall.ENOENT, syscall.ENODATA, syscall.EEXIST, syscall.EAGAIN, syscall.ENOTEMPTY, syscall.EACCES, syscall.EPERM, syscall.EOPNOTSUPP, syscall.ERANGE, syscall.ESTALE, syscall.ENXIO, syscall.ENOTDIR, syscall.EISDIR, syscall.EINVAL, syscall.ENOSPC, syscall.ENAMETOOLONG:
		if ce := f.log.Check(zap.DebugLevel, "fop failed"); ce != nil {
			ce.Write(zap.String("fop", op), zap.Error(err))
		}
	default:
		f.log.Warn("fop failed", zap.String("fop", op), zap.Error(err))
	}
	return en
}

// slowIO is how long a read or write may take before it is logged: a VM
// notices a pause of that length.
const slowIO = time.Second

// slow logs an I/O that took slowIO or more; call it deferred with the
// start time.
func (f *FS) slow(op string, off int64, start time.Time) {
	if d := time.Since(start); d >= slowIO {
		f.log.Warn("slow I/O", zap.String("fop", op), zap.Int64("offset", off), zap.Duration("took", d))
	}
}

func newGFID() xdr.GFID {
	var g xdr.GFID
	if _, err := rand.Read(g[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	g[6] = g[6]&0x0f | 0x40
	g[8] = g[8]&0x3f | 0x80
	return g
}

// inoOf is the FUSE inode number of gfid: the brick's ia_ino (its last 8
// bytes), 1 for the root.
func inoOf(g xdr.GFID) uint64 {
	if g == xdr.RootGFID {
		return 1
	}
	return g.Ino()
}

// fuseRdev turns an iatt's ia_rdev, which GlusterFS packs as major<<32 |
// minor (ia_makedev, libglusterfs/src/glusterfs/iatt.h), into the dev_t
// encoding the kernel expects in fuse_attr.rdev (new_encode_dev).
func fuseRdev(iaRdev uint64) uint32 {
	major, minor := uint32(iaRdev>>32), uint32(iaRdev)
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

func fillAttr(a *xdr.Iatt, out *gofuse.Attr) {
	out.Ino = inoOf(a.GFID)
	out.Size = a.Size
	out.Blocks = a.Blocks
	out.Atime, out.Atimensec = uint64(a.Atime), a.AtimeNsec
	out.Mtime, out.Mtimensec = uint64(a.Mtime), a.MtimeNsec
	out.Ctime, out.Ctimensec = uint64(a.Ctime), a.CtimeNsec
	out.Mode = a.Mode
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.UID, a.GID
	out.Rdev = fuseRdev(a.Rdev)
	// The preferred I/O size the native client reports whatever the brick
	// says (fuse-bridge sets ia_blksize to its 128 KiB page size): tools
	// that size their buffers by it (cp, dd without bs=) move 128 KiB at a
	// time instead of the backend's 4 KiB.
	out.Blksize = preferredIO
}

// preferredIO is st_blksize for every file.
const preferredIO = 128 << 10

func (f *FS) entry(ctx context.Context, parent *fs.Inode, a *xdr.Iatt, out *gofuse.EntryOut) *fs.Inode {
	fillAttr(a, &out.Attr)
	out.SetEntryTimeout(f.opts.EntryTimeout)
	out.SetAttrTimeout(f.opts.AttrTimeout)
	n := &node{fsys: f, gfid: a.GFID}
	in := parent.NewInode(ctx, n, fs.StableAttr{Mode: a.Mode & syscall.S_IFMT, Ino: inoOf(a.GFID)})
	if in.Operations() == fs.InodeEmbedder(n) {
		f.inodes.Add(1) // a new one, not one the kernel knew already
	}
	return in
}

func (f *FS) hidden(parent xdr.GFID, name string) bool {
	if parent != xdr.RootGFID || !strings.HasPrefix(name, ".glusterfs-anonymous-inode-") {
		return false
	}
	return f.opts.VolumeID == "" || strings.HasSuffix(name, f.opts.VolumeID)
}

// groupCache remembers callers' supplementary groups for a short time, as
// the native client's gid-timeout does: reading /proc on every fop costs.
type groupCache struct {
	mu sync.Mutex
	m  map[uint32]groupEntry // GUARDED_BY(mu)
}

type groupEntry struct {
	groups []uint32
	at     time.Time
}

const groupTTL = 2 * time.Second

func (g *groupCache) get(pid, gid uint32) []uint32 {
	if pid == 0 {
		return nil
	}
	now := time.Now()
	g.mu.Lock()
	if e, ok := g.m[pid]; ok && now.Sub(e.at) < groupTTL {
		g.mu.Unlock()
		return e.groups
	}
	g.mu.Unlock()
	groups := readGroups(pid)
	g.mu.Lock()
	if g.m == nil || len(g.m) > 4096 {
		g.m = map[uint32]groupEntry{}
	}
	g.m[pid] = groupEntry{groups, now}
	g.mu.Unlock()
	return groups
}

func readGroups(pid uint32) []uint32 {
	fh, err := os.Open("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Groups:") {
			continue
		}
		var out []uint32
		for _, w := range strings.Fields(line[len("Groups:"):]) {
			if n, err := strconv.ParseUint(w, 10, 32); err == nil {
				out = append(out, uint32(n))
			}
		}
		return out
	}
	return nil
}

func ownerBytes(owner uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, owner)
}

// flushOwner is the lock owner of the FLUSHes in flight for one pid; n
// counts them, so one finishing does not take the owner from another.
type flushOwner struct {
	owner []byte
	n     int
}

func (f *FS) beginFlush(pid uint32, owner []byte) {
	f.ownersMu.Lock()
	defer f.ownersMu.Unlock()
	fo := f.owners[pid]
	if fo == nil {
		fo = &flushOwner{}
		f.owners[pid] = fo
	}
	fo.owner = owner
	fo.n++
}

func (f *FS) endFlush(pid uint32) {
	f.ownersMu.Lock()
	defer f.ownersMu.Unlock()
	if fo := f.owners[pid]; fo != nil {
		if fo.n--; fo.n <= 0 {
			delete(f.owners, pid)
		}
	}
}

func (f *FS) flushOwnerOf(ctx context.Context) []byte {
	c, ok := gofuse.FromContext(ctx)
	if !ok {
		return nil
	}
	f.ownersMu.Lock()
	defer f.ownersMu.Unlock()
	if fo := f.owners[c.Pid]; fo != nil {
		return fo.owner
	}
	return nil
}

// rawFS wraps go-fuse's bridge to keep FLUSH's lock owner, which the node
// API drops: the brick's locks translator releases that owner's POSIX locks
// on FLUSH, as close(2) requires.
type rawFS struct {
	gofuse.RawFileSystem
	fsys *FS
}

func (r *rawFS) Flush(cancel <-chan struct{}, in *gofuse.FlushIn) gofuse.Status {
	r.fsys.beginFlush(in.Pid, ownerBytes(in.LockOwner))
	defer r.fsys.endFlush(in.Pid)
	return r.RawFileSystem.Flush(cancel, in)
}

// MountConfig is how the kernel mount looks and behaves.
type MountConfig struct {
	// FsName is the source shown in /proc/mounts: the spec as given.
	FsName string
	// Type is the filesystem type, shown as fuse.TYPE: brickfs, or
	// glusterfs when brickfs stands in for mount.glusterfs.
	Type string
	// Flags are the VFS mount flags (MS_RDONLY, MS_NOATIME, MS_NODEV...);
	// zero means nosuid,nodev.
	Flags uintptr
	// ACL hands permission checks to the bricks' POSIX ACLs instead of the
	// kernel's default_permissions.
	ACL bool
}

// flagOptions spells mount flags as the options fusermount3 takes.
func flagOptions(flags uintptr) []string {
	var o []string
	for _, f := range []struct {
		bit  uintptr
		name string
	}{
		{syscall.MS_RDONLY, "ro"}, {syscall.MS_NOSUID, "nosuid"}, {syscall.MS_NODEV, "nodev"},
		{syscall.MS_NOEXEC, "noexec"}, {syscall.MS_NOATIME, "noatime"}, {syscall.MS_NODIRATIME, "nodiratime"},
		{syscall.MS_RELATIME, "relatime"}, {syscall.MS_STRICTATIME, "strictatime"}, {syscall.MS_SYNCHRONOUS, "sync"},
		{syscall.MS_DIRSYNC, "dirsync"},
	} {
		if flags&f.bit != 0 {
			o = append(o, f.name)
		}
	}
	return o
}

// connectionCheck is how often the /dev/fuse descriptor is polled for
// the end of the connection. A blocking poll would be woken by every FUSE
// request (the kernel wakes all waiters of the queue), a context switch per
// VM I/O; a check 4 times a second costs nothing and is soon enough.
const connectionCheck = 250 * time.Millisecond

// watchConnection closes gone when the kernel ends the FUSE connection:
// fuse_dev_poll reports POLLERR on the descriptor then, and nothing else
// when no event is asked for. It polls dup, its own duplicate of the
// descriptor (so the number cannot be reused under it), and closes it
// when it returns: once the connection ended, or stop is closed (the
// loops have returned: the last reference must go, or the kernel would
// keep a connection nobody serves).
func watchConnection(dup int, gone chan struct{}, stop <-chan struct{}, log *zap.Logger) {
	defer unix.Close(dup)
	tick := time.NewTicker(connectionCheck)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p := []unix.PollFd{{Fd: int32(dup)}}
		n, err := unix.Poll(p, 0)
		switch {
		case err == syscall.EINTR || n == 0:
			continue
		case err == nil && p[0].Revents&unix.POLLERR != 0:
			close(gone)
			return
		default:
			log.Warn("stopped watching the FUSE connection", zap.Error(err), zap.Int16("revents", p[0].Revents))
			return
		}
	}
}

// newNodeFS is go-fuse's node bridge over f's tree.
func newNodeFS(f *FS) gofuse.RawFileSystem { return fs.NewNodeFS(f.Root(), f.NodeOptions()) }

// retainedData is a WRITE's data, by the address of its first byte, and
// the calls that still read it.
type retainedData struct {
	at   uintptr
	hold *fop.DataHold
}

// retain keeps data from reuse until hold's calls have ended.
func (f *FS) retain(data []byte, hold *fop.DataHold) {
	if len(data) == 0 {
		return
	}
	f.retainMu.Lock()
	f.retained = append(f.retained, retainedData{uintptr(unsafe.Pointer(&data[0])), hold})
	f.retainMu.Unlock()
	f.nRetained.Add(1)
}

// heldIn takes the holds on data within buf: the buffer may be reused
// only once they are done.
func (f *FS) heldIn(buf []byte) []*fop.DataHold {
	if f.nRetained.Load() == 0 || cap(buf) == 0 {
		return nil
	}
	lo := uintptr(unsafe.Pointer(&buf[:1][0]))
	hi := lo + uintptr(cap(buf))
	var holds []*fop.DataHold
	f.retainMu.Lock()
	kept := f.retained[:0]
	for _, r := range f.retained {
		if r.at >= lo && r.at < hi {
			holds = append(holds, r.hold)
			continue
		}
		kept = append(kept, r)
	}
	clear(f.retained[len(kept):])
	f.retained = kept
	f.retainMu.Unlock()
	f.nRetained.Add(-int32(len(holds)))
	return holds
}
