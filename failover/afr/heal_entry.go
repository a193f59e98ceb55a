package afr

import (
	"context"
	"errors"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Client-side entry heal, for the same reason as the data heal
// (healqueue.go): after a hung or silent brick only brickfs knows which
// names it changed without that fop. It records them, and when the brick
// is back it creates on it what the good bricks have (same gfid, so the
// data and metadata heals then fill the new files in) and removes what
// they no longer have, under AFR's entry lock on the whole directory, then
// takes back the directory's entry accusations and purges its granular
// entry-heal index (afr-self-heal-entry.c, afr-self-heal-name.c).

// healEntries heals every directory with recorded names; directories made
// on the sink by one pass let their own names heal in the next.
func (r *Replicate) healEntries(ctx context.Context) {
	for pass := 0; pass < 64; pass++ {
		r.healMu.Lock()
		todo := make(map[xdr.GFID][]string, len(r.entryHeal))
		for d, names := range r.entryHeal {
			todo[d] = make([]string, 0, len(names))
			for n := range names {
				todo[d] = append(todo[d], n)
			}
		}
		r.healMu.Unlock()
		progress := false
		for d, names := range todo {
			if ctx.Err() != nil {
				return
			}
			done, err := r.healDir(ctx, d, names)
			if err != nil {
				r.log.Warn("entry heal failed; the self-heal daemon will heal it", zap.Stringer("gfid", d), zap.Error(err))
			}
			if done || fop.Errno(err) == syscall.ENOENT || fop.Errno(err) == syscall.ESTALE {
				r.healMu.Lock()
				delete(r.entryHeal, d)
				r.healMu.Unlock()
				progress = true
			}
		}
		if !progress {
			return
		}
	}
}

// healDir heals the recorded names of one directory.
func (r *Replicate) healDir(ctx context.Context, dir xdr.GFID, names []string) (bool, error) {
	up := r.up()
	if count(up) < r.n() {
		return false, nil
	}
	ino := r.inode(dir)
	owner := newOwner()
	hctx := internal(ctx, owner)
	// The whole directory, in the heal domain then the replica's domain,
	// as glustershd takes it: no name changes in it meanwhile.
	var locked [2][]bool
	for n, domain := range []string{r.name + healDomainSuffix, r.name} {
		rs := r.fanout(hctx, up, func(ctx context.Context, i int) error {
			return fop.ErrOnly(r.kids[i].Entrylk(ctx, dir, "", domain, fop.EntrylkLockNB, fop.LkWrite, nil))
		})
		locked[n] = succeeded(rs, up)
		domain := domain
		defer r.fanout(hctx, locked[n], func(ctx context.Context, i int) error {
			return fop.ErrOnly(r.kids[i].Entrylk(ctx, dir, "", domain, fop.EntrylkUnlock, fop.LkWrite, nil))
		})
		if count(locked[n]) < r.n() {
			return false, nil // busy: next round
		}
	}
	snap, ok := r.readMatrixSlot(hctx, ino, up, slotEntry)
	snapData, ok2 := r.readMatrixSlot(hctx, ino, up, slotData)
	if !ok || !ok2 {
		return false, nil
	}
	sources, sinks := r.direction(snap)
	if r.opts.Arbiter >= 0 && !sinks[r.opts.Arbiter] {
		sources[r.opts.Arbiter] = true // an arbiter holds the namespace
	}
	if count(sinks) == 0 {
		return true, nil
	}
	if count(sources) == 0 {
		return false, nil // split-brain
	}
	// Compare the whole directory, not only the names brickfs recorded:
	// other clients may have changed names too, and the accusation this
	// heal takes back covers theirs as well.
	all := map[string]bool{}
	for _, n := range names {
		all[n] = true
	}
	for i := range r.kids {
		if !sources[i] && !sinks[i] {
			continue
		}
		listed, err := r.listNames(hctx, i, dir)
		if err != nil {
			return false, err
		}
		for _, n := range listed {
			all[n] = true
		}
	}
	complete := true
	for name := range all {
		healed, err := r.healName(hctx, dir, name, sources, sinks)
		if err != nil {
			return false, err
		}
		complete = complete && healed
	}
	if !complete {
		return false, nil
	}
	now, ok := r.readMatrixSlot(hctx, ino, up, slotEntry)
	nowData, ok2 := r.readMatrixSlot(hctx, ino, up, slotData)
	if !ok || !ok2 {
		return false, nil
	}
	for i := range now.m {
		for j := range now.m[i] {
			if sinks[j] && (now.m[i][j] != snap.m[i][j] || nowData.m[i][j] != snapData.m[i][j]) {
				return false, nil // a new change missed a brick meanwhile
			}
		}
	}
	purge := xdr.Dict{{Key: "glusterfs.xattrop-purge-index", Value: xdr.Int(1)}}
	for i := range r.kids {
		pending := map[int]counts{}
		for j := range r.kids {
			if !sinks[j] {
				continue
			}
			var c counts
			c[slotEntry] = -snap.m[i][j]
			// A new directory's data slot asks for a full entry heal,
			// which this was.
			c[slotData] = -snapData.m[i][j]
			if c != (counts{}) {
				pending[j] = c
			}
		}
		if len(pending) == 0 {
			continue
		}
		one := make([]bool, r.n())
		one[i] = true
		if ok, _ := r.xattrop(hctx, dir, owner, one, counts{}, pending, purge); !ok[i] {
			return false, &fop.OpError{Brick: r.kids[i].Name(), Fop: "XATTROP", GFID: dir, Errno: syscall.EIO}
		}
	}
	r.log.Info("directory healed", zap.Stringer("gfid", dir), zap.Int("names", len(names)))
	return true, nil
}

// healName makes one name on the sinks what it is on the sources. It
// reports false for what it leaves to the self-heal daemon: a directory
// to recreate that the sink holds under another name, or one to remove
// that the brick refuses to remove.
func (r *Replicate) healName(ctx context.Context, dir xdr.GFID, name string, sources, sinks []bool) (bool, error) {
	sts := make([]xdr.Iatt, r.n())
	all := make([]bool, r.n())
	for i := range all {
		all[i] = sources[i] || sinks[i]
	}
	rs := r.fanout(ctx, all, func(ctx context.Context, i int) error {
		var err error
		sts[i], _, err = r.kids[i].Lookup(ctx, dir, name, xdr.GFID{}, nil)
		return err
	})
	exists := func(i int) (bool, error) {
		switch err := rs[i].err; {
		case err == nil:
			return true, nil
		case fop.Errno(err) == syscall.ENOENT:
			return false, nil
		default:
			return false, err
		}
	}
	src := -1 // a source holding the name, not the arbiter if another does
	for i := range sources {
		if !sources[i] {
			continue
		}
		e, err := exists(i)
		if err != nil {
			return false, err
		}
		if e && (src < 0 || src == r.opts.Arbiter) {
			src = i
		}
	}
	found := src >= 0
	complete := true
	for k := range sinks {
		if !sinks[k] {
			continue
		}
		e, err := exists(k)
		if err != nil {
			return false, err
		}
		switch {
		case found && e && sts[k].GFID == sts[src].GFID:
		case found && e:
			// Another inode under the name on the sink: replaced by the
			// source's, as afr_selfheal_recreate_entry does.
			r.log.Info("a name holds another inode on a brick; replacing it with the sources'", zap.Stringer("dir", dir), zap.String("name", name),
				zap.String("brick", r.kids[k].Name()), zap.Stringer("gfid", sts[k].GFID), zap.Stringer("source gfid", sts[src].GFID))
			if err := r.expunge(ctx, dir, name, k, sts[k]); err != nil {
				if fop.Errno(err) == syscall.ENOTEMPTY {
					complete = false
					continue
				}
				return false, err
			}
			fallthrough
		case found:
			if err := r.impunge(ctx, dir, name, src, sources, k, sts[src]); errors.Is(err, errLeftToShd) {
				r.log.Warn("a directory to recreate exists under another name on a brick; left to the self-heal daemon", zap.Stringer("dir", dir), zap.String("name", name))
				complete = false
			} else if err != nil {
				return false, err
			}
		case e:
			if err := r.expunge(ctx, dir, name, k, sts[k]); err != nil {
				if fop.Errno(err) == syscall.ENOTEMPTY {
					complete = false
					continue
				}
				return false, err
			}
		}
	}
	return complete, nil
}

// errLeftToShd is what impunge answers for a case it leaves to the
// self-heal daemon.
var errLeftToShd = errors.New("left to the self-heal daemon")

// impunge creates on brick k the entry the source src has, with its gfid.
// A new inode (not a hard link to one k already holds) is first marked on
// the sources as missing on k (afr_selfheal_newentry_mark), so the empty
// copy made on k is never taken for a good one: the heal of the inode
// itself, by brickfs or the self-heal daemon, fills it in.
func (r *Replicate) impunge(ctx context.Context, dir xdr.GFID, name string, src int, sources []bool, k int, st xdr.Iatt) error {
	_, _, err := r.kids[k].Lookup(ctx, xdr.GFID{}, "", st.GFID, nil)
	switch en := fop.Errno(err); {
	case err == nil && st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		// Another name of the same inode already on the sink: a hard link.
		_, _, err := r.kids[k].Link(ctx, st.GFID, dir, name, nil)
		return err
	case err == nil:
		// The directory lives under another name on the sink (a rename
		// it missed); moving it back is the self-heal daemon's.
		return errLeftToShd
	case en != syscall.ENOENT && en != syscall.ESTALE:
		return err
	}
	sink := make([]bool, r.n())
	sink[k] = true
	if done := r.markNew(ctx, st, sources, sink); count(done) == 0 {
		return &fop.OpError{Brick: r.kids[src].Name(), Fop: "XATTROP", GFID: st.GFID, Errno: syscall.EIO,
			Err: errors.New("no source took the new-entry mark")}
	}
	perm := st.Mode & 07777
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		_, _, err = r.kids[k].Mkdir(ctx, dir, name, perm, 0, st.GFID, nil)
	case syscall.S_IFLNK:
		var target string
		if target, _, err = r.kids[src].Readlink(ctx, st.GFID, nil); err == nil {
			_, _, err = r.kids[k].Symlink(ctx, dir, name, target, 0, st.GFID, nil)
		}
	default:
		_, _, err = r.kids[k].Mknod(ctx, dir, name, st.Mode, st.Rdev, 0, st.GFID, nil)
	}
	return err
}

// expunge removes from brick k a name the sources no longer have.
func (r *Replicate) expunge(ctx context.Context, dir xdr.GFID, name string, k int, st xdr.Iatt) error {
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		return fop.ErrOnly(r.kids[k].Rmdir(ctx, dir, name, fop.RmdirRecursive, nil)) // with what is left in it
	}
	return fop.ErrOnly(r.kids[k].Unlink(ctx, dir, name, nil))
}

// listNames lists a directory on brick k.
func (r *Replicate) listNames(ctx context.Context, k int, dir xdr.GFID) ([]string, error) {
	fd, _, err := r.kids[k].Opendir(ctx, dir, nil)
	if err != nil {
		return nil, err
	}
	defer r.kids[k].Release(context.WithoutCancel(ctx), fd)
	var names []string
	var off uint64
	for {
		ents, eof, _, err := r.kids[k].Readdirp(ctx, fd, off, 128<<10, nil)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if e.Name != "." && e.Name != ".." && !(dir == xdr.RootGFID && strings.HasPrefix(e.Name, ".glusterfs-anonymous-inode-")) {
				names = append(names, e.Name)
			}
		}
		if eof || len(ents) == 0 {
			return names, nil
		}
		off = ents[len(ents)-1].Off
	}
}
