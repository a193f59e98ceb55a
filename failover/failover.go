package failover

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/failover/afr"
	"github.com/brickfs/brickfs/failover/stats"
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
	// LagTimeout is afr.ReplicateOptions.LagTimeout: the least time a
	// change waits for a brick still working after a quorum of its
	// replica set took it (default 0.5 s; negative: wait up to
	// FopTimeout).
	LagTimeout time.Duration
	// PostOpDelay is how long an idle eager lock is kept (default 1 s).
	PostOpDelay time.Duration
	// VolfileKey is the key the volfile was fetched with.
	VolfileKey string
	// Subdir mounts that directory of the volume ("/a/b") as the root.
	Subdir string
	// ShardDeleteInterval is how often a sharded volume's layer looks
	// for the blocks of removed files to delete (default 600 s).
	ShardDeleteInterval time.Duration
	// MgmtTLS is management TLS for the bricks' PORTBYBRICK (nil: none);
	// TLSDir the directory of this host's default TLS files ("" for
	// tlsconf.DefaultDir). See brick.Config.
	MgmtTLS *tlsconf.Config
	TLSDir  string
}

// Replicated volumes' health-check defaults.
const (
	DefaultReplicaPingInterval = 500 * time.Millisecond
	DefaultReplicaPingTimeout  = 1500 * time.Millisecond
)

// Volume is a mounted volume: the graph built from its volfile, whose top
// node's fops it offers.
type Volume struct {
	Fops
	// ID is the volume-id when the volfile names it.
	ID      string
	opts    Options
	top     *node
	stats   *stats.Stats    // the io-stats layer over top: what Fops drives
	clients []*brick.Client // every brick of the graph, in volfile order
	zk      keepSizer       // the node that carries out ZerofillKeepSize, if any

	log *zap.Logger

	// shown is a copy of the node tree, taken under mu whenever
	// Reconfigure changes a node and never changed after: Status reads
	// it without mu, which Reconfigure holds while bricks reconnect (up
	// to tens of seconds), so status, metrics and statedumps never wait
	// on a volfile change.
	shown atomic.Pointer[node]

	mu       sync.Mutex      // serializes Reconfigure, the only writer of the nodes' translators
	undo     []func()        // GUARDED_BY(mu); what a refused Reconfigure built, to close
	closed   bool            // GUARDED_BY(mu); Close was called: Reconfigure refuses
	retiring []chan struct{} // GUARDED_BY(mu); closed to end the grace of subvolumes that left
	wg       sync.WaitGroup  // the goroutines retiring them
}

// keepSizer is a node that carries out fallocate(ZERO_RANGE|KEEP_SIZE)
// itself (a replica set, as one data transaction).
type keepSizer interface {
	ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error
}

// ZerofillKeepSize carries out fallocate(ZERO_RANGE|KEEP_SIZE): zeroes
// below EOF, preallocates past it, never changes the size. On a replica
// set it runs as one data transaction; on a single brick nothing orders it
// against another client's truncate (the native client has no ZERO_RANGE
// at all: it preallocates and zeroes nothing).
func (v *Volume) ZerofillKeepSize(ctx context.Context, f *fop.Fd, off, length uint64) error {
	if v.zk != nil {
		// Past the io-stats layer: counted there by hand.
		return v.stats.ZerofillKeepSize(func() error { return v.zk.ZerofillKeepSize(ctx, f, off, length) })
	}
	return fop.ZeroKeepSize(ctx, v.Fops, f, off, length)
}

// Status returns the graph's state, node by node from the top: the
// io-stats layer, then the graph the volfile describes. It reads the copy
// of the node tree Reconfigure publishes (publish), never v.mu: a volfile
// change under way does not hold it up.
func (v *Volume) Status() fop.Status {
	g := v.shown.Load().status()
	fs := v.stats.Figures()
	var n uint64
	for _, f := range fs.Fops {
		n += f.Count
	}
	return fop.Status{Name: v.stats.Name(), Type: stats.Type, Up: g.Up, Fops: &fs, Children: []fop.Status{g},
		Detail: fmt.Sprintf("%d fops, %d bytes read, %d written", n, fs.BytesRead, fs.BytesWritten)}
}

// publish makes the node tree as it is now what Status shows. The caller
// holds v.mu, or has v to itself (Open).
func (v *Volume) publish() { v.shown.Store(v.top.clone()) }

// Close stops every node: the replica sets' heal, then every brick.
func (v *Volume) Close() error {
	v.mu.Lock()
	v.closed = true
	for _, stop := range v.retiring {
		close(stop)
	}
	v.retiring = nil
	v.mu.Unlock()
	v.wg.Wait() // what left the graph closes first, without v.mu
	v.mu.Lock()
	defer v.mu.Unlock()
	v.top.walk(func(n *node) {
		if n.shard != nil {
			_ = n.shard.Close()
		}
	})
	v.top.walk(func(n *node) {
		if n.repl != nil {
			n.repl.Close()
		}
	})
	closeClients(v.clients)
	return nil
}

// closeClients closes bricks at once: a brick that cannot be reached holds
// its Close for a dial timeout, and unmount must not wait for one after
// another.
func closeClients(cs []*brick.Client) {
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = c.Close() }()
	}
	wg.Wait()
}

// Open builds the graph of g, connects its bricks and returns the volume.
// It fails when g has translators brickfs does not carry out, or when a
// part of the graph has no brick that answers. A replica set is mounted
// while one of its bricks answers; the others keep being retried.
func Open(ctx context.Context, g *volfile.Graph, opts Options, log *zap.Logger) (*Volume, error) {
	if err := Check(g); err != nil {
		return nil, err
	}
	a := &assembly{opts: opts, log: log, replicated: map[*volfile.Volume]bool{}}
	for _, x := range g.Reachable() {
		if volfile.Canonical(x.Type) == volfile.TypeReplicate {
			for _, s := range x.Subvolumes {
				a.replicated[s] = true
			}
		}
	}
	top, err := a.build(g.Top)
	if err != nil {
		for _, r := range a.repls {
			r.Close()
		}
		closeClients(a.clients)
		return nil, err
	}
	// The io-stats layer always stands on top, whether the volfile names
	// debug/io-stats (GlusterFS's client volfiles do, as their top) or
	// not: the mount's figures must not depend on how the volfile was made.
	st := stats.New(ioStatsName(g), top.sub)
	v := &Volume{Fops: st, stats: st, opts: opts, top: top, clients: a.clients, log: log}
	v.publish()
	for n := top; n != nil; n = n.only() {
		if zk, ok := n.sub.(keepSizer); ok {
			v.zk = zk
			break
		}
		if n.shard != nil {
			break // a layer that places the bytes: below it is not the file
		}
	}
	for _, x := range g.Reachable() {
		if id, ok := x.Option("volume-id"); ok {
			v.ID = id
		}
	}
	if err := v.start(ctx); err != nil {
		v.Close()
		return nil, err
	}
	if v.ID == "" {
		for _, c := range v.clients {
			if id := c.VolumeID(); id != "" {
				v.ID = id
				break
			}
		}
	}
	log.Info("volume graph built", zap.String("graph", strings.TrimSpace(v.Status().String())))
	return v, nil
}

// start connects every brick at once. A wrong password or certificate
// fails the mount at once; a brick that does not answer is retried in the
// background as long as every part of the graph has a brick that did.
func (v *Volume) start(ctx context.Context) error {
	errs := make([]error, len(v.clients))
	var wg sync.WaitGroup
	for i, c := range v.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.Start(ctx)
		}()
	}
	wg.Wait()
	started := map[*brick.Client]error{}
	for i, err := range errs {
		if errors.Is(err, brick.ErrAuth) {
			return err
		}
		started[v.clients[i]] = err
	}
	if err := v.top.reachable(started); err != nil {
		return err
	}
	var merr *multierror.Error
	for _, c := range v.clients {
		if err := started[c]; err != nil {
			merr = multierror.Append(merr, err)
			c.StartBackground()
		}
	}
	if merr != nil {
		merr.ErrorFormat = oneLine
		v.top.log().Warn("mounting with bricks down; they are retried in the background", zap.Error(merr))
	}
	return nil
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

func oneLine(es []error) string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// ioStatsName is the io-stats translator's name: the volfile's, when its
// top is one (named after the volume), else the top's name and "-io-stats".
func ioStatsName(g *volfile.Graph) string {
	if volfile.Canonical(g.Top.Type) == stats.Type {
		return g.Top.Name
	}
	return g.Top.Name + "-io-stats"
}
