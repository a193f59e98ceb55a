package failover

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Fops is every file operation a volume offers, in brick terms.
type Fops interface {
	Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xdata xdr.Dict) (xdr.Iatt, xdr.Dict, error)
	Stat(ctx context.Context, gfid xdr.GFID) (xdr.Iatt, error)
	Fstat(ctx context.Context, f *brick.Fd) (xdr.Iatt, error)
	Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32) (pre, post xdr.Iatt, err error)
	Fsetattr(ctx context.Context, f *brick.Fd, attr *xdr.Iatt, valid uint32) (pre, post xdr.Iatt, err error)
	Truncate(ctx context.Context, gfid xdr.GFID, size uint64) (pre, post xdr.Iatt, err error)
	Ftruncate(ctx context.Context, f *brick.Fd, size uint64) (pre, post xdr.Iatt, err error)
	Access(ctx context.Context, gfid xdr.GFID, mask uint32) error
	Open(ctx context.Context, gfid xdr.GFID, flags uint32) (*brick.Fd, error)
	Opendir(ctx context.Context, gfid xdr.GFID) (*brick.Fd, error)
	Release(ctx context.Context, f *brick.Fd) error
	Readdirp(ctx context.Context, f *brick.Fd, offset uint64, size uint32) ([]brick.Dirent, bool, error)
	Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (*brick.Fd, xdr.Iatt, error)
	Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error)
	Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error)
	Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error)
	Readlink(ctx context.Context, gfid xdr.GFID) (string, error)
	Link(ctx context.Context, gfid, newParent xdr.GFID, newName string) (xdr.Iatt, error)
	Unlink(ctx context.Context, parent xdr.GFID, name string) error
	Rmdir(ctx context.Context, parent xdr.GFID, name string) error
	Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string) (xdr.Iatt, error)
	Read(ctx context.Context, f *brick.Fd, off uint64, size uint32) ([]byte, error)
	Write(ctx context.Context, f *brick.Fd, off uint64, data []byte, xdata xdr.Dict) (xdr.Iatt, error)
	Flush(ctx context.Context, f *brick.Fd) error
	Fsync(ctx context.Context, f *brick.Fd, datasync bool) error
	Fsyncdir(ctx context.Context, f *brick.Fd, datasync bool) error
	Statfs(ctx context.Context, gfid xdr.GFID) (xdr.Statfs, error)
	Getxattr(ctx context.Context, gfid xdr.GFID, name string) (xdr.Dict, error)
	Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32) error
	Removexattr(ctx context.Context, gfid xdr.GFID, name string) error
	Fallocate(ctx context.Context, f *brick.Fd, mode uint32, off, length uint64) error
	Discard(ctx context.Context, f *brick.Fd, off, length uint64) error
	Zerofill(ctx context.Context, f *brick.Fd, off, length uint64) error
	Seek(ctx context.Context, f *brick.Fd, off uint64, what int32) (uint64, error)
	Lk(ctx context.Context, f *brick.Fd, cmd uint32, fl xdr.Flock) (xdr.Flock, error)
}

// Brick is one brick as failover uses it.
type Brick interface {
	Fops
	Name() string
	Up() bool
}

var _ Brick = (*brick.Client)(nil)

// Options tune the bricks of a volume.
type Options struct {
	// PingInterval and PingTimeout override brick health checking; zero
	// keeps brick's defaults (PingTimeout then comes from the volfile's
	// ping-timeout).
	PingInterval, PingTimeout time.Duration
	// VolfileKey is the key the volfile was fetched with.
	VolfileKey string
}

// Volume is a mounted volume graph.
type Volume struct {
	Fops
	// ID is the volume-id when the volfile names it.
	ID      string
	clients []*brick.Client
}

// Close disconnects every brick.
func (v *Volume) Close() error {
	for _, c := range v.clients {
		_ = c.Close()
	}
	return nil
}

// BrickConfig builds a brick's Config from its protocol/client translator.
func BrickConfig(cl *volfile.Volume, opts Options) (brick.Config, error) {
	cfg := brick.Config{Name: cl.Name, VolfileKey: opts.VolfileKey, PingInterval: opts.PingInterval, PingTimeout: opts.PingTimeout}
	for _, o := range cl.Options {
		switch o.Key {
		case "remote-host":
			cfg.RemoteHost = o.Value
		case "remote-port":
			p, err := strconv.Atoi(o.Value)
			if err != nil || p <= 0 || p > 65535 {
				return cfg, fmt.Errorf("volfile: %s has remote-port %q, not a port number", cl.Name, o.Value)
			}
			cfg.RemotePort = p
		case "remote-subvolume":
			cfg.RemoteSubvolume = o.Value
		case "username":
			cfg.Username = o.Value
		case "password":
			cfg.Password = o.Value
		case "ping-timeout":
			if cfg.PingTimeout == 0 {
				if s, err := strconv.Atoi(o.Value); err == nil && s > 0 {
					cfg.PingTimeout = time.Duration(s) * time.Second
				}
			}
		}
		switch o.Key {
		case "username", "password", "remote-subvolume":
		default:
			cfg.Options = append(cfg.Options, [2]string{o.Key, o.Value})
		}
	}
	if cfg.RemoteHost == "" || cfg.RemoteSubvolume == "" {
		return cfg, fmt.Errorf("volfile: %s lacks remote-host or remote-subvolume", cl.Name)
	}
	return cfg, nil
}

// Open connects to the bricks of g and returns the volume. It fails when g
// has translators brickfs does not carry out, or when no brick answers.
func Open(ctx context.Context, g *volfile.Graph, opts Options, log *zap.Logger) (*Volume, error) {
	chain, err := g.Chain()
	if err != nil {
		return nil, err
	}
	cl := chain[len(chain)-1]
	cfg, err := BrickConfig(cl, opts)
	if err != nil {
		return nil, err
	}
	v := &Volume{}
	for _, x := range chain {
		if id, ok := x.Option("volume-id"); ok {
			v.ID = id
		}
	}
	c := brick.New(cfg, log)
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	v.clients = []*brick.Client{c}
	v.Fops = c
	if volfile.Find(chain, volfile.TypeDistribute) != nil {
		v.Fops = &distribute{Fops: c}
	}
	return v, nil
}

// distribute carries out cluster/distribute over one subvolume: every new
// directory gets the DHT layout xattr covering the whole hash range, as
// dht_mkdir sets it (xlators/cluster/dht/src/dht-common.c).
type distribute struct {
	Fops
}

// dhtLayout is trusted.glusterfs.dht for one subvolume: commit-hash 0,
// type 0 (normal), start 0, stop 0xffffffff, big endian.
var dhtLayout = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}

func (d *distribute) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, error) {
	extra = extra.With("trusted.glusterfs.dht", xdr.Ptr(dhtLayout))
	return d.Fops.Mkdir(ctx, parent, name, mode, umask, gfid, extra)
}
