package dht

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// A file the rebalance daemon migrates (dht_migrate_file, GlusterFS 10.3)
// goes through two phases that clients see in the mode bits of its copies:
//
//   - phase 1: the daemon created the new copy (mode 01000, the linkto
//     mode) on the destination, set the source's linkto xattr to name the
//     destination, and turned on the sticky and set-group-id bits of the
//     source while it copies the data. The source holds the file; a change
//     written to it may land where the daemon already copied, so the
//     client repeats it on the destination (dht_writev_cbk and its
//     siblings for truncate, fallocate, discard and zerofill), with
//     trusted.glusterfs.protect.writes: posix acts on it for writes (and
//     copy_file_range), marking the destination so the daemon's later
//     writes of older data (glusterfs.avoid.overwrite) fail and it
//     abandons the migration, the source staying the file; the other
//     changes carry it harmlessly, as a write is what the daemon copies;
//   - phase 2: the copy is done, the destination holds the file, and the
//     source is an empty linkto file: fds follow the file (follow).
//
// The two bits are the daemon's: they are stripped from every iatt the
// layer answers with (DHT_STRIP_PHASE1_FLAGS).

// xattrProtectWrites marks a change a client repeated on the destination
// of a migration in progress.
const xattrProtectWrites = "trusted.glusterfs.protect.writes"

// phase1 reports whether a file's iatt shows it in migration phase 1.
func phase1(st xdr.Iatt) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Mode&syscall.S_ISVTX != 0 && st.Mode&syscall.S_ISGID != 0
}

// strip1 removes the phase-1 bits from an iatt answered upwards.
func strip1(st *xdr.Iatt) {
	if phase1(*st) {
		st.Mode &^= syscall.S_ISVTX | syscall.S_ISGID
	}
}

// withExtra returns xd plus extra's keys (xd itself when extra is empty).
func withExtra(xd, extra xdr.Dict) xdr.Dict {
	if len(extra) == 0 {
		return xd
	}
	out := append(xdr.Dict{}, xd...)
	for _, p := range extra {
		out = out.With(p.Key, p.Value)
	}
	return out
}

// protectWrites is the extra xdata of a change repeated on a migration's
// destination.
var protectWrites = xdr.Dict{}.With(xattrProtectWrites, xdr.Uint(1))

// errSourceGone says the source of a migration vanished between a change
// and the look at its linkto xattr: the daemon finished (phase 2) and
// removed it, so the change must be made again where the file is now.
var errSourceGone = &fop.OpError{Brick: "distribute", Fop: "GETXATTR", Errno: syscall.ESTALE, Err: errors.New("the source of a migration is gone: the migration ended")}

// dstWait bounds how long a change waits for the volfile naming the
// subvolume a file is being migrated to (the daemon may have it first).
var dstWait = 5 * time.Second

// migrationDst returns the subvolume file g on subvolume src is being
// migrated to (its linkto xattr there), or -1 when it names none: the
// migration was abandoned in the meantime. A source gone is errSourceGone;
// a destination this mount does not know is waited for (the new volfile
// is on its way) and then an error (dht_rebalance_inprogress_task fails
// the fop too).
func (d *DHT) migrationDst(ctx context.Context, g xdr.GFID, src int) (int, error) {
	v, _, err := d.kid(src).Getxattr(asRoot(ctx), g, xattrLinkto, nil)
	switch {
	case err != nil && fop.Errno(err) == syscall.ENODATA:
		return -1, nil
	case err != nil && missing(err):
		return -1, errSourceGone
	case err != nil:
		return -1, err
	}
	name, _ := v.Bytes(xattrLinkto)
	for deadline := time.Now().Add(dstWait); ; {
		t := d.linktoTarget(v)
		switch {
		case t == src:
			return -1, nil
		case t >= 0:
			return t, nil
		case len(name) == 0:
			return -1, nil
		case time.Now().After(deadline) || ctx.Err() != nil:
			return -1, d.errf("WRITE", g, syscall.EIO, "the file is being migrated to %s, which this mount does not know: the volfile that adds it has not arrived; check that glusterd is reachable", strings.TrimRight(string(name), "\x00"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// phase1Key is the fd context of the destination fd a file fd repeats
// phase-1 changes on.
type phase1Key struct{}

// dstFd returns the fd on subvolume t that f's changes are repeated on:
// an anonymous fd for an anonymous one (shard's block I/O), else one
// opened there (as root: the destination has the linkto mode until the
// migration ends) and kept in f until it is released or follows. A kept
// fd whose file was unlinked since (a migration abandoned, then started
// again with a new destination: the daemon empties an abandoned one, and
// a new start makes it again) is replaced. REQUIRES f's follow lock.
func (d *DHT) dstFd(ctx context.Context, f *fop.Fd, t int) (*fop.Fd, error) {
	if f.Anon {
		return &fop.Fd{GFID: f.GFID, Anon: true}, nil
	}
	if v, ok := f.Ctx(phase1Key{}); ok {
		if m := v.(*moved); m.sub == t {
			st, _, err := d.kid(t).Fstat(asRoot(ctx), m.fd, nil)
			if err == nil && st.Nlink > 0 {
				return m.fd, nil
			}
		}
	}
	nf, _, err := d.kid(t).Open(asRoot(ctx), f.GFID, f.Flags&^uint32(syscall.O_CREAT|syscall.O_EXCL|syscall.O_TRUNC|syscall.O_APPEND), nil)
	if err != nil {
		return nil, err
	}
	d.dropDstFd(ctx, f)
	f.SetCtx(phase1Key{}, &moved{sub: t, fd: nf})
	d.log.Info("an open file is being migrated by rebalance; its changes are repeated on the new copy",
		zap.Stringer("gfid", f.GFID), zap.String("to", d.subName(t)))
	return nf, nil
}

// dropDstFd releases f's phase-1 destination fd, if any.
func (d *DHT) dropDstFd(ctx context.Context, f *fop.Fd) {
	if v, ok := f.Ctx(phase1Key{}); ok {
		f.DelCtx(phase1Key{})
		m := v.(*moved)
		_ = d.kid(m.sub).Release(context.WithoutCancel(ctx), m.fd)
	}
}

// mirror repeats on the destination a change the source (subvolume src,
// in migration phase 1) took, under f's follow lock (so its destination
// fd is not released under it). A destination gone in the meantime means
// the migration was abandoned: the source keeps the file, with the
// change. redo reports that the source is gone instead: the migration
// ended, and the change must be made again where the file is now.
func (d *DHT) mirror(ctx context.Context, f *fop.Fd, src int, fn func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error)) (redo bool, err error) {
	t, err := d.migrationDst(ctx, f.GFID, src) // not under the lock: it may wait
	if err == errSourceGone {
		return true, nil
	}
	if err != nil || t < 0 {
		return false, err
	}
	defer d.lockFollow(f.GFID)()
	df, err := d.dstFd(ctx, f, t)
	if err != nil {
		if missing(err) {
			return false, nil
		}
		return false, d.errf("FD", f.GFID, fop.Errno(err), "the file is being migrated to %s and its new copy could not be opened: %v", d.subName(t), err)
	}
	if _, err := fn(t, df, protectWrites); err != nil && !missing(err) {
		return false, err
	}
	return false, nil
}

// mirrorGFID is mirror for a change made by gfid (truncate). A source
// gone answers ESTALE, which makes onFile find the file and redo it.
func (d *DHT) mirrorGFID(ctx context.Context, g xdr.GFID, src int, fn func(i int, extra xdr.Dict) error) error {
	t, err := d.migrationDst(ctx, g, src)
	if err != nil || t < 0 {
		return err
	}
	if err := fn(t, protectWrites); err != nil && !missing(err) {
		return err
	}
	return nil
}
