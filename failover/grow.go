package failover

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
	"github.com/brickfs/brickfs/failover/dht"
)

// single carries out cluster/distribute mounted over one subvolume as
// GlusterFS does (dht_pt_*: every fop passes through, and a new directory
// gets the layout xattr covering the whole hash range), until the volume
// grows (add-brick of a second replica set, the way most volumes grow):
// then the DHT layer takes over (grow), over the same subvolume and the
// new ones, and every fop goes to it. The layers above keep talking to
// single, so nothing above changes. Directories opened before the change
// are listed to their end from the subvolume they were opened on (the new
// ones hold nothing in them until a rebalance); files opened before are
// the subvolume's fds, which the DHT layer finds the file of by itself.
type single struct {
	name string
	kid  fop.Subvolume
	d    atomic.Pointer[dht.DHT] // set once it grew

	watchMu  sync.Mutex
	watchers []func(up bool) // GUARDED_BY(watchMu)
}

func newSingle(name string, kid fop.Subvolume) *single {
	return &single{name: name, kid: kid}
}

// sub is where fops go now.
func (s *single) sub() fop.Subvolume {
	if d := s.d.Load(); d != nil {
		return d
	}
	return s.kid
}

// beforeKey marks an fd opened before the volume grew: true for a
// directory's.
type beforeKey struct{}

// forFd is where fops on f go: a directory opened before the volume grew
// is listed from the subvolume; a file opened before is handed to the DHT
// layer as open on the subvolume (its index 0), so it follows a migration.
func (s *single) forFd(f *fop.Fd) fop.Subvolume {
	if v, ok := f.Ctx(beforeKey{}); ok {
		if v.(bool) {
			return s.kid
		}
		if d := s.d.Load(); d != nil {
			d.Adopt(f, 0)
			return d
		}
	}
	return s.sub()
}

// Open opens a file, marking its fd when the volume has not grown.
func (s *single) Open(ctx context.Context, g xdr.GFID, flags uint32, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	if d := s.d.Load(); d != nil {
		return d.Open(ctx, g, flags, xd)
	}
	f, rx, err := s.kid.Open(ctx, g, flags, xd)
	if err == nil {
		f.SetCtx(beforeKey{}, false)
	}
	return f, rx, err
}

// Create creates a file, marking its fd when the volume has not grown.
func (s *single) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, g xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	if d := s.d.Load(); d != nil {
		return d.Create(ctx, parent, name, flags, mode, umask, g, xd)
	}
	f, st, rx, err := s.kid.Create(ctx, parent, name, flags, mode, umask, g, xd)
	if err == nil {
		f.SetCtx(beforeKey{}, false)
	}
	return f, st, rx, err
}

// grow hands every fop to d from now on.
func (s *single) grow(d *dht.DHT) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	s.d.Store(d)
	for _, fn := range s.watchers {
		d.Watch(fn)
	}
}

// Name is the distribute translator's name.
func (s *single) Name() string { return s.name }

// Up is the subvolume's state, or the DHT layer's once it grew.
func (s *single) Up() bool { return s.sub().Up() }

// Watch registers fn for up/down changes of whichever carries the fops.
func (s *single) Watch(fn func(up bool)) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if d := s.d.Load(); d != nil {
		d.Watch(fn)
		return
	}
	s.watchers = append(s.watchers, fn)
	s.kid.Watch(func(up bool) {
		if s.d.Load() == nil {
			fn(up)
		}
	})
}

// dhtLayout is trusted.glusterfs.dht for one subvolume: commit-hash 0,
// type 0 (normal), start 0, stop 0xffffffff, big endian.
var dhtLayout = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}

// Mkdir creates the directory with the layout xattr (dht_pt_mkdir), or
// through the DHT layer once the volume grew.
func (s *single) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if d := s.d.Load(); d != nil {
		return d.Mkdir(ctx, parent, name, mode, umask, gfid, xd)
	}
	xd = append(xdr.Dict{}, xd...).With("trusted.glusterfs.dht", xdr.Ptr(dhtLayout))
	return s.kid.Mkdir(ctx, parent, name, mode, umask, gfid, xd)
}

// Opendir opens a directory, marking it when the volume has not grown.
func (s *single) Opendir(ctx context.Context, g xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	if d := s.d.Load(); d != nil {
		return d.Opendir(ctx, g, xd)
	}
	f, rx, err := s.kid.Opendir(ctx, g, xd)
	if err == nil {
		// Even if it grew meanwhile: this fd is the subvolume's.
		f.SetCtx(beforeKey{}, true)
	}
	return f, rx, err
}

// ZerofillKeepSize zeroes a range without changing the size: through the
// subvolume's own way when it has one and the volume has not grown.
func (s *single) ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error {
	if zk, ok := s.forFd(f).(keepSizer); ok {
		return zk.ZerofillKeepSize(ctx, f, off, length)
	}
	return fop.ZeroKeepSize(ctx, s, f, off, length)
}
