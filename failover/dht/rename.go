package dht

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// errChanged says a name changed between its lookup and the locks: the
// rename starts again with what is there now.
var errChanged = errors.New("changed under the rename's locks")

// Rename renames a file or a directory as dht_rename does. Both names
// are looked up again once the locks are held (dht_rename_lock_cbk); if
// another client changed either meanwhile, the rename starts over.
func (d *DHT) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	st, rx, err := d.rename(ctx, oldParent, oldName, newParent, newName, xd)
	strip1(&st)
	return st, rx, err
}

func (d *DHT) rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	for attempt := 0; ; attempt++ {
		st, rx, err := d.renameOnce(ctx, oldParent, oldName, newParent, newName, xd)
		if !errors.Is(err, errChanged) {
			return st, rx, err
		}
		if attempt == 4 {
			return xdr.Iatt{}, nil, d.errf("RENAME", oldParent, syscall.ENOENT, "%q or %q kept changing under the rename (another client renames them)", oldName, newName)
		}
	}
}

// both resolves both names of a rename.
func (d *DHT) both(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string) (src, dst resolved, dh int, err error) {
	if src, err = d.resolve(ctx, oldParent, oldName, nil); err != nil {
		return
	}
	if dh, _, err = d.hashed(ctx, "RENAME", newParent, newName); err != nil {
		return
	}
	dst, derr := d.resolve(ctx, newParent, newName, nil)
	switch {
	case derr == nil:
	case fop.Errno(derr) == syscall.ENOENT:
		dst = resolved{cached: -1, hashed: dh}
	default:
		err = derr
	}
	return src, dst, dh, err
}

// same reports whether a name resolves as it did: the same inode, where
// it was.
func same(a, b resolved) bool {
	return a.st.GFID == b.st.GFID && a.cached == b.cached && a.dir == b.dir && a.hashed == b.hashed
}

func (d *DHT) renameOnce(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	src, dst, dh, err := d.both(ctx, oldParent, oldName, newParent, newName)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	ls := d.newLocks(ctx)
	defer ls.release()
	if !src.dir {
		// The files' migrate locks, in the order every client takes
		// them (dht_lock_order_requests: subvolume name, then gfid).
		type req struct {
			sub int
			g   xdr.GFID
			opt bool // the destination: it may be gone by now
		}
		rs := []req{{src.cached, src.st.GFID, false}}
		if dst.cached >= 0 && dst.st.GFID != src.st.GFID {
			rs = append(rs, req{dst.cached, dst.st.GFID, true})
		}
		sort.Slice(rs, func(i, j int) bool {
			if d.subName(rs[i].sub) != d.subName(rs[j].sub) {
				return d.subName(rs[i].sub) < d.subName(rs[j].sub)
			}
			return bytes.Compare(rs[i].g[:], rs[j].g[:]) < 0
		})
		for _, r := range rs {
			if err := ls.inodelk(r.sub, r.g, domMigrate, fop.LkWrite); err != nil && !(r.opt && missing(err)) {
				return xdr.Iatt{}, nil, err
			}
		}
	}
	if err := d.protect(ls, src.hashed, oldParent, oldName, dh, newParent, newName); err != nil {
		return xdr.Iatt{}, nil, err
	}
	src2, dst2, dh2, err := d.both(withLocksHeld(ctx), oldParent, oldName, newParent, newName)
	switch {
	case missing(err):
		return xdr.Iatt{}, nil, err
	case err != nil:
		return xdr.Iatt{}, nil, err
	case !same(src, src2) || dh2 != dh || !same(dst, dst2) && !(dst2.cached < 0 && !dst2.dir):
		// Another client renamed, replaced or removed a name while
		// this one waited for the locks.
		return xdr.Iatt{}, nil, errChanged
	}
	if src2.dir {
		return d.renameDir(ctx, ls, src2, dst2, dh, oldParent, oldName, newParent, newName, xd)
	}
	return d.renameFile(ctx, src2, dst2, dh, oldParent, oldName, newParent, newName, xd)
}

// renameFile follows dht_rename_create_links, dht_do_rename and
// dht_rename_unlink: when the data is not where the new name hashes, the
// new name is linked to the data where it is and a linkto file for it is
// left on the new name's hashed subvolume; stale linkto and old data
// files are removed at the end. Everything runs under dht.file.migrate on
// the files and dht.entry.sync on both names.
func (d *DHT) renameFile(ctx context.Context, src, dst resolved, dh int, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	sc, sh := src.cached, src.hashed
	dc := dst.cached
	if dst.dir {
		return xdr.Iatt{}, nil, d.errf("RENAME", newParent, syscall.EISDIR, "%q is a directory", newName)
	}
	if dc >= 0 && dst.st.GFID == src.st.GFID {
		// Two names of one file: rename(2) does nothing.
		return src.st, nil, nil
	}
	renameOn := dh
	if sc == dc {
		renameOn = sc
		if dh != dc {
			if err := d.unlinkLinkto(ctx, dh, newParent, newName); err != nil {
				return xdr.Iatt{}, nil, err
			}
		}
	} else if sc != dh {
		force := xdr.Dict{}.With("force-replace", xdr.Str("yes"))
		needLink := dh != sh || !src.linkOn
		if needLink {
			// A linkto with the old name on the new name's hashed
			// subvolume; the rename there gives it the new name.
			if err := d.linkto(ctx, dh, sc, oldParent, oldName, src.st.GFID, src.st, force); err != nil {
				return xdr.Iatt{}, nil, err
			}
		}
		if _, _, err := d.kid(sc).Link(asRoot(ctx), src.st.GFID, newParent, newName, internal(force)); err != nil {
			if needLink {
				_ = d.unlinkLinkto(ctx, dh, oldParent, oldName)
			}
			return xdr.Iatt{}, nil, err
		}
	}
	st, rx, err := d.kid(renameOn).Rename(ctx, oldParent, oldName, newParent, newName, xd)
	switch {
	case err != nil && renameOn == sc:
		return xdr.Iatt{}, nil, err
	case err != nil:
		// Only the linkto file kept its old name: the new name is
		// already linked to the data, which other clients may have
		// seen; a lookup makes the missing linkto (dht_rename_cbk).
		d.log.Warn("renaming the linkto file failed; the file is renamed, its linkto is left for a lookup to fix",
			zap.String("subvol", d.subName(renameOn)), zap.String("from", oldName), zap.String("to", newName), zap.Error(err))
		st, rx = src.st, nil
	case renameOn != sc:
		st = src.st // the reply is the linkto's; the file is the data
	case dh != sc && dc == sc:
		// Renamed in place over a file on the same subvolume: the new
		// name needs its linkto where it hashes (dht_rename_cbk).
		if err := d.linkto(ctx, dh, sc, newParent, newName, src.st.GFID, src.st, xdr.Dict{}.With("force-replace", xdr.Str("yes"))); err != nil {
			d.log.Warn("linkto file for a renamed file not made; a lookup makes it",
				zap.String("subvol", d.subName(dh)), zap.String("name", newName), zap.Error(err))
		}
	}
	// Old names left behind.
	drop := func(i int, parent xdr.GFID, name string, what string) {
		if _, err := d.kid(i).Unlink(asRoot(ctx), parent, name, internal(nil)); err != nil && !missing(err) {
			d.log.Warn("rename left a stale name behind; a lookup removes it", zap.String("what", what),
				zap.String("subvol", d.subName(i)), zap.String("name", name), zap.Error(err))
		}
	}
	if sc != dh && sc != dc {
		drop(sc, oldParent, oldName, "old name of the data")
	}
	if sh >= 0 && sh != renameOn && sh != sc {
		if err := d.unlinkLinkto(ctx, sh, oldParent, oldName); err != nil {
			d.log.Warn("rename left a linkto file behind; a lookup removes it", zap.Error(err))
		}
	}
	if dc >= 0 && dc != dh && dc != sc {
		drop(dc, newParent, newName, "replaced file's data")
	}
	d.setFileAt(src.st.GFID, sc, newParent, newName)
	return st, rx, nil
}

// protect takes dht.layout.heal (read) on each parent and dht.entry.sync
// on each name, on the subvolume the name hashes to
// (dht_protect_namespace), in a fixed order so two renames cannot
// deadlock.
func (d *DHT) protect(ls *locks, sh int, oldParent xdr.GFID, oldName string, dh int, newParent xdr.GFID, newName string) error {
	type ns struct {
		sub    int
		parent xdr.GFID
		name   string
	}
	// dht_order_rename_lock: by the hashed subvolume's name, then the
	// parent's gfid and the name, so brickfs and native clients take
	// them in the same order.
	a, b := ns{sh, oldParent, oldName}, ns{dh, newParent, newName}
	key := func(n ns) string {
		s := ""
		if n.sub >= 0 {
			s = d.subName(n.sub)
		}
		return s + "\x00" + string(n.parent[:]) + n.name
	}
	if key(b) < key(a) {
		a, b = b, a
	}
	for _, n := range []ns{a, b} {
		if n.sub < 0 {
			continue
		}
		if err := ls.inodelk(n.sub, n.parent, domLayoutHeal, fop.LkRead); err != nil {
			return err
		}
		if err := ls.entrylk(n.sub, n.parent, n.name, domEntrySync); err != nil {
			return err
		}
	}
	return nil
}

// renameDir renames a directory on every subvolume: first where the new
// name hashes, then on the others (dht_rename_dir). A directory it
// replaces must be empty on every subvolume; if a subvolume refuses, the
// ones that renamed are renamed back (dht_rename_dir_cbk), so the
// directory is never left under two names.
func (d *DHT) renameDir(ctx context.Context, ls *locks, src, dst resolved, dh int, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if dst.cached >= 0 {
		return xdr.Iatt{}, nil, d.errf("RENAME", newParent, syscall.ENOTDIR, "%q is not a directory", newName)
	}
	v := d.view()
	for _, i := range v.live {
		if !v.kids[i].Up() {
			return xdr.Iatt{}, nil, d.errf("RENAME", oldParent, syscall.ENOTCONN, "%s is down; a directory is renamed only while every replica set is up", v.names[i])
		}
	}
	// Each directory must have a copy on every subvolume, or a rename
	// that skips a subvolume splits it (a lookup makes missing copies
	// before the locks; one that still misses could not be made).
	for _, r := range []resolved{src, dst} {
		if !r.dir {
			continue
		}
		if ino, ok := d.get(r.st.GFID); ok && ino.lay != nil && (ino.lay.missing > 0 || ino.lay.unknown > 0) {
			return xdr.Iatt{}, nil, d.errf("RENAME", r.st.GFID, syscall.EIO, "directory %s has no copy on some subvolume (layout %s) and one could not be made; a directory is renamed only when whole", r.st.GFID, ino.lay)
		}
	}
	if dst.dir && dst.st.GFID != src.st.GFID {
		errs := d.all(ctx, v, func(ctx context.Context, i int) error {
			names, err := d.linktosOnly(ctx, i, dst.st.GFID)
			if err == nil && len(names) > 0 {
				err = d.errf("RENAME", dst.st.GFID, syscall.ENOTEMPTY, "directory not empty")
			}
			if missing(err) {
				return nil
			}
			return err
		})
		if err := pickErr(errs); err != nil {
			return xdr.Iatt{}, nil, err
		}
	}
	st, rx, err := d.kid(dh).Rename(ctx, oldParent, oldName, newParent, newName, xd)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	errs := d.all(ctx, v, func(ctx context.Context, i int) error {
		if i == dh {
			return nil
		}
		_, _, err := d.kid(i).Rename(ctx, oldParent, oldName, newParent, newName, xd)
		return err
	})
	if err := pickErr(errs); err != nil {
		d.log.Warn("renaming a directory failed on a subvolume; renaming it back where it was renamed",
			zap.String("from", oldName), zap.String("to", newName), zap.Error(err))
		var dl *layout
		if dst.dir {
			if ino, ok := d.get(dst.st.GFID); ok {
				dl = ino.lay
			}
		}
		d.all(ctx, v, func(ctx context.Context, i int) error {
			if i != dh && errs[i] != nil {
				return nil
			}
			_, _, berr := d.kid(i).Rename(asRoot(ctx), newParent, newName, oldParent, oldName, internal(nil))
			if berr != nil && !missing(berr) {
				d.log.Error("a directory is left under its new name on a subvolume; rename it back by hand",
					zap.String("subvol", d.subName(i)), zap.String("from", oldName), zap.String("to", newName), zap.Error(berr))
				return berr
			}
			if dst.dir {
				// The empty directory the rename replaced there comes
				// back, with its gfid, owner, mode and layout slice.
				rctx := asRoot(ctx)
				if _, _, merr := d.kid(i).Mkdir(rctx, newParent, newName, dst.st.Mode&07777, 0, dst.st.GFID, internal(nil)); merr != nil {
					d.log.Error("a directory replaced by a failed rename could not be made again; make it again by hand",
						zap.String("subvol", d.subName(i)), zap.String("name", newName), zap.Error(merr))
					return merr
				}
				a := xdr.Iatt{UID: dst.st.UID, GID: dst.st.GID, Mode: dst.st.Mode}
				_, _, _, _ = d.kid(i).Setattr(rctx, dst.st.GFID, &a, fop.SetAttrUID|fop.SetAttrGID|fop.SetAttrMode, nil)
				if dl != nil && i < len(dl.s) && dl.s[i].has {
					_, _ = d.kid(i).Setxattr(rctx, dst.st.GFID, xdr.Dict{}.With(xattrLayout, xdr.Ptr(dl.s[i].encode())), 0, internal(nil))
				}
			}
			return nil
		})
		return xdr.Iatt{}, nil, err
	}
	d.setDir(src.st.GFID, newParent, newName, nil)
	if dst.dir {
		d.forget(dst.st.GFID)
	}
	return st, rx, nil
}
