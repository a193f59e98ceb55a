package dht

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// answer is one subvolume's reply to a lookup.
type answer struct {
	st   xdr.Iatt
	x    xdr.Dict
	err  error
	gone bool // not asked: the subvolume left the volume (err is errGone)
}

// lookupAll looks parent/name (or gfid when name is "") up on every
// subvolume of view v at once; the answers are indexed like v.
func (d *DHT) lookupAll(ctx context.Context, v *view, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict, dir bool) []answer {
	as := make([]answer, v.n())
	for i := range as {
		if !v.in[i] {
			as[i] = answer{err: errGone, gone: true}
		}
	}
	x := withKeys(xd, dir)
	d.all(ctx, v, func(ctx context.Context, i int) error {
		as[i].st, as[i].x, as[i].err = d.kid(i).Lookup(ctx, parent, name, gfid, x)
		return as[i].err
	})
	return as
}

// layoutFrom builds a directory's layout from every subvolume's answer.
func layoutFrom(as []answer) *layout {
	s := make([]slice, len(as))
	var missingN, unknown int
	for i, a := range as {
		switch {
		case a.gone:
		case a.err == nil && isDir(a.st):
			s[i].present = true
			if v, ok := a.x.Bytes(xattrLayout); ok {
				if p, ok := parseSlice(v); ok {
					p.present = true
					s[i] = p
				}
			}
		case a.err != nil && missing(a.err):
			missingN++
		default:
			unknown++
		}
	}
	l := newLayout(s)
	l.missing, l.unknown = missingN, unknown
	return l
}

// layoutOf returns directory g's layout, reading it from every subvolume
// the first time (and healing it if it has a hole).
func (d *DHT) layoutOf(ctx context.Context, g xdr.GFID) (*layout, error) {
	if ino, ok := d.get(g); ok && ino.dir && ino.lay != nil {
		return ino.lay, nil
	}
	return d.refreshDir(ctx, g)
}

// freshLayout is layoutOf read again when the cached one is older than
// layoutTTL.
func (d *DHT) freshLayout(ctx context.Context, g xdr.GFID) (*layout, error) {
	if ino, ok := d.get(g); ok && ino.dir && ino.lay != nil && time.Since(ino.layAt) < d.ttl {
		return ino.lay, nil
	}
	return d.refreshDir(ctx, g)
}

// refreshDir reads directory g's layout again from every subvolume by
// its gfid; the root's also brings the volume's commit hash.
func (d *DHT) refreshDir(ctx context.Context, g xdr.GFID) (*layout, error) {
	as := d.lookupAll(ctx, d.view(), xdr.GFID{}, "", g, nil, true)
	l, st, err := d.dirAnswers(g, as)
	if err != nil {
		return nil, err
	}
	ino, _ := d.get(g)
	if l2, err := d.healDir(ctx, ino.parent, ino.name, st, as, l); err == nil {
		l = l2
	}
	d.setDir(g, xdr.GFID{}, "", l)
	return l, nil
}

// dirAnswers checks that every answer that found g found a directory,
// notes the root's commit hash, and returns the layout and one iatt.
func (d *DHT) dirAnswers(g xdr.GFID, as []answer) (*layout, xdr.Iatt, error) {
	var st xdr.Iatt
	found := false
	var errs []error
	for _, a := range as {
		if a.gone {
			continue
		}
		if a.err != nil {
			errs = append(errs, a.err)
			continue
		}
		if !isDir(a.st) {
			return nil, st, d.errf("LOOKUP", g, syscall.EIO, "%s is a directory on some subvolumes and not on others; heal the volume", g)
		}
		if !found {
			st, found = a.st, true
		}
	}
	if !found {
		return nil, st, pickErr(errs)
	}
	if g == xdr.RootGFID {
		for _, a := range as {
			if v, ok := a.x.Bytes(xattrCommitHash); ok {
				s := strings.TrimRight(string(v), "\x00")
				if n, err := strconv.ParseUint(s, 10, 32); err == nil {
					d.mu.Lock()
					d.volCommit = uint32(n)
					d.mu.Unlock()
					break
				}
			}
		}
	}
	return layoutFrom(as), st, nil
}

// Lookup resolves parent/name as DHT does: on the subvolume the name
// hashes to, following a linkto file to the data; everywhere when the
// layout says the name may be elsewhere. A directory is looked up on
// every subvolume and its layout merged (and healed). A nameless lookup
// (name "") asks every subvolume.
func (d *DHT) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if name == "" {
		return d.discover(ctx, gfid, xd)
	}
	r, err := d.resolve(ctx, parent, name, xd)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	strip1(&r.st)
	return r.st, stripKeys(r.x, xd), nil
}

// stripKeys removes from a reply the xattrs DHT asked for itself, so the
// layers above see what they asked.
func stripKeys(x, asked xdr.Dict) xdr.Dict {
	var out xdr.Dict
	for _, p := range x {
		switch p.Key {
		case xattrLinkto, xattrLayout, xattrMDS, xattrCommitHash:
			if _, ok := asked.Get(p.Key); !ok {
				continue
			}
		}
		out = append(out, p)
	}
	return out
}

// resolved is a name as DHT found it.
type resolved struct {
	st     xdr.Iatt
	x      xdr.Dict
	hashed int // the subvolume the name hashes to, -1 in a hole
	cached int // the subvolume holding the data (a file), -1 for a directory
	dir    bool
	linkOn bool // a linkto file for the name is on hashed
}

// resolve finds parent/name.
func (d *DHT) resolve(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (resolved, error) {
	pl, err := d.layoutOf(ctx, parent)
	if err != nil {
		return resolved{}, err
	}
	hs := pl.search(d.hashOf(name))
	if hs < 0 {
		return d.everywhere(ctx, parent, name, xd, hs)
	}
	st, x, err := d.kid(hs).Lookup(ctx, parent, name, xdr.GFID{}, withKeys(xd, false))
	switch {
	case err == nil && isDir(st):
		return d.resolveDir(ctx, parent, name, xd, hs, nil)
	case err == nil && isLinkto(st, x):
		t := d.linktoTarget(x)
		if t >= 0 && t != hs {
			tst, tx, terr := d.kid(t).Lookup(ctx, parent, name, xdr.GFID{}, withKeys(xd, false))
			if terr == nil && tst.GFID == st.GFID && !isLinkto(tst, tx) && !isDir(tst) {
				d.setFileAt(tst.GFID, t, parent, name)
				return resolved{st: tst, x: tx, hashed: hs, cached: t, linkOn: true}, nil
			}
			if terr != nil && !missing(terr) {
				// The data's subvolume is down: the name exists, and
				// nothing may act on it as if it did not
				// (dht_lookup_linkfile_cbk).
				return resolved{}, terr
			}
		}
		return d.everywhere(ctx, parent, name, xd, hs)
	case err == nil:
		d.setFileAt(st.GFID, hs, parent, name)
		return resolved{st: st, x: x, hashed: hs, cached: hs}, nil
	case fop.Errno(err) == syscall.ENOENT:
		o, _ := d.options()
		d.mu.Lock()
		vc := d.volCommit
		d.mu.Unlock()
		if !o.LookupOptimize && !o.LookupUnhashed {
			return resolved{}, err
		}
		if o.LookupOptimize && !d.distrust.Load() && pl.commitMatches(vc) {
			// The layout says the name would be here. Trust that only
			// from a layout read lately: after another client's
			// fix-layout a new name may hash elsewhere.
			fresh, ferr := d.freshLayout(ctx, parent)
			if ferr != nil {
				return resolved{}, ferr
			}
			d.mu.Lock()
			vc = d.volCommit
			d.mu.Unlock()
			if fresh == pl || fresh.search(d.hashOf(name)) == hs && fresh.commitMatches(vc) {
				return resolved{}, err
			}
			if nhs := fresh.search(d.hashOf(name)); nhs >= 0 && nhs != hs {
				return d.resolve(ctx, parent, name, xd)
			}
		}
		return d.everywhere(ctx, parent, name, xd, hs)
	case fop.Errno(err) == syscall.ENAMETOOLONG || fop.Errno(err) == syscall.EACCES:
		return resolved{}, err
	}
	// Down, or an error the name's other places may answer: it may be a
	// directory, which every subvolume holds.
	r, everr := d.everywhere(ctx, parent, name, xd, hs)
	if everr != nil && missing(everr) {
		return resolved{}, err
	}
	return r, everr
}

// everywhere looks parent/name up on every subvolume
// (dht_lookup_everywhere): a directory, the data file wherever it is, and
// a stale linkto file (its data gone) removed.
func (d *DHT) everywhere(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict, hs int) (resolved, error) {
	as := d.lookupAll(ctx, d.view(), parent, name, xdr.GFID{}, xd, false)
	data, link := -1, -1
	for i, a := range as {
		if a.err != nil {
			continue
		}
		switch {
		case isDir(a.st):
			return d.resolveDir(ctx, parent, name, xd, hs, as)
		case isLinkto(a.st, a.x):
			if link < 0 || i == hs {
				link = i
			}
		case data < 0 || i == hs:
			data = i
		}
	}
	if data >= 0 {
		a := as[data]
		d.setFileAt(a.st.GFID, data, parent, name)
		linkOn := hs >= 0 && hs != data && link == hs && as[hs].st.GFID == a.st.GFID
		if linkOn && d.linktoTarget(as[hs].x) != data && allAnswered(as) {
			// The linkto file names another subvolume, or one the volume
			// no longer has by that name (a remove-brick commit
			// renumbers the sets after the one removed): point it at the
			// data, as a lookup everywhere does (dht_lookup_everywhere_done).
			d.repointLinkto(ctx, hs, data, a.st.GFID, name)
		}
		if hs >= 0 && hs != data && as[hs].err != nil && missing(as[hs].err) {
			// Data away from where its name hashes, with no linkto
			// there: make it, or lookups that trust the layout (and
			// native clients) would not find the file
			// (dht_lookup_everywhere_done).
			if err := d.linkto(ctx, hs, data, parent, name, a.st.GFID, a.st, nil); err == nil {
				linkOn = true
			} else if ce := d.log.Check(zap.DebugLevel, "linkto file not made"); ce != nil {
				ce.Write(zap.String("subvol", d.subName(hs)), zap.String("name", name), zap.Error(err))
			}
		}
		return resolved{st: a.st, x: a.x, hashed: hs, cached: data, linkOn: linkOn}, nil
	}
	errs := make([]error, len(as))
	down := false
	for i, a := range as {
		if a.gone {
			continue
		}
		errs[i] = a.err
		if a.err != nil && !missing(a.err) {
			down = true
		}
	}
	if link >= 0 {
		if down {
			// The data may be on the subvolume that did not answer.
			return resolved{}, d.errf("LOOKUP", parent, syscall.ENOTCONN, "%s: its data is on a subvolume that is down", name)
		}
		d.dropStaleLinkto(ctx, parent, name, link)
		return resolved{}, d.errf("LOOKUP", parent, syscall.ENOENT, "%s: only a linkto file whose data is gone", name)
	}
	return resolved{}, pickErr(errs)
}

// allAnswered reports whether every subvolume of the volume answered a
// lookup (found or not): a copy elsewhere would have shown.
func allAnswered(as []answer) bool {
	for _, a := range as {
		if !a.gone && a.err != nil && !missing(a.err) {
			return false
		}
	}
	return true
}

// repointLinkto makes the linkto file of gfid g on subvolume on name
// subvolume to.
func (d *DHT) repointLinkto(ctx context.Context, on, to int, g xdr.GFID, name string) {
	_, err := d.kid(on).Setxattr(asRoot(ctx), g, xdr.Dict{}.With(xattrLinkto, xdr.Str(d.subName(to))), 0, internal(nil))
	d.log.Info("linkto file pointed at the subvolume holding the data", zap.String("name", name), zap.Stringer("gfid", g),
		zap.String("on", d.subName(on)), zap.String("to", d.subName(to)), zap.Error(err))
}

// dropStaleLinkto removes a linkto file whose data no subvolume holds,
// unless a brick still has it open or it has become a data file since
// (the brick checks both).
func (d *DHT) dropStaleLinkto(ctx context.Context, parent xdr.GFID, name string, sub int) {
	xd := internal(xdr.Dict{}.With("unlink-only-if-dht-linkto-file", xdr.Int(1)).With("dont-unlink-for-open-fd", xdr.Int(1)))
	_, err := d.kid(sub).Unlink(asRoot(ctx), parent, name, xd)
	if ce := d.log.Check(zap.DebugLevel, "stale linkto file removed"); ce != nil {
		ce.Write(zap.String("subvol", d.subName(sub)), zap.Stringer("parent", parent), zap.String("name", name), zap.Error(err))
	}
}

// resolveDir completes the lookup of a directory: every subvolume's copy,
// the merged layout, healed where a copy or a range is missing.
func (d *DHT) resolveDir(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict, hs int, as []answer) (resolved, error) {
	if as == nil {
		as = d.lookupAll(ctx, d.view(), parent, name, xdr.GFID{}, xd, true)
	}
	var g xdr.GFID
	for _, a := range as {
		if a.err == nil && isDir(a.st) {
			g = a.st.GFID
			break
		}
	}
	l, st, err := d.dirAnswers(g, as)
	if err != nil {
		return resolved{}, err
	}
	for _, a := range as {
		if a.err == nil && a.st.GFID != g {
			return resolved{}, d.errf("LOOKUP", parent, syscall.EIO, "directory %s has gfid %s on one subvolume and %s on another; heal it with gluster volume heal", name, g, a.st.GFID)
		}
	}
	d.setDir(g, parent, name, nil)
	if l2, err := d.healDir(ctx, parent, name, st, as, l); err == nil {
		l = l2
	} else if ce := d.log.Check(zap.DebugLevel, "directory not healed"); ce != nil {
		ce.Write(zap.Stringer("gfid", g), zap.Error(err))
	}
	d.setDir(g, parent, name, l)
	// Answer with the mds copy (where the name hashes; attribute changes
	// reach it first), and bring the others in line with it.
	from := hs
	for i, a := range as {
		if a.err == nil && isDir(a.st) {
			if _, ok := a.x.Get(xattrMDS); ok {
				from = i // the copy carrying the mds key, wherever the name hashes now
				break
			}
		}
	}
	if from >= 0 {
		d.setMDS(g, from)
	}
	if from >= 0 && as[from].err == nil {
		d.healAttrs(ctx, g, as, from)
	}
	x := as[0].x
	if from >= 0 && as[from].err == nil {
		x, st = as[from].x, as[from].st
	}
	return resolved{st: st, x: x, hashed: hs, cached: -1, dir: true}, nil
}

// discover finds gfid on every subvolume (a nameless lookup).
func (d *DHT) discover(ctx context.Context, g xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if ino, ok := d.get(g); ok && !ino.dir {
		st, x, err := d.kid(ino.sub).Lookup(ctx, xdr.GFID{}, "", g, xd)
		if err == nil || !missing(err) {
			strip1(&st)
			return st, x, err
		}
		d.forget(g)
	}
	as := d.lookupAll(ctx, d.view(), xdr.GFID{}, "", g, xd, true)
	for i, a := range as {
		if a.err == nil && !isDir(a.st) && !isLinkto(a.st, a.x) {
			d.setFile(g, i)
			st := a.st
			strip1(&st)
			return st, stripKeys(a.x, xd), nil
		}
	}
	for _, a := range as {
		if a.err == nil && isDir(a.st) {
			l, st, err := d.dirAnswers(g, as)
			if err != nil {
				return xdr.Iatt{}, nil, err
			}
			ino, _ := d.get(g)
			if l2, err := d.healDir(ctx, ino.parent, ino.name, st, as, l); err == nil {
				l = l2
			}
			d.setDir(g, xdr.GFID{}, "", l)
			return st, stripKeys(a.x, xd), nil
		}
	}
	errs := make([]error, len(as))
	for i, a := range as {
		if a.gone {
			continue
		}
		errs[i] = a.err
		if a.err == nil {
			errs[i] = d.errf("LOOKUP", g, syscall.ENOENT, "only a linkto file is left of %s", g)
		}
	}
	return xdr.Iatt{}, nil, pickErr(errs)
}

// where returns the subvolume that holds file g's data, or dir=true for a
// directory, finding it on every subvolume when the table does not know.
func (d *DHT) where(ctx context.Context, g xdr.GFID) (sub int, dir bool, err error) {
	if ino, ok := d.get(g); ok && (ino.dir || d.isLive(ino.sub)) {
		return ino.sub, ino.dir, nil
	}
	if _, _, err := d.discover(ctx, g, nil); err != nil {
		return 0, false, err
	}
	ino, ok := d.get(g)
	if !ok {
		return 0, false, d.errf("LOOKUP", g, syscall.ESTALE, "%s vanished while it was looked up", g)
	}
	return ino.sub, ino.dir, nil
}

// errMovedAway is what a by-gfid fop answers when it finds the copy it
// reached turned into a linkto file (the file migrated, or moved beside a
// clone source, since the table was filled): onFile finds the file again
// and redoes the fop there.
var errMovedAway = &fop.OpError{Brick: "distribute", Errno: syscall.ESTALE, Err: errors.New("the file's copy became a linkto file: it moved")}

// onFile runs fn on the subvolume holding file g; if that subvolume no
// longer has it (the table was stale), finds it again and retries once.
// A subvolume answering ENOENT or ESTALE did nothing, so any fop may be
// retried.
func (d *DHT) onFile(ctx context.Context, g xdr.GFID, fn func(i int) error) error {
	i, dir, err := d.where(ctx, g)
	if err != nil {
		return err
	}
	if dir {
		return errIsDir
	}
	err = fn(i)
	if err == nil || !(missing(err) || err == errMovedAway) {
		return err
	}
	d.forget(g)
	j, dir, err2 := d.where(ctx, g)
	if err2 != nil || dir || j == i {
		return err
	}
	return fn(j)
}
