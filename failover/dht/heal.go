package dht

import (
	"context"
	"errors"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// DHT's lock domains (dht-common.h).
const (
	domLayoutHeal = "dht.layout.heal"
	domEntrySync  = "dht.entry.sync"
	domMigrate    = "dht.file.migrate"

	entrylkRead  = 0 // ENTRYLK_RDLCK
	entrylkWrite = 1 // ENTRYLK_WRLCK
)

// asRoot runs a fop as an internal frame (root), keeping the caller's pid.
func asRoot(ctx context.Context) context.Context { return fop.AsInternal(ctx) }

// owned is asRoot with a lock owner of its own: each of the layer's lock
// sequences is one frame in GlusterFS.
func owned(ctx context.Context) context.Context { return fop.WithNewLkOwner(ctx) }

// underLocks marks the context of lookups an operation makes while it
// holds DHT's namespace locks: they must not heal, since a heal takes
// the same locks with another owner and would wait for itself.
type underLocks struct{}

func withLocksHeld(ctx context.Context) context.Context {
	return context.WithValue(ctx, underLocks{}, true)
}

func holdsLocks(ctx context.Context) bool { return ctx.Value(underLocks{}) != nil }

// locks is a set of held locks, released in reverse order.
type locks struct {
	d     *DHT
	ctx   context.Context // owned: the lock owner of the whole set
	undo  []func(ctx context.Context) error
	names []string
}

func (d *DHT) newLocks(ctx context.Context) *locks { return &locks{d: d, ctx: owned(ctx)} }

// inodelk takes a whole-file inode lock of type typ in domain on
// subvolume i, waiting for it. The wait is not cut short by the caller's
// context: a request abandoned at a brick would be granted later with
// nobody to release it.
func (ls *locks) inodelk(i int, g xdr.GFID, domain string, typ uint32) error {
	fl := xdr.Flock{Type: typ}
	if _, err := ls.d.kid(i).Inodelk(context.WithoutCancel(ls.ctx), g, domain, fop.LkSetW, fl, nil); err != nil {
		return err
	}
	ls.undo = append(ls.undo, func(ctx context.Context) error {
		ul := xdr.Flock{Type: fop.LkUnlock}
		return fop.ErrOnly(ls.d.kid(i).Inodelk(ctx, g, domain, fop.LkSet, ul, nil))
	})
	ls.names = append(ls.names, domain)
	return nil
}

// tryInodelk takes a whole-file write inode lock in domain on subvolume
// i if no one holds it (EAGAIN otherwise).
func (ls *locks) tryInodelk(i int, g xdr.GFID, domain string) error {
	fl := xdr.Flock{Type: fop.LkWrite}
	if _, err := ls.d.kid(i).Inodelk(context.WithoutCancel(ls.ctx), g, domain, fop.LkSet, fl, nil); err != nil {
		return err
	}
	ls.undo = append(ls.undo, func(ctx context.Context) error {
		ul := xdr.Flock{Type: fop.LkUnlock}
		return fop.ErrOnly(ls.d.kid(i).Inodelk(ctx, g, domain, fop.LkSet, ul, nil))
	})
	ls.names = append(ls.names, domain)
	return nil
}

// entrylk takes a write entry lock on parent/name in domain on subvolume
// i, waiting for it (dht_blocking_entrylk_rec), with the wait not cut
// short (see inodelk).
func (ls *locks) entrylk(i int, parent xdr.GFID, name, domain string) error {
	if _, err := ls.d.kid(i).Entrylk(context.WithoutCancel(ls.ctx), parent, name, domain, fop.EntrylkLock, entrylkWrite, nil); err != nil {
		return err
	}
	ls.undo = append(ls.undo, func(ctx context.Context) error {
		return fop.ErrOnly(ls.d.kid(i).Entrylk(ctx, parent, name, domain, fop.EntrylkUnlock, entrylkWrite, nil))
	})
	ls.names = append(ls.names, domain)
	return nil
}

// release drops every lock held, newest first.
func (ls *locks) release() {
	ctx := context.WithoutCancel(ls.ctx)
	for k := len(ls.undo) - 1; k >= 0; k-- {
		if err := ls.undo[k](ctx); err != nil {
			ls.d.log.Warn("unlocking failed; the bricks release the lock when this client disconnects",
				zap.String("domain", ls.names[k]), zap.Error(err))
		}
	}
	ls.undo, ls.names = nil, nil
}

// weights returns each subvolume's size in MiB (statfs), or nil when
// weighting is off or a subvolume did not answer.
func (d *DHT) weights(ctx context.Context, v *view, usable []bool) []uint64 {
	if o, _ := d.options(); !o.Weighted {
		return nil
	}
	w := make([]uint64, v.n())
	errs := d.all(ctx, v, func(ctx context.Context, i int) error {
		if i >= len(usable) || !usable[i] {
			return nil
		}
		st, _, err := d.kid(i).Statfs(ctx, xdr.RootGFID, nil)
		if err == nil {
			w[i] = (st.Blocks*st.Bsize + 1<<20 - 1) >> 20
		}
		return err
	})
	for _, i := range v.live {
		if i < len(usable) && usable[i] && (errs[i] != nil || w[i] == 0) {
			return nil
		}
	}
	return w
}

// healCopies makes a directory's missing copies (dht_selfheal_dir_mkdir):
// under the parent's heal read lock and the name's entry lock on the
// subvolume the name hashes to, it looks the name up again and makes the
// directory, with the same gfid, owner and mode, only where it is missing
// and only while the hashed copy (which rmdir removes last and mkdir
// makes first) is there: a directory being removed is not brought back.
func (d *DHT) healCopies(ctx context.Context, parent xdr.GFID, name string, g xdr.GFID) error {
	pl, err := d.layoutOf(ctx, parent)
	if err != nil {
		return err
	}
	hs := pl.search(d.hashOf(name))
	if hs < 0 {
		return errors.New("the name hashes to no subvolume")
	}
	ls := d.newLocks(ctx)
	defer ls.release()
	if err := ls.inodelk(hs, parent, domLayoutHeal, fop.LkRead); err != nil {
		return err
	}
	if err := ls.entrylk(hs, parent, name, domEntrySync); err != nil {
		return err
	}
	v := d.view()
	as := d.lookupAll(ctx, v, parent, name, xdr.GFID{}, nil, true)
	h := as[hs]
	if h.err != nil || !isDir(h.st) || h.st.GFID != g {
		return errors.New("the hashed copy is gone or changed: the directory is being removed or replaced")
	}
	st := h.st
	d.log.Info("directory missing on a subvolume; creating it", zap.Stringer("gfid", g), zap.String("name", name))
	errs := d.all(ctx, v, func(ctx context.Context, i int) error {
		if as[i].gone || as[i].err == nil || !missing(as[i].err) {
			return nil
		}
		_, _, err := d.kid(i).Mkdir(asRoot(ctx), parent, name, st.Mode&07777, 0, g, internal(nil))
		if err != nil && fop.Errno(err) != syscall.EEXIST {
			return err
		}
		a := xdr.Iatt{UID: st.UID, GID: st.GID, Mode: st.Mode}
		_, _, _, err = d.kid(i).Setattr(asRoot(ctx), g, &a, fop.SetAttrUID|fop.SetAttrGID|fop.SetAttrMode, nil)
		return err
	})
	return pickErr(errs)
}

// healAttrs makes every copy of a directory carry the mode and owner of
// the copy reads are served from (dht_dir_attr_heal): a chmod made while
// a copy was down reaches it once it is back.
func (d *DHT) healAttrs(ctx context.Context, g xdr.GFID, as []answer, from int) {
	if from < 0 || from >= len(as) || as[from].err != nil || holdsLocks(ctx) {
		return
	}
	want := as[from].st
	for i, a := range as {
		if i == from || a.err != nil || !isDir(a.st) || a.st.GFID != g {
			continue
		}
		if a.st.Mode == want.Mode && a.st.UID == want.UID && a.st.GID == want.GID {
			continue
		}
		set := xdr.Iatt{Mode: want.Mode, UID: want.UID, GID: want.GID}
		_, _, _, err := d.kid(i).Setattr(asRoot(ctx), g, &set, fop.SetAttrMode|fop.SetAttrUID|fop.SetAttrGID, internal(nil))
		d.log.Info("directory attributes healed", zap.String("subvol", d.subName(i)), zap.Stringer("gfid", g),
			zap.Uint32("mode", want.Mode&07777), zap.Uint32("uid", want.UID), zap.Uint32("gid", want.GID), zap.Error(err))
	}
}

// startHash is what a directory's first range is placed by: its path,
// or its gfid's text with randomize-hash-range-by-gfid or when the path
// is not known.
func (d *DHT) startHash(g xdr.GFID, path string, known bool) uint32 {
	o, h := d.options()
	if o.RandomizeByGFID || !known {
		return h.hash(g.String())
	}
	return h.hash(path)
}

// healDir repairs a directory whose copy is missing on a subvolume (made
// there with the same gfid, when its name is known) or whose layout has a
// hole or an overlap (ranges given again under dht.layout.heal, taken on
// every subvolume in order, keeping as much of each old range as it can).
// It does nothing while a subvolume is down. It returns the layout now.
func (d *DHT) healDir(ctx context.Context, parent xdr.GFID, name string, st xdr.Iatt, as []answer, l *layout) (*layout, error) {
	if l.unknown > 0 || holdsLocks(ctx) {
		return l, nil
	}
	named := name != "" && !parent.IsZero()
	if !(l.missing > 0 && named) && l.holes == 0 && l.overlaps == 0 {
		return l, nil
	}
	for _, s := range l.s {
		if s.has && s.typ == typeUser {
			return l, errors.New("the layout was set by hand; it is left as it is")
		}
	}
	g := st.GFID
	if l.missing > 0 && named {
		if err := d.healCopies(ctx, parent, name, g); err != nil {
			return l, err
		}
	}
	ls := d.newLocks(ctx)
	defer ls.release()
	v := d.view()
	for _, i := range v.live {
		if err := ls.inodelk(i, g, domLayoutHeal, fop.LkWrite); err != nil {
			if missing(err) {
				continue // no copy there to lock
			}
			return l, err
		}
	}
	as = d.lookupAll(ctx, v, xdr.GFID{}, "", g, nil, true)
	now, _, err := d.dirAnswers(g, as)
	if err != nil {
		return l, err
	}
	if now.unknown > 0 || now.holes == 0 && now.overlaps == 0 {
		return now, nil
	}
	have := make([]bool, v.n())
	for i := range have {
		have[i] = i < len(now.s) && now.s[i].present
	}
	usable := d.usable(v, have)
	path, known := "", false
	if g == xdr.RootGFID {
		path, known = "/", true
	} else if named {
		if pp, ok := d.path(parent); ok {
			path, known = pp+"/"+name, true
			if pp == "/" {
				path = "/" + name
			}
		}
	}
	next := d.newRanges(ctx, v, usable, d.startHash(g, path, known), hashInvalid, now.s)
	errs := d.all(ctx, v, func(ctx context.Context, i int) error {
		if !have[i] {
			return nil
		}
		if !next[i].has {
			next[i] = slice{has: true, present: true} // no range: 0-0
		}
		_, err := d.kid(i).Setxattr(asRoot(ctx), g, xdr.Dict{}.With(xattrLayout, xdr.Ptr(next[i].encode())), 0, internal(nil))
		return err
	})
	if err := pickErr(errs); err != nil {
		return now, err
	}
	healed := newLayout(next)
	healed.missing = now.missing
	d.log.Info("directory layout healed", zap.Stringer("gfid", g), zap.Stringer("was", now), zap.Stringer("now", healed))
	return healed, nil
}
