package dht

import (
	"context"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Readdir offsets. An offset the layer hands out names a subvolume and
// that subvolume's own offset, and stays below 1<<62 | 1<<62-1 so it is
// positive for lseek:
//   - a small brick offset x (below 1<<62 >> bits): x<<bits | sub;
//   - a large one (ext4's hash offsets): 1<<62 | (x>>1 with the low bits
//     cleared) | sub, as GlusterFS's gf_itransform encodes it. That drops
//     the low bits of x; the layer remembers the exact x of the offsets
//     it handed out lately and falls back to the approximation (what the
//     native client always uses) for older ones;
//   - the end-of-directory offset posix gives the last entry (LLONG_MAX)
//     becomes the start of the next subvolume, or endOff after the last.
//
// Offset 0 is the start of the first subvolume.

const (
	bigOff   = uint64(1) << 62
	eofOff   = uint64(1)<<63 - 1 // what a brick gives its last entry
	bigLimit = 1 << 16           // exact large offsets remembered
)

type offTable struct {
	mu    sync.Mutex
	exact map[uint64]uint64 // GUARDED_BY(mu); handed-out offset -> brick offset
}

// endOff is the offset after the last entry of the last subvolume.
func (d *DHT) endOff() uint64 { return bigOff | maxSubvols }

func (d *DHT) encodeOff(sub int, off uint64) uint64 {
	if off == eofOff {
		if sub+1 >= maxSubvols {
			return d.endOff()
		}
		return uint64(sub + 1)
	}
	if off < bigOff>>subBits {
		return off<<subBits | uint64(sub)
	}
	low := uint64(1)<<subBits - 1
	enc := bigOff | (off>>1)&(bigOff-1)&^low | uint64(sub)
	t := &d.big
	t.mu.Lock()
	if t.exact == nil || len(t.exact) >= bigLimit {
		t.exact = map[uint64]uint64{}
	}
	t.exact[enc] = off
	t.mu.Unlock()
	return enc
}

// decodeOff returns the subvolume and its offset an offset names; sub ==
// maxSubvols is the end of the directory.
func (d *DHT) decodeOff(enc uint64) (int, uint64, bool) {
	if enc == d.endOff() {
		return maxSubvols, 0, true
	}
	low := uint64(1)<<subBits - 1
	sub := int(enc & low)
	if sub >= maxSubvols || enc >= 1<<63 {
		return 0, 0, false
	}
	if enc&bigOff == 0 {
		return sub, enc >> subBits, true
	}
	t := &d.big
	t.mu.Lock()
	off, ok := t.exact[enc]
	t.mu.Unlock()
	if !ok {
		off = (enc &^ bigOff &^ low) << 1
	}
	return sub, off, true
}

// Readdirp lists a directory one subvolume after another, each entry
// once: linkto files are never shown, a directory only from the
// subvolume its name hashes to (or the first with a copy when that one
// is down; with readdir-optimize, only from the first), "." and ".."
// only from the first subvolume.
func (d *DHT) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) ([]fop.Dirent, bool, xdr.Dict, error) {
	df := dirOf(f)
	if df == nil {
		return nil, false, nil, d.errf("READDIRP", f.GFID, syscall.ENOTDIR, "not a directory fd")
	}
	sub, off, ok := d.decodeOff(offset)
	if !ok {
		return nil, false, nil, d.errf("READDIRP", f.GFID, syscall.EINVAL, "offset %#x was not handed out by this directory", offset)
	}
	l, firstUp := df.lay, df.firstUp
	o, h := d.options()
	x := append(xdr.Dict{}, xd...).With(xattrLinkto, xdr.Uint(256))
	// Files listed away from where their names hash are matched with the
	// linkto files listed, where a lookup would trust a miss.
	var cur *layout
	if offset == 0 {
		df.strays.reset() // a listing from the start (or rewinddir)
	}
	if o.LookupOptimize && !d.distrust.Load() {
		if offset == 0 {
			// A listing from the start reads the volume's commit hash
			// (on the root) and the directory's layout again if
			// brickfs has not lately (layoutTTL): a rebalance since
			// changes both, and brickfs may have looked up neither
			// since. A failed read leaves the cached ones, which
			// linkStrays reads again before it acts.
			_, _ = d.freshLayout(ctx, xdr.RootGFID)
			_, _ = d.freshLayout(ctx, f.GFID)
		}
		cur = d.trustedLayout(f.GFID, l)
	}
	for sub < len(df.fds) {
		if df.fds[sub] == nil || !d.isLive(sub) {
			// Not there at opendir, or gone since (remove-brick
			// commit: its files were moved to the others).
			sub, off = sub+1, 0
			continue
		}
		ents, eof, rx, err := d.kid(sub).Readdirp(ctx, df.fds[sub], off, size, x)
		if err != nil {
			return nil, false, nil, err
		}
		var out []fop.Dirent
		for _, e := range ents {
			off = e.Off
			switch {
			case e.Name == "." || e.Name == "..":
				if sub != firstUp {
					continue
				}
			case isLinkto(e.Stat, e.Xdata):
				if cur != nil {
					df.strays.linkto(sub, e.Name)
				}
				continue
			case isDir(e.Stat):
				owner := firstUp
				if !o.ReaddirOptimize {
					if hs := l.search(h.hash(e.Name)); hs >= 0 && hs < len(df.fds) && df.fds[hs] != nil {
						owner = hs
					}
				}
				if sub != owner {
					continue
				}
				d.setDir(e.Stat.GFID, f.GFID, e.Name, nil)
			default:
				d.setFile(e.Stat.GFID, sub)
				if cur != nil {
					if hs := cur.search(h.hash(e.Name)); hs >= 0 && hs != sub {
						df.strays.away(stray{name: e.Name, on: sub, hashed: hs})
					}
				}
				strip1(&e.Stat)
			}
			e.Off = d.encodeOff(sub, e.Off)
			e.Xdata = stripKeys(e.Xdata, xd)
			out = append(out, e)
		}
		if eof || len(ents) == 0 {
			if cur != nil {
				if lost := df.strays.listed(sub, len(df.fds)); len(lost) > 0 {
					for _, s := range d.linkStrays(ctx, f.GFID, lost) {
						df.strays.linkto(s.hashed, s.name)
					}
				}
			}
			next := sub + 1
			for next < len(df.fds) && (df.fds[next] == nil || !d.isLive(next)) {
				next++
			}
			if next == len(df.fds) {
				return out, true, rx, nil
			}
			if len(out) > 0 {
				// Continuing after the last entry means the next
				// subvolume's start.
				out[len(out)-1].Off = uint64(next)
				return out, false, rx, nil
			}
			sub, off = next, 0
			continue
		}
		if len(out) > 0 {
			return out, false, rx, nil
		}
	}
	return nil, true, nil, nil
}

// Files with no linkto file where their names hash.
//
// Under a layout carrying the volume's commit hash a lookup trusts a miss
// on the subvolume a name hashes to (lookup-optimize): a file away from
// there with no linkto file there is listed but cannot be opened by name,
// through brickfs or a native client. A rebalance leaves such files: for
// a moment, since it commits a directory's layout once it has queued its
// files for migration, not once they moved; and for good when its daemons
// disagree on the layout (each node's daemon lays every directory out
// again, weighted by disk usage it gathers in the background and may not
// have yet, and migrates files by the layout it made itself; the layout
// written last is the one clients read). Nothing looks everywhere under a
// committed layout, so nothing made the linkto file a lookup everywhere
// makes (dht_lookup_everywhere_done).
//
// A listing sees both sides without asking a brick: the files away from
// where their names hash, and the linkto files each subvolume holds. Once
// the subvolume a name hashes to is listed with no linkto file for it,
// the name is looked up everywhere, which makes the linkto file.

// maxStrays bounds what one listing follows (strays and linkto files not
// matched yet); past it, it gives up. maxRepairs bounds the names one
// subvolume's end looks up everywhere; the rest wait for another listing.
const (
	maxStrays  = 1 << 16
	maxRepairs = 64
)

// stray is a file a subvolume listed whose name hashes to another one.
type stray struct {
	name   string
	on     int // the subvolume holding its data
	hashed int // where its name hashes by the layout of the listing
}

// strayWatch follows one listing's strays and linkto files; a pair that
// matches is forgotten at once.
type strayWatch struct {
	mu      sync.Mutex
	links   map[linkName]bool // GUARDED_BY(mu); linkto files no stray matched yet
	pending map[string]stray  // GUARDED_BY(mu); by name: strays no linkto file matched yet
	done    []bool            // GUARDED_BY(mu); subvolumes listed to their end
	full    bool              // GUARDED_BY(mu); too many: given up
}

type linkName struct {
	sub  int
	name string
}

func (w *strayWatch) reset() {
	w.mu.Lock()
	w.links, w.pending, w.done, w.full = nil, nil, nil, false
	w.mu.Unlock()
}

// linkto notes a linkto file subvolume sub listed (or a listing made).
func (w *strayWatch) linkto(sub int, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		return
	}
	if s, ok := w.pending[name]; ok && s.hashed == sub {
		delete(w.pending, name)
		return
	}
	if w.links == nil {
		w.links = map[linkName]bool{}
	}
	w.links[linkName{sub, name}] = true
	w.full = len(w.links)+len(w.pending) > maxStrays
}

// away notes a file listed away from where its name hashes.
func (w *strayWatch) away(s stray) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		return
	}
	if k := (linkName{s.hashed, s.name}); w.links[k] {
		delete(w.links, k)
		return
	}
	if w.pending == nil {
		w.pending = map[string]stray{}
	}
	w.pending[s.name] = s
	w.full = len(w.links)+len(w.pending) > maxStrays
}

// listed notes that subvolume sub of n was listed to its end, and
// returns the strays whose hashed subvolume is listed with no linkto file
// for them (at most maxRepairs; the others are forgotten).
func (w *strayWatch) listed(sub, n int) []stray {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		w.links, w.pending = nil, nil
		return nil
	}
	if w.done == nil {
		w.done = make([]bool, n)
	}
	if sub < len(w.done) {
		w.done[sub] = true
	}
	var lost []stray
	for name, s := range w.pending {
		if s.hashed >= len(w.done) || !w.done[s.hashed] {
			continue
		}
		delete(w.pending, name)
		if len(lost) < maxRepairs {
			lost = append(lost, s)
		}
	}
	return lost
}

// trustedLayout is the layout of directory g brickfs has (l, the
// listing's, when it has none cached) if it carries the volume's commit
// hash as brickfs last read it, nil otherwise. It asks no brick.
func (d *DHT) trustedLayout(g xdr.GFID, l *layout) *layout {
	if ino, ok := d.get(g); ok && ino.dir && ino.lay != nil {
		l = ino.lay
	}
	d.mu.Lock()
	vc := d.volCommit
	d.mu.Unlock()
	if l == nil || !l.commitMatches(vc) {
		return nil
	}
	return l
}

// linkStrays looks up everywhere the strays a listing found no linkto file
// for, which makes one where each name hashes, if the directory's layout,
// read again, still carries the volume's commit hash and still sends the
// name there. It returns the strays that have a linkto file now.
func (d *DHT) linkStrays(ctx context.Context, dir xdr.GFID, strays []stray) []stray {
	if o, _ := d.options(); !o.LookupOptimize || d.distrust.Load() {
		return nil
	}
	// The root's lookup brings the volume's commit hash.
	if _, err := d.freshLayout(ctx, xdr.RootGFID); err != nil {
		return nil
	}
	l, err := d.freshLayout(ctx, dir)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	vc := d.volCommit
	d.mu.Unlock()
	if !l.commitMatches(vc) {
		return nil
	}
	var linked []stray
	for _, s := range strays {
		hs := l.search(d.hashOf(s.name))
		if hs < 0 || hs == s.on || !d.isLive(hs) {
			continue
		}
		if _, _, err := d.kid(hs).Lookup(ctx, dir, s.name, xdr.GFID{}, withKeys(nil, false)); fop.Errno(err) != syscall.ENOENT {
			continue // there (made since), or not known
		}
		r, err := d.everywhere(ctx, dir, s.name, nil, hs)
		if err != nil || !r.linkOn || r.dir {
			continue
		}
		s.hashed = hs
		linked = append(linked, s)
		d.log.Info("a file away from where its name hashes had no linkto file there, under a layout lookups trust (a rebalance's doing); made one",
			zap.Stringer("dir", dir), zap.String("name", s.name), zap.Stringer("gfid", r.st.GFID),
			zap.String("data on", d.subName(r.cached)), zap.String("linkto on", d.subName(hs)))
	}
	return linked
}
