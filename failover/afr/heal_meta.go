package afr

import (
	"context"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// internalXattr names the xattrs a metadata heal leaves alone, the set
// GlusterFS AFR leaves (afr_is_xattr_ignorable, and what posix keeps for
// itself or hides from a listing): the changelog, the gfid and the
// volume id, the per-brick accounting of quota, marker and geo-
// replication (a quota limit, set by glusterd, is healed), gfid2path and
// pgfid (each brick's own record of the names it holds), SELinux's
// label, and the ctime translator's mdata (posix shows it to the
// self-heal daemon's pid, which heals it, but hides it from brickfs's:
// skipping it is what the heal could do anyway).
// Everything else is the file's metadata like a mode, and is healed:
// the shard translator's block-size and file-size on a base file (left
// alone, a brick that missed size updates kept a stale size, and the
// native client failed on a base file without one: "Failed to get
// trusted.glusterfs.shard.file-size", EINVAL), and distribute's layout,
// linkto and mds keys (a linkto file an entry heal made on a brick would
// point nowhere there, a directory there would have no layout).
func internalXattr(k string) bool {
	switch k {
	case "trusted.gfid", "trusted.glusterfs.volume-id", "trusted.glusterfs.mdata",
		"security.selinux", "trusted.glusterfs.lockinfo":
		return true
	}
	for _, p := range []string{"trusted.afr.", "trusted.ec.", "trusted.pgfid.", "trusted.gfid2path.",
		"trusted.glusterfs.quota.size", "trusted.glusterfs.quota.dirty", "trusted.gfs.squota.", "trusted.glusterfs.volume-mark.", "trusted.SGI_"} {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	if strings.HasPrefix(k, "trusted.glusterfs.") {
		for _, s := range []string{".xtime", ".stime", ".entry_stime"} {
			if strings.HasSuffix(k, s) {
				return true
			}
		}
		if strings.Contains(k, ".contri") {
			return true
		}
	}
	return false
}

// healMeta heals a file's metadata (mode, owner, times, xattrs) from a
// brick nobody accuses, under AFR's metadata lock taken with the heal's own
// owner on every brick, then takes back exactly the accusations it started
// from (afr_selfheal_metadata).
func (r *Replicate) healMeta(ctx context.Context, g xdr.GFID) (bool, error) {
	up := r.up()
	if count(up) < r.n() {
		return false, nil
	}
	ino := r.inode(g)
	owner := newOwner()
	hctx := internal(ctx, owner)
	rs := r.fanout(hctx, up, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, g, r.name, fop.LkSet, metaRange, nil))
	})
	locked := succeeded(rs, up)
	defer r.fanout(hctx, locked, func(ctx context.Context, i int) error {
		return fop.ErrOnly(r.kids[i].Inodelk(ctx, g, r.name, fop.LkSet, unlockOf(metaRange), nil))
	})
	if count(locked) < r.n() {
		return false, nil // a metadata change is in flight; try again later
	}
	snap, ok := r.readMatrixSlot(ctx, ino, locked, slotMeta)
	if !ok {
		return false, nil
	}
	sources, sinks := r.direction(snap)
	if a := r.opts.Arbiter; a >= 0 && !sinks[a] {
		sources[a] = true // an arbiter holds metadata
	}
	if count(sinks) == 0 {
		return true, nil
	}
	if count(sources) == 0 {
		return false, nil
	}
	src := first(sources)
	st, _, err := r.kids[src].Stat(hctx, g, nil)
	if err != nil {
		return false, err
	}
	want, _, err := r.kids[src].Getxattr(hctx, g, "", nil)
	if err != nil {
		return false, err
	}
	attr := xdr.Iatt{Mode: st.Mode & 07777, UID: st.UID, GID: st.GID,
		Atime: st.Atime, AtimeNsec: st.AtimeNsec, Mtime: st.Mtime, MtimeNsec: st.MtimeNsec}
	valid := uint32(fop.SetAttrMode | fop.SetAttrUID | fop.SetAttrGID | fop.SetAttrAtime | fop.SetAttrMtime)
	for i, s := range sinks {
		if !s {
			continue
		}
		if _, _, _, err := r.kids[i].Setattr(hctx, g, &attr, valid, nil); err != nil {
			return false, err
		}
		have, _, err := r.kids[i].Getxattr(hctx, g, "", nil)
		if err != nil {
			return false, err
		}
		for _, p := range want {
			if internalXattr(p.Key) {
				continue
			}
			if v, ok := have.Get(p.Key); ok && string(v.Bytes) == string(p.Value.Bytes) {
				continue
			}
			if _, err := r.kids[i].Setxattr(hctx, g, xdr.Dict{{Key: p.Key, Value: xdr.Ptr(p.Value.Bytes)}}, 0, nil); err != nil {
				return false, err
			}
		}
		for _, p := range have {
			if _, ok := want.Get(p.Key); !ok && !internalXattr(p.Key) {
				if _, err := r.kids[i].Removexattr(hctx, g, p.Key, nil); err != nil && fop.Errno(err) != syscall.ENODATA {
					return false, err
				}
			}
		}
	}
	for i := range r.kids {
		pending := map[int]counts{}
		for j := range r.kids {
			if sinks[j] && snap.m[i][j] != 0 {
				pending[j] = slotOnly(slotMeta, -snap.m[i][j])
			}
		}
		if len(pending) == 0 {
			continue
		}
		one := make([]bool, r.n())
		one[i] = true
		if ok, _ := r.xattrop(hctx, g, owner, one, counts{}, pending, nil); !ok[i] {
			return false, &fop.OpError{Brick: r.kids[i].Name(), Fop: "XATTROP", GFID: g, Errno: syscall.EIO}
		}
	}
	ino.mu.Lock()
	ino.readable, ino.metaRead = nil, nil // refresh on the next read or change
	ino.mu.Unlock()
	r.log.Info("metadata healed", zap.Stringer("gfid", g), zap.String("source", r.kids[src].Name()))
	return true, nil
}
