package dht

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

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
// from) to subvolume to, as above. It reports whether it did; on false
// the file is where it was, unchanged.
func (d *DHT) placeBeside(ctx context.Context, out *fop.Fd, from, to int) bool {
	if out.Anon || dirOf(out) != nil {
		return false
	}
	g := out.GFID
	parent, name, ok := d.fileName(g)
	if !ok {
		d.log.Debug("clone destination left in place: its name is not known", zap.Stringer("gfid", g))
		return false
	}
	// Whoever migrates or renames the file takes this lock on the copy
	// holding its data (dht_migrate_file, dht_rename): nothing else
	// moves or renames it while the layer does.
	ls := d.newLocks(ctx)
	defer ls.release()
	if err := ls.inodelk(from, g, domMigrate, fop.LkWrite); err != nil {
		d.log.Debug("clone destination left in place: migration lock refused", zap.Stringer("gfid", g), zap.Error(err))
		return false
	}
	rctx := withLocksHeld(asRoot(ctx))
	hs, _, err := d.hashed(rctx, "COPY_FILE_RANGE", parent, name)
	if err != nil || hs != from {
		d.log.Debug("clone destination left in place: its name does not hash to its data's subvolume", zap.Stringer("gfid", g), zap.String("name", name), zap.Int("hashed", hs), zap.Error(err))
		return false
	}
	st, x, err := d.kid(from).Lookup(rctx, parent, name, xdr.GFID{}, withKeys(nil, false))
	if err != nil || st.GFID != g || isLinkto(st, x) || phase1(st) || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink != 1 {
		// Renamed since, linked, or already being moved.
		d.log.Debug("clone destination left in place", zap.Stringer("gfid", g), zap.String("name", name), zap.Stringer("found", st.GFID), zap.Uint32("mode", st.Mode), zap.Uint32("nlink", st.Nlink), zap.Error(err))
		return false
	}
	logf := func(step string, err error) bool {
		d.log.Info("clone destination left in place", zap.String("step", step), zap.Stringer("gfid", g), zap.String("name", name), zap.Error(err))
		return false
	}
	// The new copy: a linkto-mode file naming the old one (so readdir
	// and lookups pass it by), as the daemon makes it.
	if err := d.linkto(rctx, to, from, parent, name, g, st, nil); err != nil {
		return logf("create the new copy", err)
	}
	undoNew := func() {
		if _, err := d.kid(to).Unlink(rctx, parent, name, nil); err != nil && !missing(err) {
			d.log.Warn("an abandoned copy of a clone destination was left; a rebalance or lookup removes it", zap.Stringer("gfid", g), zap.String("on", d.subName(to)), zap.Error(err))
		}
	}
	// Phase 1: the old copy names the new one and shows the migration.
	if _, err := d.kid(from).Setxattr(rctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str(d.subName(to))), 0, internal(nil)); err != nil {
		undoNew()
		return logf("mark the old copy", err)
	}
	mode := st.Mode & 07777
	undoOld := func() {
		a := xdr.Iatt{Mode: mode}
		_, _, _, err1 := d.kid(from).Setattr(rctx, g, &a, fop.SetAttrMode, nil)
		_, err2 := d.kid(from).Removexattr(rctx, g, xattrLinkto, internal(nil))
		if err1 != nil || (err2 != nil && fop.Errno(err2) != syscall.ENODATA) {
			d.log.Warn("a clone destination could not be unmarked: it stays in migration phase 1 until a rebalance finishes it", zap.Stringer("gfid", g), zap.String("name", name), zap.NamedError("mode", err1), zap.NamedError("xattr", err2))
		}
		undoNew()
	}
	a := xdr.Iatt{Mode: mode | syscall.S_ISVTX | syscall.S_ISGID}
	if _, _, _, err := d.kid(from).Setattr(rctx, g, &a, fop.SetAttrMode, nil); err != nil {
		undoOld()
		return logf("mark the old copy", err)
	}
	// From here a change another client makes is repeated on the new
	// copy; one made before is in the old copy and seen now.
	ranges, err := d.dataRanges(rctx, from, g, maxMovedData)
	if err != nil {
		undoOld()
		if err == errTooMuchData {
			d.log.Debug("clone destination left in place: it holds data", zap.Stringer("gfid", g), zap.String("name", name))
			return false // the kernel copies into it
		}
		return logf("look for data", err)
	}
	cur, _, err := d.kid(from).Stat(rctx, g, nil)
	if err != nil {
		undoOld()
		return logf("stat the old copy", err)
	}
	// Only grown: a change repeated on the new copy since may have
	// grown it past what the stat saw.
	if nst, _, err := d.kid(to).Stat(rctx, g, nil); err != nil || nst.Size < cur.Size {
		if err == nil {
			_, _, _, err = d.kid(to).Truncate(rctx, g, cur.Size, nil)
		}
		if err != nil {
			undoOld()
			return logf("size the new copy", err)
		}
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
				break
			}
			if err == nil {
				_, _, _, err = d.kid(to).Write(rctx, dst, off, b, avoidOverwrite)
			}
			if err != nil {
				undoOld()
				return logf("copy the data", err)
			}
			off += uint64(len(b))
		}
	}
	v, _, err := d.kid(from).Getxattr(rctx, g, "", nil)
	if err != nil {
		undoOld()
		return logf("list extended attributes", err)
	}
	{
		var keep xdr.Dict
		for _, p := range v {
			if carried(p.Key) {
				keep = keep.With(p.Key, p.Value)
			}
		}
		if len(keep) > 0 {
			if _, err := d.kid(to).Setxattr(rctx, g, keep, 0, nil); err != nil {
				undoOld()
				return logf("copy extended attributes", err)
			}
		}
	}
	// Phase 2: the new copy is the file, the old one a linkto file.
	b := xdr.Iatt{Mode: mode, UID: cur.UID, GID: cur.GID}
	if _, _, _, err := d.kid(to).Setattr(rctx, g, &b, fop.SetAttrMode|fop.SetAttrUID|fop.SetAttrGID, nil); err != nil {
		undoOld()
		return logf("give the new copy the file's mode", err)
	}
	t := xdr.Iatt{Atime: cur.Atime, AtimeNsec: cur.AtimeNsec, Mtime: cur.Mtime, MtimeNsec: cur.MtimeNsec}
	if _, _, _, err := d.kid(to).Setattr(rctx, g, &t, fop.SetAttrAtime|fop.SetAttrMtime, nil); err != nil {
		d.log.Debug("clone destination's times not kept", zap.Stringer("gfid", g), zap.Error(err))
	}
	l := xdr.Iatt{Mode: syscall.S_ISVTX}
	if _, _, _, err := d.kid(from).Setattr(rctx, g, &l, fop.SetAttrMode, nil); err != nil {
		// Both copies look like the file now; put the old one back.
		undoOld()
		return logf("turn the old copy into a linkto file", err)
	}
	if _, _, _, err := d.kid(from).Truncate(rctx, g, 0, nil); err != nil {
		d.log.Warn("the old copy of a moved clone destination (now a linkto file) keeps its bytes", zap.Stringer("gfid", g), zap.Error(err))
	}
	if _, err := d.kid(to).Removexattr(rctx, g, xattrLinkto, internal(nil)); err != nil {
		d.log.Warn("the moved clone destination keeps a linkto xattr; lookups treat it as a stale linkto", zap.Stringer("gfid", g), zap.Error(err))
	}
	d.setFile(g, to)
	d.log.Info("clone destination moved beside its source so the bricks can clone",
		zap.Stringer("gfid", g), zap.String("name", name), zap.String("from", d.subName(from)), zap.String("to", d.subName(to)))
	return true
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
