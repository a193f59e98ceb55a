package dht

import (
	"context"
	"errors"
	"sync"
	"syscall"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// errIsDir tells onFile's callers that the gfid is a directory.
var errIsDir = errors.New("a directory")

// dirOrder returns the subvolumes a directory fop that needs one copy
// tries, in order: the one owning hash 0 (where DHT sends a directory's
// locks), then the others.
func (d *DHT) dirOrder(ctx context.Context, g xdr.GFID) []int {
	v := d.view()
	first := v.live[0]
	if l, err := d.layoutOf(ctx, g); err == nil {
		if f := l.first(); f >= 0 && d.isLive(f) {
			first = f
		}
	}
	order := []int{first}
	for _, i := range v.live {
		if i != first {
			order = append(order, i)
		}
	}
	return order
}

// inodeFop runs a fop that reads or changes one inode: on a file, where
// its data is; on a directory, with dirFn.
func (d *DHT) inodeFop(ctx context.Context, g xdr.GFID, fileFn func(i int) error, dirFn func() error) error {
	err := d.onFile(ctx, g, fileFn)
	if err == errIsDir {
		return dirFn()
	}
	return err
}

// attrCopy returns the copy of directory g whose attributes count: its
// mds copy when known, else the one owning hash 0.
func (d *DHT) attrCopy(ctx context.Context, g xdr.GFID) int {
	if ino, ok := d.get(g); ok && ino.dir && d.isLive(ino.mds) {
		return ino.mds
	}
	return d.dirOrder(ctx, g)[0]
}

// oneCopy runs fn on a directory's first copy that answers, the one whose
// attributes count first.
func (d *DHT) oneCopy(ctx context.Context, g xdr.GFID, fn func(i int) error) error {
	var errs []error
	first := d.attrCopy(ctx, g)
	order := []int{first}
	for _, i := range d.dirOrder(ctx, g) {
		if i != first {
			order = append(order, i)
		}
	}
	for _, i := range order {
		err := fn(i)
		if err == nil {
			return nil
		}
		en := fop.Errno(err)
		if en != syscall.ENOTCONN && !missing(err) {
			return err
		}
		errs = append(errs, err)
	}
	return pickErr(errs)
}

// everyCopy runs a change on a directory: first on the copy whose
// attributes count (its mds copy), which must take it, then on every
// other copy (dht_setattr); a lookup heals the others from it. The
// copies that failed are logged.
func (d *DHT) everyCopy(ctx context.Context, op string, g xdr.GFID, fn func(ctx context.Context, i int) error) (int, error) {
	i := d.attrCopy(ctx, g)
	if err := fn(ctx, i); err != nil {
		return -1, err
	}
	errs := d.all(ctx, d.view(), func(ctx context.Context, j int) error {
		if j == i {
			return nil
		}
		return fn(ctx, j)
	})
	for j, err := range errs {
		if err != nil && !missing(err) {
			d.log.Warn("directory changed on some subvolumes only; a lookup heals them", zap.String("fop", op),
				zap.String("subvol", d.subName(j)), zap.Stringer("gfid", g), zap.Error(err))
		}
	}
	return i, nil
}

// Stat returns a file's attributes from its data, a directory's from its
// first copy.
func (d *DHT) Stat(ctx context.Context, g xdr.GFID, xd xdr.Dict) (st xdr.Iatt, rx xdr.Dict, err error) {
	fn := func(i int) (err error) {
		st, rx, err = d.kid(i).Stat(ctx, g, xd)
		if err == nil && migrated(st) {
			return errMovedAway
		}
		strip1(&st)
		return err
	}
	err = d.inodeFop(ctx, g, fn, func() error { return d.oneCopy(ctx, g, fn) })
	return st, rx, err
}

// Setattr changes a file where its data is, a directory on every copy.
func (d *DHT) Setattr(ctx context.Context, g xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	type reply struct {
		pre, post xdr.Iatt
		rx        xdr.Dict
	}
	var rs bySub[reply]
	fn := func(i int) error {
		pre, post, rx, err := d.kid(i).Setattr(ctx, g, attr, valid, xd)
		if err == nil && !isDir(pre) && migrated(pre) {
			// The change reached a copy that had become a linkto file:
			// its linkto mode back, and the change made where the file is.
			if valid&fop.SetAttrMode != 0 && !migrated(post) {
				lt := xdr.Iatt{Mode: syscall.S_IFREG | syscall.S_ISVTX}
				_, _, _, _ = d.kid(i).Setattr(asRoot(ctx), g, &lt, fop.SetAttrMode, internal(nil))
			}
			return errMovedAway
		}
		rs.set(i, reply{pre, post, rx})
		return err
	}
	i := -1
	err = d.inodeFop(ctx, g, func(j int) error { i = j; return fn(j) }, func() (err error) {
		i, err = d.everyCopy(ctx, "SETATTR", g, func(ctx context.Context, j int) error { return fn(j) })
		return err
	})
	if err != nil {
		return pre, post, nil, err
	}
	r := rs.get(i)
	strip1(&r.pre)
	strip1(&r.post)
	return r.pre, r.post, r.rx, nil
}

// bySub holds one reply per subvolume of a fop that reaches several.
type bySub[T any] struct {
	mu sync.Mutex
	m  map[int]T // GUARDED_BY(mu)
}

func (b *bySub[T]) set(i int, v T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.m == nil {
		b.m = map[int]T{}
	}
	b.m[i] = v
}

func (b *bySub[T]) get(i int) T {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.m[i]
}

// Truncate truncates a file where its data is.
func (d *DHT) Truncate(ctx context.Context, g xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	fn := func(i int) (err error) {
		pre, post, rx, err = d.kid(i).Truncate(ctx, g, size, xd)
		if err == nil && migrated(post) {
			// A linkto file now: the file was migrated away. ESTALE
			// makes onFile find it and truncate it there
			// (dht_truncate_cbk's phase-2 check).
			return errSourceGone
		}
		if err == nil && phase1(post) {
			err = d.mirrorGFID(ctx, g, i, func(t int, extra xdr.Dict) error {
				_, _, _, err := d.kid(t).Truncate(ctx, g, size, withExtra(xd, extra))
				return err
			})
		}
		strip1(&pre)
		strip1(&post)
		return err
	}
	err = d.inodeFop(ctx, g, fn, func() error { return d.errf("TRUNCATE", g, syscall.EISDIR, "is a directory") })
	return pre, post, rx, err
}

// Access checks access where a file's data is, or on a directory's first
// copy.
func (d *DHT) Access(ctx context.Context, g xdr.GFID, mask uint32, xd xdr.Dict) (rx xdr.Dict, err error) {
	fn := func(i int) (err error) { rx, err = d.kid(i).Access(ctx, g, mask, xd); return err }
	err = d.inodeFop(ctx, g, fn, func() error { return d.oneCopy(ctx, g, fn) })
	return rx, err
}

// Readlink reads a symlink where it is.
func (d *DHT) Readlink(ctx context.Context, g xdr.GFID, xd xdr.Dict) (target string, rx xdr.Dict, err error) {
	fn := func(i int) (err error) { target, rx, err = d.kid(i).Readlink(ctx, g, xd); return err }
	err = d.inodeFop(ctx, g, fn, func() error { return d.errf("READLINK", g, syscall.EINVAL, "is a directory") })
	return target, rx, err
}

// Getxattr reads a file's xattrs where its data is, a directory's from
// its first copy.
func (d *DHT) Getxattr(ctx context.Context, g xdr.GFID, name string, xd xdr.Dict) (v, rx xdr.Dict, err error) {
	if name == fop.XattrSubvolume {
		i, dir, err := d.where(ctx, g)
		if err != nil {
			return nil, nil, err
		}
		if dir {
			return nil, nil, d.errf("GETXATTR", g, syscall.ENODATA, "a directory is on every subvolume")
		}
		return xdr.Dict{{Key: name, Value: xdr.Str(d.subName(i))}}, nil, nil
	}
	fn := func(i int) (err error) { v, rx, err = d.kid(i).Getxattr(ctx, g, name, xd); return err }
	err = d.inodeFop(ctx, g, fn, func() error { return d.oneCopy(ctx, g, fn) })
	return v, rx, err
}

// Setxattr sets a file's xattrs where its data is, a directory's on
// every copy. The layout xattrs are DHT's own.
func (d *DHT) Setxattr(ctx context.Context, g xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (rx xdr.Dict, err error) {
	for _, p := range dict {
		if p.Key == xattrLayout || p.Key == xattrLinkto || p.Key == xattrMDS {
			return nil, d.errf("SETXATTR", g, syscall.EPERM, "%s is kept by the distribute layer", p.Key)
		}
	}
	var rxs bySub[xdr.Dict]
	fn := func(i int) error { rx, err := d.kid(i).Setxattr(ctx, g, dict, flags, xd); rxs.set(i, rx); return err }
	i := -1
	err = d.inodeFop(ctx, g, func(j int) error { i = j; return fn(j) }, func() (err error) {
		i, err = d.everyCopy(ctx, "SETXATTR", g, func(ctx context.Context, j int) error { return fn(j) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return rxs.get(i), nil
}

// Removexattr removes a file's xattr where its data is, a directory's on
// every copy.
func (d *DHT) Removexattr(ctx context.Context, g xdr.GFID, name string, xd xdr.Dict) (rx xdr.Dict, err error) {
	if name == xattrLayout || name == xattrLinkto || name == xattrMDS {
		return nil, d.errf("REMOVEXATTR", g, syscall.EPERM, "%s is kept by the distribute layer", name)
	}
	var rxs bySub[xdr.Dict]
	fn := func(i int) error { rx, err := d.kid(i).Removexattr(ctx, g, name, xd); rxs.set(i, rx); return err }
	i := -1
	err = d.inodeFop(ctx, g, func(j int) error { i = j; return fn(j) }, func() (err error) {
		i, err = d.everyCopy(ctx, "REMOVEXATTR", g, func(ctx context.Context, j int) error { return fn(j) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return rxs.get(i), nil
}

// Xattrop applies to a file where its data is, a directory's first copy.
func (d *DHT) Xattrop(ctx context.Context, g xdr.GFID, flags uint32, dict, xd xdr.Dict) (v, rx xdr.Dict, err error) {
	fn := func(i int) (err error) { v, rx, err = d.kid(i).Xattrop(ctx, g, flags, dict, xd); return err }
	err = d.inodeFop(ctx, g, fn, func() error { return d.oneCopy(ctx, g, fn) })
	return v, rx, err
}

// Statfs sums every subvolume's space, in the first one's block size
// (dht_statfs_cbk); a subvolume that is down counts as nothing.
func (d *DHT) Statfs(ctx context.Context, g xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error) {
	v := d.view()
	sts := make([]xdr.Statfs, v.n())
	errs := d.all(ctx, v, func(ctx context.Context, i int) (err error) {
		sts[i], _, err = d.kid(i).Statfs(ctx, g, xd)
		return err
	})
	var out xdr.Statfs
	found := false
	for _, i := range v.live {
		st := sts[i]
		if errs[i] != nil {
			continue
		}
		if !found {
			out, found = st, true
			continue
		}
		scale := func(n uint64) uint64 {
			if out.Frsize == 0 || st.Frsize == out.Frsize {
				return n
			}
			return n * st.Frsize / out.Frsize
		}
		out.Blocks += scale(st.Blocks)
		out.Bfree += scale(st.Bfree)
		out.Bavail += scale(st.Bavail)
		out.Files += st.Files
		out.Ffree += st.Ffree
		out.Favail += st.Favail
		out.Namemax = min(out.Namemax, st.Namemax)
	}
	if !found {
		return out, nil, pickErr(errs)
	}
	return out, nil, nil
}

// Inodelk locks a file where its data is, a directory on its copy that
// owns hash 0 (dht_inodelk's cached subvolume).
func (d *DHT) Inodelk(ctx context.Context, g xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (rx xdr.Dict, err error) {
	fn := func(i int) (err error) { rx, err = d.kid(i).Inodelk(ctx, g, domain, cmd, fl, xd); return err }
	err = d.inodeFop(ctx, g, fn, func() error { return fn(d.dirOrder(ctx, g)[0]) })
	return rx, err
}

// Entrylk locks a name in a directory on the directory's copy that owns
// hash 0, where every client sends it.
func (d *DHT) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	return d.kid(d.dirOrder(ctx, parent)[0]).Entrylk(ctx, parent, name, domain, cmd, typ, xd)
}

// Fd fops. A file's fd is its subvolume's, with the subvolume index in
// the fd's context; a directory's is the layer's own, over one fd per
// subvolume.

// dirFd is the layer's state of an open directory.
type dirFd struct {
	fds []*fop.Fd // per subvolume; nil where the directory is missing
	// Which copy lists which entries is decided once, at opendir, so a
	// layout or up/down change mid-listing lists nothing twice.
	lay     *layout
	firstUp int
	strays  strayWatch
}

// fileSub returns the subvolume of an open file (or of an anonymous fd's
// inode).
func (d *DHT) fileSub(ctx context.Context, f *fop.Fd) (int, error) {
	if v, ok := f.Ctx(d); ok {
		if i, ok := v.(int); ok {
			return i, nil
		}
	}
	i, dir, err := d.where(ctx, f.GFID)
	if err != nil {
		return 0, err
	}
	if dir {
		return 0, d.errf("FD", f.GFID, syscall.EISDIR, "an fd of a directory used as a file's")
	}
	return i, nil
}

func dirOf(f *fop.Fd) *dirFd {
	if v, ok := f.Ctx(dirKey{}); ok {
		return v.(*dirFd)
	}
	return nil
}

type dirKey struct{}

// onFd runs a fop on an open file's subvolume, or on an open directory's
// first copy.
func (d *DHT) onFd(ctx context.Context, f *fop.Fd, fn func(i int, f *fop.Fd) error) error {
	if df := dirOf(f); df != nil {
		var errs []error
		for _, i := range d.dirOrder(ctx, f.GFID) {
			if i >= len(df.fds) || df.fds[i] == nil {
				continue // a subvolume added since opendir
			}
			err := fn(i, df.fds[i])
			if err == nil || fop.Errno(err) != syscall.ENOTCONN {
				return err
			}
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			return d.errf("FD", f.GFID, syscall.EBADF, "no copy of the directory is open")
		}
		return pickErr(errs)
	}
	i, cf, err := d.target(ctx, f)
	if err != nil {
		return err
	}
	return fn(i, cf)
}

// A file the rebalance daemon migrates while it is open: once the copy
// an fd was opened on becomes a linkto file (migration phase 2, mode
// exactly 01000), changes through that fd must go to the new copy, as
// dht_writev_cbk's phase-2 check sends them (dht_rebalance_complete_check).
// The layer then opens the file where it is now, records that open in
// the fd, and redoes the change there.

type movedKey struct{}

type moved struct {
	sub int
	fd  *fop.Fd
}

// target returns where a file fd's fops go: where the file was opened,
// or where it was followed to.
func (d *DHT) target(ctx context.Context, f *fop.Fd) (int, *fop.Fd, error) {
	i, cf, err := d.opened(ctx, f)
	if err == nil && !f.Anon {
		if ino, ok := d.get(f.GFID); ok && !ino.dir && ino.sub != i && d.isLive(ino.sub) {
			// The table puts the file elsewhere (a clone destination moved
			// beside its source by this mount): if the fd's copy has left
			// (a linkto file now, or gone), the fd follows the file before
			// any fop reaches the old copy. A table that is merely stale
			// (a leftover copy found first) changes nothing.
			if st, _, serr := d.kid(i).Fstat(asRoot(ctx), cf, nil); (serr == nil && migrated(st)) || (serr != nil && missing(serr)) {
				if _, ferr := d.follow(ctx, f, i); ferr == nil {
					i, cf, err = d.opened(ctx, f)
				}
			}
		}
	}
	if err != nil || d.isLive(i) {
		return i, cf, err
	}
	// The subvolume left the volume (remove-brick commit): the file is
	// where the rebalance daemon moved it, if anywhere.
	if _, err := d.follow(ctx, f, i); err != nil {
		return 0, nil, d.errf("FD", f.GFID, syscall.EIO, "the file's subvolume %s left the volume and the file was not found on the others: %v", d.subName(i), err)
	}
	return d.opened(ctx, f)
}

// opened returns where f was opened or last followed to.
func (d *DHT) opened(ctx context.Context, f *fop.Fd) (int, *fop.Fd, error) {
	if v, ok := f.Ctx(movedKey{}); ok {
		m := v.(*moved)
		return m.sub, m.fd, nil
	}
	i, err := d.fileSub(ctx, f)
	return i, f, err
}

// migrated reports whether a change's reply shows its copy turned into a
// linkto file.
func migrated(post xdr.Iatt) bool {
	return post.Mode&syscall.S_IFMT == syscall.S_IFREG && post.Mode&07777 == syscall.S_ISVTX
}

// follow makes f's fops go where the file's data is now, after a reply
// through subvolume was showed its copy there became a linkto file. An
// anonymous fd (shard's block I/O) needs nothing but the table: it opens
// nothing. Another fd is opened where the file is now (as root, as
// GlusterFS reopens: the caller may no longer have the permission), once
// however many fops on it noticed. moved reports whether the fops should
// be redone.
func (d *DHT) follow(ctx context.Context, f *fop.Fd, was int) (bool, error) {
	defer d.lockFollow(f.GFID)()
	if !f.Anon {
		if cur, _, err := d.opened(ctx, f); err == nil && cur != was {
			return true, nil // another fop on this fd followed it already
		}
	}
	d.forget(f.GFID)
	i, dir, err := d.where(ctx, f.GFID)
	if err != nil {
		return false, err
	}
	if dir || i == was {
		return false, nil // a file whose mode is 01000, not a migration
	}
	if f.Anon {
		return true, nil
	}
	nf, _, err := d.kid(i).Open(asRoot(ctx), f.GFID, f.Flags&^uint32(syscall.O_CREAT|syscall.O_EXCL|syscall.O_TRUNC), nil)
	if err != nil {
		return false, err
	}
	if v, ok := f.Ctx(movedKey{}); ok {
		old := v.(*moved)
		_ = d.kid(old.sub).Release(context.WithoutCancel(ctx), old.fd)
	}
	f.SetCtx(movedKey{}, &moved{sub: i, fd: nf})
	if v, ok := f.Ctx(phase1Key{}); ok {
		// The copy phase-1 changes were repeated on is the file now.
		f.DelCtx(phase1Key{})
		m := v.(*moved)
		_ = d.kid(m.sub).Release(context.WithoutCancel(ctx), m.fd)
	}
	d.log.Warn("an open file was migrated (by rebalance, or moved beside a clone source); its fd follows it",
		zap.Stringer("gfid", f.GFID), zap.String("from", d.subName(was)), zap.String("to", d.subName(i)))
	return true, nil
}

// anonMoved reports whether file f (an anonymous fd whose fop on
// subvolume was found its copy missing) is now elsewhere.
func (d *DHT) anonMoved(ctx context.Context, f *fop.Fd, was int) bool {
	d.forget(f.GFID)
	i, dir, err := d.where(ctx, f.GFID)
	return err == nil && !dir && i != was
}

// movedAway reports whether file f, whose copy on subvolume was answered
// a fop with ENOENT or ESTALE, is elsewhere now, and makes f follow it.
func (d *DHT) movedAway(ctx context.Context, f *fop.Fd, was int) bool {
	if f.Anon {
		return d.anonMoved(ctx, f, was)
	}
	moved, err := d.follow(ctx, f, was)
	return err == nil && moved
}

// redoIfMoved follows f when post (a reply through subvolume i) shows its
// copy became a linkto file, and reports whether the fop must be redone.
func (d *DHT) redoIfMoved(ctx context.Context, f *fop.Fd, i int, post xdr.Iatt) (bool, error) {
	if !migrated(post) {
		return false, nil
	}
	moved, err := d.follow(ctx, f, i)
	if err != nil {
		return false, d.errf("FD", f.GFID, syscall.EIO, "the file was migrated while open and could not be followed: %v", err)
	}
	return moved, nil
}

// change runs a change through a file fd and, if its reply shows the file
// migrated away, redoes it where the file is now; if the reply shows the
// file being migrated (phase 1), repeats it on the copy being filled
// (mirror). fn gets extra xdata (nil but for the repeat, whose reply the
// caller must not take: the source's is the file's).
func (d *DHT) change(ctx context.Context, f *fop.Fd, fn func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error)) error {
	if dirOf(f) != nil {
		return d.onFd(ctx, f, func(i int, f *fop.Fd) error { _, err := fn(i, f, nil); return err })
	}
	for try := 0; ; try++ {
		i, cf, err := d.target(ctx, f)
		if err != nil {
			return err
		}
		post, err := fn(i, cf, nil)
		if err != nil {
			if try == 0 && missing(err) && d.movedAway(ctx, f, i) {
				// The copy the fd reached is gone: the daemon finished
				// migrating the file and removed its old copy
				// (dht_inode_missing, then dht_rebalance_complete_check).
				continue
			}
			return err
		}
		var again bool
		if phase1(post) {
			if again, err = d.mirror(ctx, f, i, fn); err == nil && again {
				// The migration ended under the change: the file is
				// elsewhere now.
				_, err = d.follow(ctx, f, i)
			}
		} else {
			again, err = d.redoIfMoved(ctx, f, i, post)
		}
		if err != nil || !again {
			return err
		}
		if try == 2 {
			return d.errf("FD", f.GFID, syscall.EIO, "the file kept moving while it was changed")
		}
	}
}

// Adopt makes f, an fd opened on subvolume sub before this layer was
// built over it (the volume grew while mounted), one of the layer's.
func (d *DHT) Adopt(f *fop.Fd, sub int) {
	if _, ok := f.Ctx(d); !ok {
		f.SetCtx(d, sub)
	}
}

// Open opens a file where its data is.
func (d *DHT) Open(ctx context.Context, g xdr.GFID, flags uint32, xd xdr.Dict) (f *fop.Fd, rx xdr.Dict, err error) {
	sub := -1
	fn := func(i int) (err error) { sub = i; f, rx, err = d.kid(i).Open(ctx, g, flags, xd); return err }
	err = d.inodeFop(ctx, g, fn, func() error { return d.errf("OPEN", g, syscall.EISDIR, "is a directory") })
	if err != nil {
		return nil, nil, err
	}
	f.SetCtx(d, sub)
	d.countOpen(g, 1)
	return f, rx, nil
}

// Opendir opens a directory on every subvolume that has it.
func (d *DHT) Opendir(ctx context.Context, g xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	v := d.view()
	df := &dirFd{fds: make([]*fop.Fd, v.n())}
	errs := d.all(ctx, v, func(ctx context.Context, i int) (err error) {
		df.fds[i], _, err = d.kid(i).Opendir(ctx, g, xd)
		return err
	})
	opened := 0
	var bad error
	for _, i := range v.live {
		err := errs[i]
		switch {
		case err == nil:
			opened++
		case missing(err):
		default:
			bad = d.errf("OPENDIR", g, fop.Errno(err), "%s cannot open its copy of the directory (%v); a listing needs every replica set, or it would hide that set's files", d.subName(i), err)
		}
	}
	if bad == nil {
		l, err := d.layoutOf(ctx, g)
		if err != nil {
			bad = err
		}
		df.lay, df.firstUp = l, -1
		for i, cf := range df.fds {
			if cf != nil {
				df.firstUp = i
				break
			}
		}
	}
	if bad != nil || opened == 0 {
		for i, f := range df.fds {
			if f != nil {
				_ = d.kid(i).Release(context.WithoutCancel(ctx), f)
			}
		}
		if bad == nil {
			bad = pickErr(errs)
		}
		return nil, nil, bad
	}
	f := &fop.Fd{GFID: g, Dir: true}
	f.SetCtx(dirKey{}, df)
	return f, nil, nil
}

// Release closes a file's fd, or every copy of a directory's.
func (d *DHT) Release(ctx context.Context, f *fop.Fd) error {
	if df := dirOf(f); df != nil {
		var first error
		for i, cf := range df.fds {
			if cf != nil {
				if err := d.kid(i).Release(ctx, cf); err != nil && first == nil {
					first = err
				}
			}
		}
		return first
	}
	d.dropDstFd(ctx, f)
	if !f.Anon {
		d.countOpen(f.GFID, -1)
	}
	if v, ok := f.Ctx(movedKey{}); ok {
		m := v.(*moved)
		_ = d.kid(m.sub).Release(ctx, m.fd)
	}
	i, err := d.fileSub(ctx, f)
	if err != nil {
		return err
	}
	return d.kid(i).Release(ctx, f)
}

// Read reads where the file's data is. A short read may be the end of a
// copy that was migrated away (a linkto file is empty): then the fd
// follows the file and reads again (dht_readv_cbk's phase-2 check).
func (d *DHT) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) (b []byte, rx xdr.Dict, err error) {
	if dirOf(f) != nil {
		err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) { b, rx, err = d.kid(i).Read(ctx, f, off, size, xd); return err })
		return b, rx, err
	}
	i, cf, err := d.target(ctx, f)
	if err != nil {
		return nil, nil, err
	}
	b, rx, err = d.kid(i).Read(ctx, cf, off, size, xd)
	if err != nil && missing(err) && d.movedAway(ctx, f, i) {
		i, cf, _ = d.target(ctx, f)
		return d.kid(i).Read(ctx, cf, off, size, xd)
	}
	// A migrated-away copy is an empty linkto file: only an empty read
	// may mean that (a short one is the file's end).
	if err != nil || len(b) > 0 || size == 0 {
		return b, rx, err
	}
	st, _, serr := d.kid(i).Fstat(ctx, cf, nil)
	if serr != nil {
		return b, rx, nil
	}
	if again, ferr := d.redoIfMoved(ctx, f, i, st); ferr != nil || !again {
		return b, rx, ferr
	}
	if i, cf, err = d.target(ctx, f); err != nil {
		return nil, nil, err
	}
	return d.kid(i).Read(ctx, cf, off, size, xd)
}

// Write writes where the file's data is.
func (d *DHT) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	err = d.change(ctx, f, func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error) {
		p, q, r, err := d.kid(i).Write(ctx, f, off, data, withExtra(xd, extra))
		if extra == nil {
			pre, post, rx = p, q, r
		}
		return q, err
	})
	strip1(&pre)
	strip1(&post)
	return pre, post, rx, err
}

// Flush flushes where the file is.
func (d *DHT) Flush(ctx context.Context, f *fop.Fd, xd xdr.Dict) (rx xdr.Dict, err error) {
	err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) { rx, err = d.kid(i).Flush(ctx, f, xd); return err })
	return rx, err
}

// Fsync syncs where the file is.
func (d *DHT) Fsync(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (rx xdr.Dict, err error) {
	err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) { rx, err = d.kid(i).Fsync(ctx, f, datasync, xd); return err })
	if err != nil {
		return rx, err
	}
	// Changes repeated on the copy a migration fills are synced there
	// too (dht_fsync_cbk syncs the destination in phase 1).
	if v, ok := f.Ctx(phase1Key{}); ok {
		defer d.lockFollow(f.GFID)()
		if v, ok = f.Ctx(phase1Key{}); ok { // still kept under the lock
			m := v.(*moved)
			if _, ferr := d.kid(m.sub).Fsync(ctx, m.fd, datasync, nil); ferr != nil && !missing(ferr) {
				return rx, ferr
			}
		}
	}
	return rx, nil
}

// Fsyncdir syncs every copy of a directory.
func (d *DHT) Fsyncdir(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	df := dirOf(f)
	if df == nil {
		return nil, d.errf("FSYNCDIR", f.GFID, syscall.ENOTDIR, "not a directory fd")
	}
	errs := d.all(ctx, d.view(), func(ctx context.Context, i int) error {
		if i >= len(df.fds) || df.fds[i] == nil {
			return nil
		}
		_, err := d.kid(i).Fsyncdir(ctx, df.fds[i], datasync, xd)
		return err
	})
	return nil, pickErr(errs)
}

// Fstat stats through the fd (following a file migrated away).
func (d *DHT) Fstat(ctx context.Context, f *fop.Fd, xd xdr.Dict) (st xdr.Iatt, rx xdr.Dict, err error) {
	err = d.change(ctx, f, func(i int, f *fop.Fd, _ xdr.Dict) (xdr.Iatt, error) {
		st, rx, err = d.kid(i).Fstat(ctx, f, xd)
		if isDir(st) {
			return xdr.Iatt{}, err
		}
		out := st
		strip1(&out) // a stat changes nothing: no copy to repeat it on
		return out, err
	})
	strip1(&st)
	return st, rx, err
}

// Fsetattr changes a file through its fd, a directory on every copy.
func (d *DHT) Fsetattr(ctx context.Context, f *fop.Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if dirOf(f) != nil {
		return d.Setattr(ctx, f.GFID, attr, valid, xd)
	}
	err = d.change(ctx, f, func(i int, cf *fop.Fd, _ xdr.Dict) (xdr.Iatt, error) {
		pre, post, rx, err = d.kid(i).Fsetattr(ctx, cf, attr, valid, xd)
		if err == nil && migrated(pre) && valid&fop.SetAttrMode != 0 && !migrated(post) {
			// The change reached a copy that had become a linkto file:
			// give it its linkto mode back before following the file.
			lt := xdr.Iatt{Mode: syscall.S_IFREG | syscall.S_ISVTX}
			_, _, _, _ = d.kid(i).Fsetattr(asRoot(ctx), cf, &lt, fop.SetAttrMode, internal(nil))
		}
		// Attributes reach the new copy when the migration ends
		// (dht_file_setattr_cbk): nothing to repeat in phase 1.
		out := pre
		strip1(&out)
		return out, err
	})
	strip1(&pre)
	strip1(&post)
	return pre, post, rx, err
}

// Ftruncate truncates through the fd.
func (d *DHT) Ftruncate(ctx context.Context, f *fop.Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	err = d.change(ctx, f, func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error) {
		p, q, r, err := d.kid(i).Ftruncate(ctx, f, size, withExtra(xd, extra))
		if extra == nil {
			pre, post, rx = p, q, r
		}
		return q, err
	})
	strip1(&pre)
	strip1(&post)
	return pre, post, rx, err
}

// Fallocate allocates through the fd.
func (d *DHT) Fallocate(ctx context.Context, f *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	err = d.change(ctx, f, func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error) {
		p, q, r, err := d.kid(i).Fallocate(ctx, f, mode, off, length, withExtra(xd, extra))
		if extra == nil {
			pre, post, rx = p, q, r
		}
		return q, err
	})
	strip1(&pre)
	strip1(&post)
	return pre, post, rx, err
}

// Discard punches through the fd.
func (d *DHT) Discard(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	err = d.change(ctx, f, func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error) {
		p, q, r, err := d.kid(i).Discard(ctx, f, off, length, withExtra(xd, extra))
		if extra == nil {
			pre, post, rx = p, q, r
		}
		return q, err
	})
	strip1(&pre)
	strip1(&post)
	return pre, post, rx, err
}

// Zerofill zeroes through the fd.
func (d *DHT) Zerofill(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	err = d.change(ctx, f, func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error) {
		p, q, r, err := d.kid(i).Zerofill(ctx, f, off, length, withExtra(xd, extra))
		if extra == nil {
			pre, post, rx = p, q, r
		}
		return q, err
	})
	strip1(&pre)
	strip1(&post)
	return pre, post, rx, err
}

// Seek seeks through the fd.
func (d *DHT) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (n uint64, rx xdr.Dict, err error) {
	err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) { n, rx, err = d.kid(i).Seek(ctx, f, off, what, xd); return err })
	return n, rx, err
}

// Lk takes POSIX locks where the file is.
func (d *DHT) Lk(ctx context.Context, f *fop.Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (out xdr.Flock, rx xdr.Dict, err error) {
	err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) { out, rx, err = d.kid(i).Lk(ctx, f, cmd, fl, xd); return err })
	return out, rx, err
}

// Fxattrop applies through the fd.
func (d *DHT) Fxattrop(ctx context.Context, f *fop.Fd, flags uint32, dict, xd xdr.Dict) (v, rx xdr.Dict, err error) {
	err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) {
		v, rx, err = d.kid(i).Fxattrop(ctx, f, flags, dict, xd)
		return err
	})
	return v, rx, err
}

// Finodelk locks through the fd (a directory's on its hash-0 copy).
func (d *DHT) Finodelk(ctx context.Context, f *fop.Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (rx xdr.Dict, err error) {
	err = d.onFd(ctx, f, func(i int, f *fop.Fd) (err error) {
		rx, err = d.kid(i).Finodelk(ctx, f, domain, cmd, fl, xd)
		return err
	})
	return rx, err
}

// CopyFileRange copies within one subvolume. A destination on another
// subvolume than its source is first moved beside it while it holds no
// data (placeBeside); otherwise the layer answers EXDEV, and the kernel or
// the caller copies the bytes.
func (d *DHT) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	si, inf, err := d.target(ctx, in)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	so, outf, err := d.target(ctx, out)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	if si != so && d.placeBeside(ctx, out, so, si) {
		// The destination moved beside the source: its fd follows it.
		if _, err := d.follow(ctx, out, so); err != nil {
			return 0, xdr.Iatt{}, nil, d.errf("COPY_FILE_RANGE", out.GFID, syscall.EXDEV, "the destination moved to %s and could not be reopened there (%v); the kernel copies", d.subName(si), err)
		}
		if so, outf, err = d.target(ctx, out); err != nil {
			return 0, xdr.Iatt{}, nil, err
		}
	}
	if si != so {
		return 0, xdr.Iatt{}, nil, d.errf("COPY_FILE_RANGE", in.GFID, syscall.EXDEV, "source and destination are on different subvolumes")
	}
	n, post, rx, err := d.kid(si).CopyFileRange(ctx, inf, offIn, outf, offOut, size, flags, xd)
	redo := d.errf("COPY_FILE_RANGE", out.GFID, syscall.EXDEV, "a file was migrated during the copy; the kernel copies this range itself")
	switch {
	case err != nil && missing(err):
		// A copy gone: the daemon finished moving a file and removed
		// its old copy. The kernel's own copy goes through the fds,
		// which follow files.
		return 0, xdr.Iatt{}, nil, redo
	case err != nil:
		return 0, xdr.Iatt{}, nil, err
	case n > 0 && migrated(post):
		// The destination's copy had become a linkto file: what landed
		// there is not the file's.
		return 0, xdr.Iatt{}, nil, redo
	case n == 0 && size > 0:
		// An empty copy may be a source migrated away (its old copy is
		// an empty linkto file), as a read may (Read).
		if st, _, serr := d.kid(si).Fstat(ctx, inf, nil); serr == nil && migrated(st) {
			return 0, xdr.Iatt{}, nil, redo
		}
	case phase1(post):
		// The destination file is being migrated: its new copy gets the
		// copied bytes too, read back (as root, through an anonymous fd:
		// out may be write-only) from where they landed.
		rfd := fop.AnonFd(out.GFID, uint32(syscall.O_RDONLY))
		for done := uint64(0); done < n && err == nil; {
			chunk := uint32(min(n-done, 1<<20))
			var b []byte
			if b, _, err = d.kid(so).Read(asRoot(ctx), rfd, offOut+done, chunk, nil); err != nil || len(b) == 0 {
				break
			}
			var again bool
			again, err = d.mirror(ctx, out, so, func(i int, f *fop.Fd, extra xdr.Dict) (xdr.Iatt, error) {
				_, q, _, err := d.kid(i).Write(ctx, f, offOut+done, b, withExtra(nil, extra))
				return q, err
			})
			if again && err == nil {
				err = redo
			}
			done += uint64(len(b))
		}
		if err != nil {
			return 0, xdr.Iatt{}, nil, err
		}
	}
	strip1(&post)
	return n, post, rx, err
}
