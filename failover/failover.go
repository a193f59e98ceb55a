package failover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/brick/xdr"
	"github.com/brickfs/brickfs/failover/afr"
)

// Fops is every file operation a volume offers (fop.Fops).
type Fops = fop.Fops

// A brick client is what a replica set drives.
var _ afr.Child = (*brick.Client)(nil)

// Options tune the bricks of a volume.
type Options struct {
	// PingInterval and PingTimeout override brick health checking; zero
	// keeps the defaults: for a replicated volume 0.5 s and 1.5 s (a hung
	// brick costs a pause of about 1.5 s), for a single brick 2 s and the
	// volfile's ping-timeout (42 s), since there is nowhere to fail over to.
	PingInterval, PingTimeout time.Duration
	// FopTimeout bounds one brick's part of a fop in a replicated volume
	// (default 10 s): a brick that answers pings but not fops is dropped
	// after it.
	FopTimeout time.Duration
	// PostOpDelay is how long an idle eager lock is kept (default 1 s).
	PostOpDelay time.Duration
	// VolfileKey is the key the volfile was fetched with.
	VolfileKey string
	// Subdir mounts that directory of the volume ("/a/b") as the root.
	Subdir string
}

// Replicated volumes' health-check defaults.
const (
	DefaultReplicaPingInterval = 500 * time.Millisecond
	DefaultReplicaPingTimeout  = 1500 * time.Millisecond
)

// Volume is a mounted volume graph.
type Volume struct {
	Fops
	// ID is the volume-id when the volfile names it.
	ID      string
	clients []*brick.Client
	repl    *afr.Replicate
	opts    Options

	mu    sync.Mutex
	chain []*volfile.Volume // GUARDED_BY(mu); the graph in use, top to bottom
}

// ZerofillKeepSize carries out fallocate(ZERO_RANGE|KEEP_SIZE): zeroes
// below EOF, preallocates past it, never changes the size. On a replica
// set it runs as one data transaction; on a single brick nothing orders it
// against another client's truncate (the native client has no ZERO_RANGE
// at all: it preallocates and zeroes nothing).
func (v *Volume) ZerofillKeepSize(ctx context.Context, f *brick.Fd, off, length uint64) error {
	if v.repl != nil {
		return v.repl.ZerofillKeepSize(ctx, f, off, length)
	}
	return fop.ZeroKeepSize(ctx, v.Fops, f, off, length)
}

// Close disconnects every brick.
func (v *Volume) Close() error {
	if v.repl != nil {
		v.repl.Close()
	}
	// At once: a brick that cannot be reached holds its Close for a dial
	// timeout, and unmount must not wait for one after another.
	var wg sync.WaitGroup
	for _, c := range v.clients {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Close() }()
	}
	wg.Wait()
	return nil
}

// BrickConfig builds a brick's Config from its protocol/client translator.
func BrickConfig(cl *volfile.Volume, opts Options) (brick.Config, error) {
	cfg := brick.Config{Name: cl.Name, VolfileKey: opts.VolfileKey, Subdir: opts.Subdir, PingInterval: opts.PingInterval, PingTimeout: opts.PingTimeout}
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
	tc, err := brickTLS(cl)
	if err != nil {
		return cfg, err
	}
	cfg.TLS = tc
	return cfg, nil
}

// Open connects to the bricks of g and returns the volume. It fails when g
// has translators brickfs does not carry out, or when no brick answers.
func Open(ctx context.Context, g *volfile.Graph, opts Options, log *zap.Logger) (*Volume, error) {
	chain, err := g.Chain()
	if err != nil {
		return nil, err
	}
	v := &Volume{opts: opts, chain: chain}
	for _, x := range chain {
		if id, ok := x.Option("volume-id"); ok {
			v.ID = id
		}
	}
	last := chain[len(chain)-1]
	var top Fops
	if volfile.Canonical(last.Type) == volfile.TypeReplicate {
		r, clients, err := openReplicate(ctx, last, opts, log)
		if err != nil {
			return nil, err
		}
		v.clients, v.repl, top = clients, r, r
	} else {
		cfg, err := BrickConfig(last, opts)
		if err != nil {
			return nil, err
		}
		c := brick.New(cfg, log)
		if err := c.Start(ctx); err != nil {
			return nil, err
		}
		v.clients, top = []*brick.Client{c}, c
	}
	if v.ID == "" {
		for _, c := range v.clients {
			if id := c.VolumeID(); id != "" {
				v.ID = id
				break
			}
		}
	}
	v.Fops = top
	if volfile.Find(chain, volfile.TypeDistribute) != nil {
		v.Fops = &distribute{Fops: top}
	}
	return v, nil
}

// replicateOptions reads AFR's options from the replicate translator
// (xlators/cluster/afr/src/afr.c option table).
func replicateOptions(x *volfile.Volume, n int) (afr.ReplicateOptions, []string, error) {
	ro := afr.ReplicateOptions{Arbiter: -1}
	names := make([]string, n)
	for i, s := range x.Subvolumes {
		names[i] = s.Name
	}
	if p, ok := x.Option("afr-pending-xattr"); ok {
		parts := strings.Split(p, ",")
		if len(parts) != n {
			return ro, nil, fmt.Errorf("volfile: %s lists %d afr-pending-xattr names for %d bricks", x.Name, len(parts), n)
		}
		names = parts
	}
	qt, _ := x.Option("quorum-type")
	switch qt {
	case "", "auto":
		if qt == "" && n <= 2 {
			ro.Quorum = -1 // AFR applies auto only above two children by default
		}
	case "none":
		ro.Quorum = -1
	case "fixed":
		qc, ok := x.Option("quorum-count")
		if !ok || qc == "0" {
			// AFR's quorum-count defaults to 0: no quorum at all.
			ro.Quorum = -1
			break
		}
		q, err := strconv.Atoi(qc)
		if err != nil || q < 1 || q > n {
			return ro, nil, fmt.Errorf("volfile: %s has quorum-type fixed with quorum-count %q", x.Name, qc)
		}
		ro.Quorum = q
	default:
		return ro, nil, fmt.Errorf("volfile: %s has unknown quorum-type %q", x.Name, qt)
	}
	if ac, ok := x.Option("arbiter-count"); ok && ac != "0" {
		if ac != "1" {
			return ro, nil, fmt.Errorf("volfile: %s has arbiter-count %s; brickfs supports one arbiter", x.Name, ac)
		}
		ro.Arbiter = n - 1
	}
	if ta, ok := x.Option("thin-arbiter"); ok && ta != "" {
		return ro, nil, fmt.Errorf("volfile: %s uses a thin arbiter, which brickfs does not support", x.Name)
	}
	return ro, names, nil
}

// openReplicate connects the bricks of a replica set. The mount goes on
// while at least one brick answers; the others keep being retried.
func openReplicate(ctx context.Context, x *volfile.Volume, opts Options, log *zap.Logger) (*afr.Replicate, []*brick.Client, error) {
	n := len(x.Subvolumes)
	ro, names, err := replicateOptions(x, n)
	if err != nil {
		return nil, nil, err
	}
	ro.FopTimeout, ro.PostOpDelay = opts.FopTimeout, opts.PostOpDelay
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultReplicaPingInterval
	}
	if opts.PingTimeout == 0 {
		opts.PingTimeout = DefaultReplicaPingTimeout
	}
	clients := make([]*brick.Client, n)
	kids := make([]afr.Child, n)
	for i, s := range x.Subvolumes {
		if volfile.Canonical(s.Type) != volfile.TypeClient {
			return nil, nil, fmt.Errorf("volfile: %s has %s (%s) below it; brickfs replicates over bricks only", x.Name, s.Name, s.Type)
		}
		cfg, err := BrickConfig(s, opts)
		if err != nil {
			return nil, nil, err
		}
		clients[i] = brick.New(cfg, log)
		kids[i] = clients[i]
	}
	r, err := afr.NewReplicate(x.Name, kids, names, ro, log)
	if err != nil {
		return nil, nil, err
	}
	for i, c := range clients {
		i := i
		c.Watch(func(up bool) { r.ChildEvent(i, up) })
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *brick.Client) {
			defer wg.Done()
			errs[i] = c.Start(ctx)
		}(i, c)
	}
	wg.Wait()
	var merr *multierror.Error
	upCount := 0
	for i, err := range errs {
		if err == nil {
			upCount++
			continue
		}
		if errors.Is(err, brick.ErrAuth) {
			for _, c := range clients {
				_ = c.Close()
			}
			return nil, nil, err
		}
		merr = multierror.Append(merr, err)
		clients[i].StartBackground()
	}
	if upCount == 0 {
		for _, c := range clients {
			_ = c.Close()
		}
		merr.ErrorFormat = oneLine
		return nil, nil, fmt.Errorf("no brick of %s answered: %v", x.Name, merr)
	}
	if merr != nil {
		merr.ErrorFormat = oneLine
		log.Warn("mounting with bricks down; they are retried in the background", zap.String("subvol", x.Name), zap.Error(merr))
	}
	return r, clients, nil
}

func oneLine(es []error) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
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

func (d *distribute) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, extra xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	extra = extra.With("trusted.glusterfs.dht", xdr.Ptr(dhtLayout))
	return d.Fops.Mkdir(ctx, parent, name, mode, umask, gfid, extra)
}
