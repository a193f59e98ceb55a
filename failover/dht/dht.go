package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Options are cluster/distribute's volfile options that change what the
// client does (dht-shared.c's option table).
type Options struct {
	// LookupOptimize (lookup-optimize, default on): a name missing from
	// its hashed subvolume is missing, when its directory's layout
	// carries the volume's commit hash.
	LookupOptimize bool
	// LookupUnhashed (lookup-unhashed, default on; "auto" counts as on):
	// without lookup-optimize, a miss on the hashed subvolume is looked
	// up on every subvolume.
	LookupUnhashed bool
	// ReaddirOptimize (readdir-optimize): directories are listed from
	// the first subvolume only, not from the one their name hashes to.
	ReaddirOptimize bool
	// Weighted (weighted-rebalance, default on): new directories give
	// each subvolume a hash range in proportion to its size.
	Weighted bool
	// RandomizeByGFID (randomize-hash-range-by-gfid): a new directory's
	// first range goes to the subvolume its gfid hashes to, not its path.
	RandomizeByGFID bool
	// RsyncHashRegex and ExtraHashRegex (rsync-hash-regex,
	// extra-hash-regex): names matching them hash as their first group.
	// "none" disables one.
	RsyncHashRegex, ExtraHashRegex string
	// Decommissioned (decommissioned-bricks, set by remove-brick start)
	// names subvolumes being emptied: new directories give them no range.
	Decommissioned []string
}

// DefaultOptions are GlusterFS 10.3's defaults.
func DefaultOptions() Options {
	return Options{LookupOptimize: true, LookupUnhashed: true, Weighted: true, RsyncHashRegex: DefaultRsyncHashRegex}
}

// DHT carries out cluster/distribute over two or more subvolumes (replica
// sets or bricks): each name lives on the subvolume its hash falls to in
// its directory's layout, with linkto files where a rename or a link left
// it elsewhere; directories exist on every subvolume, each with its slice
// of the layout. Files brickfs creates are where native clients look for
// them, and the other way round.
//
// LOCK ORDERING: mu is never held across a call to a subvolume.
type DHT struct {
	name string
	log  *zap.Logger
	ttl  time.Duration // layoutTTL; tests shorten it

	cur     atomic.Pointer[view] // the subvolumes now
	regraph sync.Mutex           // serializes Regraph
	// distrust: a subvolume left the volume. A name hashing elsewhere
	// than its data had its linkto file there only if that was the
	// subvolume removed (remove-brick does not move linkto files), so a
	// miss where a name hashes is never trusted again: it is looked up
	// everywhere, which also makes the missing linkto file.
	distrust atomic.Bool

	optMu sync.Mutex
	opts  Options // GUARDED_BY(optMu)
	hash  hasher  // GUARDED_BY(optMu)

	mu        sync.Mutex
	inodes    map[xdr.GFID]*inode // GUARDED_BY(mu)
	volCommit uint32              // GUARDED_BY(mu); the root's commithash, 0 without one

	big offTable // readdir offsets too large to encode

	followMu  sync.Mutex               // guards following
	following map[xdr.GFID]*followLock // GUARDED_BY(followMu); one follow per file at a time

	// A clone destination's move (place.go).
	moveMu     sync.Mutex
	moving     map[xdr.GFID]*moveLock // GUARDED_BY(moveMu); one move per file at a time
	notMovable map[xdr.GFID]time.Time // GUARDED_BY(moveMu); files found not movable, when
	openFds    map[xdr.GFID]int       // GUARDED_BY(moveMu); this layer's open fds per file

	watchMu  sync.Mutex
	watchers []func(up bool) // GUARDED_BY(watchMu)
	told     bool            // GUARDED_BY(watchMu)
}

// view is the layer's subvolumes at one moment. The volume grows and
// shrinks while mounted (add-brick, remove-brick), so a subvolume is
// known by its index in kids, which never changes or gets reused: an fd,
// a cached inode or a readdir offset that names one stays meaningful
// after a change. Subvolumes removed from the volume keep their index and
// leave live; a fop that still reaches one finds its file again.
type view struct {
	kids  []fop.Subvolume // every subvolume the layer had, by index
	names []string        // their translator names (linkto values)
	live  []int           // the subvolumes of the volume, in volfile order (ascending)
	in    []bool          // in[i]: i is live
}

// view returns the subvolumes now; a fop that walks them takes one view
// and keeps it.
func (d *DHT) view() *view { return d.cur.Load() }

// n is the size of the index space: arrays by subvolume index have it.
func (v *view) n() int { return len(v.kids) }

// kid returns subvolume i (live or not).
func (d *DHT) kid(i int) fop.Subvolume { return d.view().kids[i] }

// subName returns subvolume i's translator name.
func (d *DHT) subName(i int) string { return d.view().names[i] }

// isLive reports whether subvolume i is part of the volume now.
func (d *DHT) isLive(i int) bool {
	v := d.view()
	return i >= 0 && i < len(v.in) && v.in[i]
}

// maxSubvols bounds the index space: readdir offsets carry an index in
// subBits bits, and the end-of-directory offset uses the last value.
const (
	subBits    = 8
	maxSubvols = 1<<subBits - 1
)

// inode is what DHT knows of one gfid.
type inode struct {
	dir bool
	sub int // a file: the subvolume holding its data
	// A directory: its layout (nil until read) and where it sits, for
	// the path a new directory's layout start is hashed from.
	lay    *layout
	layAt  time.Time // when lay was read
	parent xdr.GFID
	name   string
	// mds is the copy the directory's name hashes to in its parent, which
	// carries trusted.glusterfs.dht.mds: attribute changes must reach it,
	// and the other copies are healed from it (dht_dir_attr_heal); -1
	// until a lookup by name sets it (the root has none).
	mds int
}

// followLock serializes the follows of one file's fds.
type followLock struct {
	mu    sync.Mutex
	users int // GUARDED_BY(DHT.followMu)
}

// lockFollow takes g's follow lock; the returned func drops it.
func (d *DHT) lockFollow(g xdr.GFID) func() {
	d.followMu.Lock()
	if d.following == nil {
		d.following = map[xdr.GFID]*followLock{}
	}
	l := d.following[g]
	if l == nil {
		l = &followLock{}
		d.following[g] = l
	}
	l.users++
	d.followMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		d.followMu.Lock()
		if l.users--; l.users == 0 {
			delete(d.following, g)
		}
		d.followMu.Unlock()
	}
}

// layoutTTL is how old a cached layout may be when it decides something
// another client may have changed since (fix-layout, a layout heal): that
// a name is missing, or where a new non-CREATE entry goes (CREATE is
// checked by the brick against the layout on disk).
const layoutTTL = time.Second

// maxInodes bounds the inode table; past it, entries are dropped and
// found again by a lookup on every subvolume when next used.
const maxInodes = 200000

// New builds the distribute layer over kids, named as in the volfile.
func New(name string, kids []fop.Subvolume, opts Options, log *zap.Logger) (*DHT, error) {
	if len(kids) < 2 {
		return nil, fmt.Errorf("volfile: %s: distribute over %d subvolumes: the layer needs at least two", name, len(kids))
	}
	d := &DHT{name: name, log: log, inodes: map[xdr.GFID]*inode{}, ttl: layoutTTL}
	v := &view{}
	for i, k := range kids {
		v.kids = append(v.kids, k)
		v.names = append(v.names, k.Name())
		v.live = append(v.live, i)
		v.in = append(v.in, true)
	}
	if len(kids) > maxSubvols {
		return nil, fmt.Errorf("volfile: %s: distribute over %d subvolumes: brickfs supports at most %d", name, len(kids), maxSubvols)
	}
	d.cur.Store(v)
	if _, err := d.Reconfigure(opts); err != nil {
		return nil, err
	}
	d.inodes[xdr.RootGFID] = &inode{dir: true, mds: -1}
	d.told = d.Up() // before the watchers: they may call notify at once
	for _, k := range kids {
		k.Watch(func(bool) { d.notify() })
	}
	return d, nil
}

// Regraph makes kids, in volfile order, the layer's subvolumes, as a new
// volfile lists them after add-brick or remove-brick commit: a subvolume
// already known (the same object) keeps its index, a new one gets the
// next, and one missing from kids leaves the volume. What the layer knew
// of files and directories is dropped, so every name is looked up again
// against the new set of subvolumes (and layouts re-read: fix-layout
// gives the new ones their ranges). Open fds stay valid: a fop through an
// fd on a subvolume that left finds the file where it is now.
func (d *DHT) Regraph(kids []fop.Subvolume) (added, removed []string, err error) {
	d.regraph.Lock()
	defer d.regraph.Unlock()
	nv, added, removed, fresh, err := d.nextView(kids)
	if err != nil {
		return nil, nil, err
	}
	d.cur.Store(nv)
	if len(removed) > 0 {
		d.distrust.Store(true)
	}
	d.mu.Lock()
	d.inodes = map[xdr.GFID]*inode{xdr.RootGFID: {dir: true, mds: -1}}
	d.volCommit = 0
	d.mu.Unlock()
	for _, k := range fresh {
		k.Watch(func(bool) { d.notify() })
	}
	d.notify()
	return added, removed, nil
}

// CheckRegraph reports whether Regraph(kids) would be refused, changing
// nothing.
func (d *DHT) CheckRegraph(kids []fop.Subvolume) error {
	d.regraph.Lock()
	defer d.regraph.Unlock()
	_, _, _, _, err := d.nextView(kids)
	return err
}

// nextView is the view Regraph(kids) makes. REQUIRES d.regraph.
func (d *DHT) nextView(kids []fop.Subvolume) (nv *view, added, removed []string, fresh []fop.Subvolume, err error) {
	if len(kids) == 0 {
		return nil, nil, nil, nil, fmt.Errorf("%s: a distribute volume needs a subvolume", d.name)
	}
	old := d.view()
	nv = &view{kids: slices.Clone(old.kids), names: slices.Clone(old.names)}
	nv.in = make([]bool, len(old.kids))
	for _, k := range kids {
		i := slices.Index(nv.kids, k)
		if i < 0 {
			i = len(nv.kids)
			nv.kids = append(nv.kids, k)
			nv.names = append(nv.names, k.Name())
			nv.in = append(nv.in, false)
			fresh = append(fresh, k)
			added = append(added, k.Name())
		}
		if nv.in[i] {
			return nil, nil, nil, nil, fmt.Errorf("%s: subvolume %s listed twice", d.name, k.Name())
		}
		if n := len(nv.live); n > 0 && nv.live[n-1] > i {
			return nil, nil, nil, nil, fmt.Errorf("%s: the subvolumes were reordered (%s now comes before %s); remount to use the new order", d.name, nv.names[nv.live[n-1]], k.Name())
		}
		nv.names[i] = k.Name()
		nv.live = append(nv.live, i)
		nv.in[i] = true
	}
	if len(nv.kids) > maxSubvols {
		return nil, nil, nil, nil, fmt.Errorf("%s: the volume has had %d subvolumes since it was mounted, more than the %d a mount can address; remount", d.name, len(nv.kids), maxSubvols)
	}
	for _, i := range old.live {
		if !nv.in[i] {
			removed = append(removed, old.names[i])
		}
	}
	return nv, added, removed, fresh, nil
}

// Reconfigure applies new options and returns the names of those that
// changed.
func (d *DHT) Reconfigure(o Options) ([]string, error) {
	extra, err := compileHashRegex(o.ExtraHashRegex)
	if err != nil {
		return nil, fmt.Errorf("volfile: %s: extra-hash-regex %q: %w", d.name, o.ExtraHashRegex, err)
	}
	rsync, err := compileHashRegex(o.RsyncHashRegex)
	if err != nil {
		return nil, fmt.Errorf("volfile: %s: rsync-hash-regex %q: %w", d.name, o.RsyncHashRegex, err)
	}
	d.optMu.Lock()
	old := d.opts
	d.opts, d.hash = o, hasher{extra: extra, rsync: rsync}
	d.optMu.Unlock()
	var changed []string
	for _, c := range []struct {
		name string
		diff bool
	}{
		{"lookup-optimize", old.LookupOptimize != o.LookupOptimize},
		{"lookup-unhashed", old.LookupUnhashed != o.LookupUnhashed},
		{"readdir-optimize", old.ReaddirOptimize != o.ReaddirOptimize},
		{"weighted-rebalance", old.Weighted != o.Weighted},
		{"randomize-hash-range-by-gfid", old.RandomizeByGFID != o.RandomizeByGFID},
		{"rsync-hash-regex", old.RsyncHashRegex != o.RsyncHashRegex},
		{"extra-hash-regex", old.ExtraHashRegex != o.ExtraHashRegex},
		{"decommissioned-bricks", strings.Join(old.Decommissioned, ",") != strings.Join(o.Decommissioned, ",")},
	} {
		if c.diff {
			changed = append(changed, c.name)
		}
	}
	return changed, nil
}

func (d *DHT) options() (Options, hasher) {
	d.optMu.Lock()
	defer d.optMu.Unlock()
	return d.opts, d.hash
}

// usable says which subvolumes may get a range in a new layout: those
// with a copy of the directory that are not being decommissioned.
func (d *DHT) usable(v *view, have []bool) []bool {
	o, _ := d.options()
	out := make([]bool, len(have))
	for i := range have {
		out[i] = have[i] && i < len(v.in) && v.in[i] && !slices.Contains(o.Decommissioned, v.names[i])
	}
	return out
}

// newRanges gives a directory's ranges to the subvolumes of view v that
// usable marks, counting and ordering only the subvolumes of the volume
// now, as GlusterFS counts those of its graph
// (dht_selfheal_layout_new_directory); with old, each keeps as much of
// its old range as it can. The result is indexed like v.
func (d *DHT) newRanges(ctx context.Context, v *view, usable []bool, hash, commit uint32, old []slice) []slice {
	names := make([]string, len(v.live))
	use := make([]bool, len(v.live))
	var oldLive []slice
	for j, i := range v.live {
		names[j] = v.names[i]
		use[j] = i < len(usable) && usable[i]
		if old != nil {
			var s slice
			if i < len(old) {
				s = old[i]
			}
			oldLive = append(oldLive, s)
		}
	}
	var wl []uint64
	if w := d.weights(ctx, v, usable); w != nil {
		wl = make([]uint64, len(v.live))
		for j, i := range v.live {
			wl[j] = w[i]
		}
	}
	next := assign(names, use, wl, hash, commit)
	if old != nil {
		keepOverlap(names, next, oldLive)
	}
	out := make([]slice, v.n())
	for j, i := range v.live {
		out[i] = next[j]
	}
	return out
}

func (d *DHT) hashOf(name string) uint32 {
	_, h := d.options()
	return h.hash(name)
}

// Name is the distribute translator's name.
func (d *DHT) Name() string { return d.name }

// Up reports whether any subvolume is up: files on the others are still
// served.
func (d *DHT) Up() bool {
	v := d.view()
	for _, i := range v.live {
		if v.kids[i].Up() {
			return true
		}
	}
	return false
}

// SubvolumesUp says which subvolumes of the volume are up, in volfile
// order.
func (d *DHT) SubvolumesUp() []bool {
	v := d.view()
	up := make([]bool, len(v.live))
	for j, i := range v.live {
		up[j] = v.kids[i].Up()
	}
	return up
}

// Watch registers fn for the layer's up/down changes.
func (d *DHT) Watch(fn func(up bool)) {
	d.watchMu.Lock()
	d.watchers = append(d.watchers, fn)
	d.watchMu.Unlock()
}

func (d *DHT) notify() {
	up := d.Up()
	d.watchMu.Lock()
	defer d.watchMu.Unlock()
	if up == d.told {
		return
	}
	d.told = up
	for _, fn := range d.watchers {
		fn(up)
	}
}

// Close drops the layer's state; it owns no goroutines.
func (d *DHT) Close() error { return nil }

// errGone stands for the answer of a subvolume that left the volume.
var errGone = &fop.OpError{Brick: "distribute", Fop: "LOOKUP", Errno: syscall.ENOTCONN, Err: errors.New("the subvolume left the volume")}

// errf is an error of this layer with errno en.
func (d *DHT) errf(op string, g xdr.GFID, en syscall.Errno, format string, args ...any) error {
	return &fop.OpError{Brick: d.name, Fop: op, GFID: g, Errno: en, Err: fmt.Errorf(format, args...)}
}

// The inode table.

func (d *DHT) get(g xdr.GFID) (inode, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ino, ok := d.inodes[g]
	if !ok {
		return inode{}, false
	}
	return *ino, true
}

// REQUIRES d.mu.
func (d *DHT) slot(g xdr.GFID) *inode {
	ino, ok := d.inodes[g]
	if !ok {
		if len(d.inodes) >= maxInodes {
			n := 0
			for k := range d.inodes {
				if k != xdr.RootGFID {
					delete(d.inodes, k)
					if n++; n >= maxInodes/2 {
						break
					}
				}
			}
		}
		ino = &inode{mds: -1}
		d.inodes[g] = ino
	}
	return ino
}

// setMDS records directory g's mds copy.
func (d *DHT) setMDS(g xdr.GFID, i int) {
	d.mu.Lock()
	if ino, ok := d.inodes[g]; ok && ino.dir {
		ino.mds = i
	}
	d.mu.Unlock()
}

// setFile records that g's data is on subvolume sub.
func (d *DHT) setFile(g xdr.GFID, sub int) {
	d.setFileAt(g, sub, xdr.GFID{}, "")
}

// setFileAt is setFile for a file known by name in parent (a create or a
// lookup by name): the name is kept for placeBeside, which checks it.
func (d *DHT) setFileAt(g xdr.GFID, sub int, parent xdr.GFID, name string) {
	if g.IsZero() {
		return
	}
	d.mu.Lock()
	ino := d.slot(g)
	ino.dir, ino.sub, ino.lay = false, sub, nil
	if name != "" {
		ino.parent, ino.name = parent, name
	}
	d.mu.Unlock()
}

// setDir records that g is a directory named name in parent (when
// known) with layout l (nil: unchanged).
func (d *DHT) setDir(g, parent xdr.GFID, name string, l *layout) {
	if g.IsZero() {
		return
	}
	d.mu.Lock()
	ino := d.slot(g)
	ino.dir = true
	if name != "" {
		ino.parent, ino.name = parent, name
	}
	if l != nil {
		ino.lay, ino.layAt = l, time.Now()
	}
	d.mu.Unlock()
}

func (d *DHT) forget(g xdr.GFID) {
	if g == xdr.RootGFID {
		return
	}
	d.mu.Lock()
	delete(d.inodes, g)
	d.mu.Unlock()
}

// path returns the directory's path from the root as far as the table
// knows it; ok is false when a parent is unknown.
func (d *DHT) path(g xdr.GFID) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := ""
	for i := 0; g != xdr.RootGFID; i++ {
		ino, ok := d.inodes[g]
		if !ok || ino.name == "" || i > 4096 {
			return "", false
		}
		p = "/" + ino.name + p
		g = ino.parent
	}
	if p == "" {
		p = "/"
	}
	return p, true
}

// Replies and fan-out.

// all runs fn on every subvolume of view v at once and returns each
// one's error, by index (nil for those not live).
func (d *DHT) all(ctx context.Context, v *view, fn func(ctx context.Context, i int) error) []error {
	errs := make([]error, v.n())
	var wg sync.WaitGroup
	for _, i := range v.live {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(ctx, i)
		}()
	}
	wg.Wait()
	return errs
}

// pickErr chooses the errno to answer when every subvolume failed, as
// dht does: a real answer (ENOENT, EACCES...) over "down".
func pickErr(errs []error) error {
	var best error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if best == nil || (fop.Errno(best) == syscall.ENOTCONN && fop.Errno(err) != syscall.ENOTCONN) {
			best = err
		}
	}
	return best
}

// missing reports whether err says the name or gfid is not there.
func missing(err error) bool {
	en := fop.Errno(err)
	return en == syscall.ENOENT || en == syscall.ESTALE
}

func isDir(st xdr.Iatt) bool { return st.Mode&syscall.S_IFMT == syscall.S_IFDIR }

// isLinkto is check_is_linkfile: a regular file with mode exactly 01000
// and the linkto xattr.
func isLinkto(st xdr.Iatt, x xdr.Dict) bool {
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&07777 != syscall.S_ISVTX {
		return false
	}
	_, ok := x.Get(xattrLinkto)
	return ok
}

// linktoTarget returns the subvolume a linkto file names, or -1.
func (d *DHT) linktoTarget(x xdr.Dict) int {
	v, ok := x.Bytes(xattrLinkto)
	if !ok {
		return -1
	}
	for len(v) > 0 && v[len(v)-1] == 0 {
		v = v[:len(v)-1]
	}
	vw := d.view()
	for _, i := range vw.live {
		if vw.names[i] == string(v) {
			return i
		}
	}
	return -1
}

// withKeys returns xd plus the xattrs DHT asks every lookup for.
func withKeys(xd xdr.Dict, dir bool) xdr.Dict {
	x := append(xdr.Dict{}, xd...)
	x = x.With(xattrLinkto, xdr.Uint(256))
	x = x.With(xattrLayout, xdr.Uint(16))
	x = x.With(xattrMDS, xdr.Uint(4))
	if dir {
		x = x.With(xattrCommitHash, xdr.Uint(32))
	}
	return x
}

// internal marks a fop the layer makes on its own (glusterfs-internal-fop).
func internal(xd xdr.Dict) xdr.Dict {
	return append(xdr.Dict{}, xd...).With(keyInternalFop, xdr.Str("yes"))
}

// Stats returns the layer's figures for `brickfs status` and the metrics.
func (d *DHT) Stats() fop.DistributeStats {
	up := d.SubvolumesUp()
	s := fop.DistributeStats{Subvolumes: len(up)}
	for _, u := range up {
		if u {
			s.SubvolumesUp++
		}
	}
	d.mu.Lock()
	s.Inodes = len(d.inodes)
	d.mu.Unlock()
	d.followMu.Lock()
	s.Migrations = len(d.following)
	d.followMu.Unlock()
	return s
}
