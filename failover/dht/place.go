package dht

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// A copy between two files on different subvolumes cannot be a brick's
// COPY_FILE_RANGE, so no reflink. When the destination holds no data yet
// (a clone being made: qemu-img convert -C, cp, shard's blocks of a
// clone), the layer first moves the empty destination to the source's
// subvolume, the way the rebalance daemon migrates a file
// (dht_migrate_file), so the copy stays on one subvolume and the bricks
// clone the extents. The file ends as a rename leaves one: its data on
// the source's subvolume, a linkto file under the name on the subvolume
// the name hashes to. Other clients see a migration, which they follow
// (phase 1: they repeat their changes on the new copy; phase 2: their fds
// follow the file), native clients as this layer does.
//
// Only a file whose name hashes to where its data is (no linkto already),
// with one name, and at most maxMovedData of data in it is moved (its data
// copied); anything else, and any failure, leaves the file where it is and
// the copy to the kernel.

// maxMovedData is the most data a destination may hold to be moved.
const maxMovedData = 1 << 20

// avoidOverwrite makes a brick refuse a write to a migration's new copy
// once a client repeated a change there (GF_AVOID_OVERWRITE).
var avoidOverwrite = xdr.Dict{}.With("glusterfs.avoid.overwrite", xdr.Int(1))

var errTooMuchData = errors.New("the file holds more data than a move copies")

// dataRanges lists the data ranges [start, end) of file g on subvolume i
// (SEEK_DATA and SEEK_HOLE), errTooMuchData past limit bytes.
func (d *DHT) dataRanges(ctx context.Context, i int, g xdr.GFID, limit uint64) ([][2]uint64, error) {
	f := fop.AnonFd(g, uint32(syscall.O_RDONLY))
	var out [][2]uint64
	var total, off uint64
	for {
		start, _, err := d.kid(i).Seek(ctx, f, off, fop.SeekData, nil)
		if fop.Errno(err) == syscall.ENXIO {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		end, _, err := d.kid(i).Seek(ctx, f, start, fop.SeekHole, nil)
		if err != nil {
			return nil, err
		}
		if end <= start {
			return nil, fmt.Errorf("SEEK_HOLE from %d answered %d", start, end)
		}
		if total += end - start; total > limit {
			return nil, errTooMuchData
		}
		out = append(out, [2]uint64{start, end})
		off = end
	}
}

// placeBeside moves the destination of a copy (fd out, data on subvolume
// from) to subvolume to, as above. It reports whether the file is on to
// now; on false it is where it was, unchanged. Copies into one file on
// this mount move it once (moveMu); a file found not movable is not tried
// again for a while (unmovable).
func (d *DHT) placeBeside(ctx context.Context, out *fop.Fd, from, to int) bool {
	if out.Anon || dirOf(out) != nil {
		return false
	}
	g := out.GFID
	unlock := d.lockMove(g)
	defer unlock()
	if i, dir, err := d.where(ctx, g); err == nil && !dir && i == to {
		return true // another copy into it moved it meanwhile
	}
	if d.unmovable(g) {
		return false
	}
	moved, why, lasting := d.move(context.WithoutCancel(ctx), g, from, to)
	switch {
	case moved:
	case lasting:
		// Not tried again for a while: each try costs a lookup per call.
		d.markUnmovable(g)
		d.log.Info("clone destination left in place: the kernel copies into it (not shared)", zap.Stringer("gfid", g), zap.String("why", why))
	default:
		d.log.Debug("clone destination left in place for this call", zap.Stringer("gfid", g), zap.String("why", why))
	}
	return moved
}

// keyOpenFdCount asks a brick's lookup for the number of fds open on the
// file, from every client (GLUSTERFS_OPEN_FD_COUNT).
const keyOpenFdCount = "glusterfs.open-fd-count"

// move is placeBeside's move; why says what kept the file in place, and
// lasting whether that will still hold for the next call.
func (d *DHT) move(ctx context.Context, g xdr.GFID, from, to int) (moved bool, why string, lasting bool) {
	parent, name, ok := d.fileName(g)
	if !ok {
		return false, "its name is not known", true
	}
	rctx := asRoot(ctx)
	// What can be seen without touching the file comes first: a file
	// that cannot move is left alone by every other client.
	st, x, err := d.kid(from).Lookup(rctx, parent, name, xdr.GFID{}, withKeys(xdr.Dict{}.With(keyOpenFdCount, xdr.Uint(1)), false))
	switch {
	case err != nil:
		return false, "lookup: " + err.Error(), false
	case st.GFID != g:
		return false, "its name is another file's now", true
	case isLinkto(st, x) || phase1(st) || st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return false, "it is a linkto file or being migrated", false
	case st.Nlink != 1:
		return false, "it has more than one name", true
	case st.Blocks*512 > maxMovedData:
		return false, "it holds data", true
	}
	if n, ok := x.Uint(keyOpenFdCount); !ok || int(n) > d.opens(g) {
		// Maybe only a release on its way (qemu-img's create-time fd).
		return false, fmt.Sprintf("another client may have it open (%d fds on the brick (%v), %d of this mount)", n, ok, d.opens(g)), false
	}
	// Whoever migrates or renames the file takes this lock on the copy
	// holding its data (dht_migrate_file, dht_rename): nothing else
	// moves or renames it while the layer does. Not waited for: a file
	// being migrated or renamed is left to the kernel's copy.
	ls := d.newLocks(ctx)
	defer ls.release()
	if err := ls.tryInodelk(from, g, domMigrate); err != nil {
		return false, "the migration lock is held: " + err.Error(), false
	}
	rctx = withLocksHeld(rctx)
	if hs, _, err := d.hashed(rctx, "COPY_FILE_RANGE", parent, name); err != nil || hs != from {
		return false, "its name does not hash to its data's subvolume", err == nil
	}
	failed := func(step string, err error) (bool, string, bool) {
		d.log.Info("clone destination left in place", zap.String("step", step), zap.Stringer("gfid", g), zap.String("name", name), zap.Error(err))
		return false, step, true
	}
	// The new copy: a linkto-mode file naming the old one (so readdir
	// and lookups pass it by), as the daemon makes it, sized before the
	// old one shows the migration (a truncate from then on is repeated
	// on it).
	if err := d.linkto(rctx, to, from, parent, name, g, st, nil); err != nil {
		return failed("create the new copy", err)
	}
	undoNew := func() {
		d.forget(g) // fds that followed early find the file again
		if st, _, err := d.kid(to).Lookup(rctx, parent, name, xdr.GFID{}, nil); err != nil || st.GFID != g {
			return // not ours (a layout change since), or gone
		}
		if _, err := d.kid(to).Unlink(rctx, parent, name, nil); err != nil && !missing(err) {
			d.log.Warn("an abandoned copy of a clone destination was left; remove it from the bricks of "+d.subName(to), zap.Stringer("gfid", g), zap.String("name", name), zap.Error(err))
		}
	}
	if _, _, _, err := d.kid(to).Truncate(rctx, g, st.Size, nil); err != nil {
		undoNew()
		return failed("size the new copy", err)
	}
	// Phase 1: the old copy names the new one and shows the migration.
	if _, err := d.kid(from).Setxattr(rctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str(d.subName(to))), 0, internal(nil)); err != nil {
		undoNew()
		return failed("mark the old copy", err)
	}
	mode := st.Mode & 07777
	undoOld := func() {
		// The marks off, unless a chmod since took them off already (and
		// set the mode the file keeps).
		var err1 error
		if now, _, err := d.kid(from).Stat(rctx, g, nil); err != nil {
			err1 = err
		} else if phase1(now) {
			a := xdr.Iatt{Mode: now.Mode&07777&^(syscall.S_ISVTX|syscall.S_ISGID) | mode&(syscall.S_ISVTX|syscall.S_ISGID)}
			_, _, _, err1 = d.kid(from).Setattr(rctx, g, &a, fop.SetAttrMode, nil)
		}
		_, err2 := d.kid(from).Removexattr(rctx, g, xattrLinkto, internal(nil))
		if err1 != nil || (err2 != nil && fop.Errno(err2) != syscall.ENODATA) {
			d.log.Warn("a clone destination could not be unmarked: it shows a migration in progress (mode bits 06000, a linkto xattr); restore its mode with chmod", zap.Stringer("gfid", g), zap.String("name", name), zap.NamedError("mode", err1), zap.NamedError("xattr", err2))
		}
		undoNew()
	}
	a := xdr.Iatt{Mode: mode | syscall.S_ISVTX | syscall.S_ISGID}
	if _, _, _, err := d.kid(from).Setattr(rctx, g, &a, fop.SetAttrMode, nil); err != nil {
		undoOld()
		return failed("mark the old copy", err)
	}
	// From here a change another client makes is repeated on the new
	// copy; one made before is in the old copy and seen now.
	ranges, err := d.dataRanges(rctx, from, g, maxMovedData)
	if err != nil {
		undoOld()
		if err == errTooMuchData {
			return false, "it holds data", true
		}
		return failed("look for data", err)
	}
	// What is there (qemu-img writes the first 4 KiB of a new image to
	// probe O_DIRECT alignment) is copied as the daemon copies: a write
	// another client repeated on the new copy meanwhile makes this one
	// fail (glusterfs.avoid.overwrite), and the move is abandoned.
	src, dst := fop.AnonFd(g, uint32(syscall.O_RDONLY)), fop.AnonFd(g, uint32(syscall.O_RDWR))
	for _, r := range ranges {
		for off := r[0]; off < r[1]; {
			b, _, err := d.kid(from).Read(rctx, src, off, uint32(min(r[1]-off, 1<<20)), nil)
			if err == nil && len(b) == 0 {
				err = errors.New("the old copy ended early: it was truncated")
			}
			if err == nil {
				_, _, _, err = d.kid(to).Write(rctx, dst, off, b, avoidOverwrite)
			}
			if err != nil {
				undoOld()
				return failed("copy the data", err)
			}
			off += uint64(len(b))
		}
	}
	v, _, err := d.kid(from).Getxattr(rctx, g, "", nil)
	if err != nil {
		undoOld()
		return failed("list extended attributes", err)
	}
	keep, acls := carriedXattrs(v)
	if len(keep) > 0 {
		if _, err := d.kid(to).Setxattr(rctx, g, keep, 0, nil); err != nil {
			undoOld()
			return failed("copy extended attributes", err)
		}
	}
	// The last look before phase 2: the old copy still shows this
	// migration, has one name, under the same name, and the two copies
	// have one size; its mode, owner and times now are the file's.
	cur, cx, err := d.kid(from).Lookup(rctx, parent, name, xdr.GFID{}, withKeys(nil, false))
	if err == nil {
		nst, _, nerr := d.kid(to).Stat(rctx, g, nil)
		switch {
		case nerr != nil:
			err = nerr
		case cur.GFID != g || !phase1(cur) || cur.Nlink != 1 || d.linktoTarget(cx) != to:
			err = errors.New("the file was renamed, linked, removed or changed mode during the move")
		case nst.Size != cur.Size:
			err = fmt.Errorf("the copies' sizes differ (%d, %d): the file changed during the move", cur.Size, nst.Size)
		}
	}
	if err == nil {
		// This layer does not repeat xattr changes on the new copy in
		// phase 1 (a shard size update among them): any since the copy
		// abandons the move.
		var v2 xdr.Dict
		if v2, _, err = d.kid(from).Getxattr(rctx, g, "", nil); err == nil {
			if k2, a2 := carriedXattrs(v2); !sameXattrs(k2, keep) || !sameXattrs(a2, acls) {
				err = errors.New("its extended attributes changed during the move")
			}
		}
	}
	if err != nil {
		undoOld()
		return failed("check the file before the switch", err)
	}
	// Phase 2: the new copy is the file, the old one a linkto file.
	b := xdr.Iatt{Mode: cur.Mode&07777&^(syscall.S_ISVTX|syscall.S_ISGID) | mode&(syscall.S_ISVTX|syscall.S_ISGID), UID: cur.UID, GID: cur.GID}
	if _, _, _, err := d.kid(to).Setattr(rctx, g, &b, fop.SetAttrMode|fop.SetAttrUID|fop.SetAttrGID, nil); err != nil {
		undoOld()
		return failed("give the new copy the file's mode", err)
	}
	if len(acls) > 0 {
		if _, err := d.kid(to).Setxattr(rctx, g, acls, 0, nil); err != nil {
			undoOld()
			return failed("copy the ACLs", err)
		}
	}
	t := xdr.Iatt{Atime: cur.Atime, AtimeNsec: cur.AtimeNsec, Mtime: cur.Mtime, MtimeNsec: cur.MtimeNsec}
	if _, _, _, err := d.kid(to).Setattr(rctx, g, &t, fop.SetAttrAtime|fop.SetAttrMtime, nil); err != nil {
		d.log.Debug("clone destination's times not kept", zap.Stringer("gfid", g), zap.Error(err))
	}
	l := xdr.Iatt{Mode: syscall.S_ISVTX}
	if _, _, _, err := d.kid(from).Setattr(rctx, g, &l, fop.SetAttrMode, nil); err != nil {
		// Both copies look like the file now; put the old one back.
		undoOld()
		return failed("turn the old copy into a linkto file", err)
	}
	d.setFileAt(g, to, parent, name) // this mount's fops go to the file now
	if _, _, _, err := d.kid(from).Truncate(rctx, g, 0, nil); err != nil {
		d.log.Warn("the old copy of a moved clone destination (now a linkto file) keeps its bytes", zap.Stringer("gfid", g), zap.Error(err))
	}
	for _, k := range []string{xattrLinkto, xattrProtectWrites} {
		if _, err := d.kid(to).Removexattr(rctx, g, k, internal(nil)); err != nil && fop.Errno(err) != syscall.ENODATA {
			d.log.Warn("the moved clone destination keeps an xattr of the move", zap.String("xattr", k), zap.Stringer("gfid", g), zap.Error(err))
		}
	}
	d.log.Info("clone destination moved beside its source so the bricks can clone",
		zap.Stringer("gfid", g), zap.String("name", name), zap.String("from", d.subName(from)), zap.String("to", d.subName(to)))
	return true, "", false
}

// moveLock serializes the moves of one file.
type moveLock struct {
	mu    sync.Mutex
	users int // GUARDED_BY(DHT.moveMu)
}

// lockMove serializes this mount's moves of file g; the returned func
// unlocks.
func (d *DHT) lockMove(g xdr.GFID) func() {
	d.moveMu.Lock()
	if d.moving == nil {
		d.moving = map[xdr.GFID]*moveLock{}
	}
	l := d.moving[g]
	if l == nil {
		l = &moveLock{}
		d.moving[g] = l
	}
	l.users++
	d.moveMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.moveMu.Lock()
		if l.users--; l.users == 0 {
			delete(d.moving, g)
		}
		d.moveMu.Unlock()
	}
}

// unmovableFor is how long a file found not movable is not tried again:
// each try of a file with data would cost a lookup per copy call.
const unmovableFor = time.Minute

func (d *DHT) unmovable(g xdr.GFID) bool {
	d.moveMu.Lock()
	defer d.moveMu.Unlock()
	t, ok := d.notMovable[g]
	return ok && time.Since(t) < unmovableFor
}

func (d *DHT) markUnmovable(g xdr.GFID) {
	d.moveMu.Lock()
	defer d.moveMu.Unlock()
	if d.notMovable == nil || len(d.notMovable) >= 4096 {
		d.notMovable = map[xdr.GFID]time.Time{}
	}
	d.notMovable[g] = time.Now()
}

// opens is how many fds this layer has open on file g.
func (d *DHT) opens(g xdr.GFID) int {
	d.moveMu.Lock()
	defer d.moveMu.Unlock()
	return d.openFds[g]
}

// countOpen counts an fd of file g opened (+1) or released (-1).
func (d *DHT) countOpen(g xdr.GFID, n int) {
	d.moveMu.Lock()
	defer d.moveMu.Unlock()
	if d.openFds == nil {
		d.openFds = map[xdr.GFID]int{}
	}
	if d.openFds[g] += n; d.openFds[g] <= 0 {
		delete(d.openFds, g)
	}
}

// notCarried are the xattr prefixes a moved file does not take along, as
// the rebalance daemon leaves them: the replica set's and the layer's own,
// the brick's bookkeeping, and virtual keys.
var notCarried = []string{"trusted.afr.", "trusted.glusterfs.dht", "trusted.gfid", "trusted.pgfid.",
	"trusted.glusterfs.mdata", "trusted.glusterfs.protect.writes", "trusted.bit-rot.", "glusterfs.", "user.brickfs."}

// carried reports whether a moved file takes xattr key along (user
// xattrs, ACLs, security labels, shard's block size and file size).
func carried(key string) bool {
	for _, p := range notCarried {
		if strings.HasPrefix(key, p) {
			return false
		}
	}
	return true
}

// carriedXattrs splits a file's xattrs into those a move carries before
// the switch and its ACLs (set after the new copy has its mode: they
// rewrite the mode bits).
func carriedXattrs(v xdr.Dict) (keep, acls xdr.Dict) {
	for _, p := range v {
		switch {
		case strings.HasPrefix(p.Key, "system.posix_acl_"):
			acls = acls.With(p.Key, p.Value)
		case carried(p.Key):
			keep = keep.With(p.Key, p.Value)
		}
	}
	return keep, acls
}

// sameXattrs reports whether a and b hold the same keys and values, in
// any order.
func sameXattrs(a, b xdr.Dict) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]string{}
	for _, p := range a {
		m[p.Key] = fmt.Sprint(p.Value)
	}
	for _, p := range b {
		if v, ok := m[p.Key]; !ok || v != fmt.Sprint(p.Value) {
			return false
		}
	}
	return true
}

// fileName returns the parent and name file g was last created or looked
// up by, when the table knows it.
func (d *DHT) fileName(g xdr.GFID) (xdr.GFID, string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ino, ok := d.inodes[g]
	if !ok || ino.dir || ino.name == "" {
		return xdr.GFID{}, "", false
	}
	return ino.parent, ino.name, true
}
