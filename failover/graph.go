package failover

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-multierror"
	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/failover/afr"
	"github.com/brickfs/brickfs/failover/dht"
	"github.com/brickfs/brickfs/failover/shard"
)

// node is one carried translator of the mounted graph.
type node struct {
	x      *volfile.Volume // its translator in the volfile in use
	sub    fop.Subvolume   // what its parent drives
	kids   []*node
	client *brick.Client  // a protocol/client
	repl   *afr.Replicate // a cluster/replicate
	shard  *shard.Shard   // a features/shard
	dht    *dht.DHT       // a cluster/distribute over two or more subvolumes (also once a single one grew)
	single *single        // a cluster/distribute mounted over one subvolume
	logger *zap.Logger
}

func (n *node) log() *zap.Logger { return n.logger }

// only returns the single child of a one-child node, else nil.
func (n *node) only() *node {
	if len(n.kids) == 1 {
		return n.kids[0]
	}
	return nil
}

// clone copies the tree below n, node by node; the translators (client,
// repl, ...) are shared. Reconfigure changes nodes in place (x, kids,
// dht), so a copy is what may be read without v.mu.
func (n *node) clone() *node {
	c := *n
	c.kids = make([]*node, len(n.kids))
	for i, k := range n.kids {
		c.kids[i] = k.clone()
	}
	return &c
}

// walk calls fn on n and every node below it, children first.
func (n *node) walk(fn func(*node)) {
	for _, k := range n.kids {
		k.walk(fn)
	}
	fn(n)
}

// reachable checks that every part of the graph below n has a brick that
// started: a replica set needs one of its bricks, anything else every
// child. started maps each brick to its Start error.
func (n *node) reachable(started map[*brick.Client]error) error {
	switch {
	case n.client != nil:
		return started[n.client]
	case n.repl != nil, n.dht != nil:
		// A replica set mounts while one of its bricks answers; a
		// distributed volume while one of its subvolumes does (files on
		// the others fail until theirs come back).
		var merr *multierror.Error
		for _, k := range n.kids {
			err := k.reachable(started)
			if err == nil {
				return nil
			}
			merr = multierror.Append(merr, err)
		}
		merr.ErrorFormat = oneLine
		what := "brick"
		if n.dht != nil {
			what = "subvolume"
		}
		return fmt.Errorf("no %s of %s answered: %v", what, n.x.Name, merr)
	}
	for _, k := range n.kids {
		if err := k.reachable(started); err != nil {
			return err
		}
	}
	return nil
}

// status is the node's part of Volume.Status.
func (n *node) status() fop.Status {
	s := fop.Status{Name: n.x.Name, Type: volfile.Canonical(n.x.Type), Up: n.sub.Up()}
	switch {
	case n.client != nil:
		host, port, path := n.client.Target()
		s.Detail = fmt.Sprintf("%s:%d %s", host, port, path)
		bs := n.client.Stats()
		s.Brick = &bs
	case n.repl != nil:
		// The line says what the figures say: read once.
		rs := n.repl.Stats()
		s.Replica = &rs
		s.Detail = fmt.Sprintf("%d of %d bricks up, client quorum %s, %d files to heal", rs.BricksUp, rs.Bricks, rs.Quorum, rs.HealPending)
	case n.dht != nil:
		ds := n.dht.Stats()
		s.Distribute = &ds
		s.Detail = fmt.Sprintf("%d of %d subvolumes up", ds.SubvolumesUp, ds.Subvolumes)
	case n.shard != nil:
		ss := n.shard.Stats()
		s.Shard = &ss
		s.Detail = fmt.Sprintf("block size %d, %d removed files with blocks to delete", ss.BlockSize, ss.RemoveBacklog)
	}
	for _, k := range n.kids {
		s.Children = append(s.Children, k.status())
	}
	return s
}

// assembly builds a graph from its volfile.
type assembly struct {
	opts       Options
	log        *zap.Logger
	replicated map[*volfile.Volume]bool // bricks that are children of a replica set
	clients    []*brick.Client          // built so far, in volfile order
	repls      []*afr.Replicate         // built so far
	volumeID   string                   // the mounted volume's, for bricks added while mounted
}

// buildFunc makes the node of a carried translator from its children.
type buildFunc func(a *assembly, x *volfile.Volume, kids []*node) (*node, error)

// build builds the node standing for x: its children first, then x's own
// node by its registry row; a translator passed by, or carried without a
// node of its own, is its child's node.
func (a *assembly) build(x *volfile.Volume) (*node, error) {
	r := registry[volfile.Canonical(x.Type)]
	if r.role == PassBy || (r.role == Carry && r.build == nil) {
		return a.build(x.Subvolumes[0])
	}
	if r.role != Carry {
		// Check refused these already; a hand-built graph may not have.
		return nil, &UnsupportedError{Translator: x.Name, Type: x.Type, Reason: r.why}
	}
	kids := make([]*node, len(x.Subvolumes))
	for i, s := range x.Subvolumes {
		k, err := a.build(s)
		if err != nil {
			return nil, err
		}
		kids[i] = k
	}
	return r.build(a, x, kids)
}

// buildClient makes a brick client (not yet started). Bricks of a replica
// set get short health checks (a hung brick costs a pause of about 1.5 s);
// a brick alone keeps the volfile's ping-timeout, having nowhere to fail
// over to.
func buildClient(a *assembly, x *volfile.Volume, _ []*node) (*node, error) {
	base := brick.Config{VolfileKey: a.opts.VolfileKey, Subdir: a.opts.Subdir, PingInterval: a.opts.PingInterval, PingTimeout: a.opts.PingTimeout,
		MgmtTLS: a.opts.MgmtTLS, TLSDir: a.opts.TLSDir}
	if a.replicated[x] {
		if base.PingInterval == 0 {
			base.PingInterval = DefaultReplicaPingInterval
		}
		if base.PingTimeout == 0 {
			base.PingTimeout = DefaultReplicaPingTimeout
		}
	}
	cfg, err := brick.ConfigFrom(x, base)
	if err != nil {
		return nil, err
	}
	if a.volumeID != "" {
		cfg.VolumeID = a.volumeID // the brick checks it belongs to the mounted volume
	}
	c := brick.New(cfg, a.log)
	a.clients = append(a.clients, c)
	return &node{x: x, sub: c, client: c, logger: a.log}, nil
}

// buildReplicate makes a replica set over bricks.
func buildReplicate(a *assembly, x *volfile.Volume, kids []*node) (*node, error) {
	ro, names, err := replicateOptions(x, len(kids))
	if err != nil {
		return nil, err
	}
	ro.FopTimeout, ro.LagTimeout, ro.PostOpDelay = a.opts.FopTimeout, a.opts.LagTimeout, a.opts.PostOpDelay
	children := make([]afr.Child, len(kids))
	for i, k := range kids {
		c, ok := k.sub.(afr.Child)
		if !ok || k.client == nil {
			return nil, fmt.Errorf("volfile: %s has %s (%s) below it; brickfs replicates over bricks only", x.Name, k.x.Name, k.x.Type)
		}
		children[i] = c
	}
	r, err := afr.NewReplicate(x.Name, children, names, ro, a.log)
	if err != nil {
		return nil, err
	}
	a.repls = append(a.repls, r)
	return &node{x: x, sub: r, kids: kids, repl: r, logger: a.log.With(zap.String("subvol", x.Name))}, nil
}

// buildShard makes features/shard over its subvolume.
func buildShard(a *assembly, x *volfile.Volume, kids []*node) (*node, error) {
	o, err := shardOptions(x)
	if err != nil {
		return nil, err
	}
	o.DeleteInterval = a.opts.ShardDeleteInterval
	o.SubdirMount = a.opts.Subdir != "" && a.opts.Subdir != "/"
	sh := shard.New(x.Name, kids[0].sub, o, a.log)
	return &node{x: x, sub: sh, kids: kids, shard: sh, logger: a.log.With(zap.String("subvol", x.Name))}, nil
}

// shardOptions reads features/shard's options as shard.c's option table
// does: shard-block-size (1024-based units, 4MB..4TB, default 64MB) and
// shard-deletion-rate; shard-lru-limit bounds the native client's inode
// list and has no counterpart here.
func shardOptions(x *volfile.Volume) (shard.Options, error) {
	var o shard.Options
	if v, ok := x.Option("shard-block-size"); ok {
		bs, err := shard.ParseBlockSizeOption(v)
		if err != nil {
			return o, fmt.Errorf("volfile: %s: %w", x.Name, err)
		}
		o.BlockSize = bs
	}
	if v, ok := x.Option("shard-deletion-rate"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return o, fmt.Errorf("volfile: %s has shard-deletion-rate %q, not a positive number", x.Name, v)
		}
		o.DeletionRate = n
	}
	return o, nil
}

// buildDistribute makes cluster/distribute: over one subvolume the
// pass-through GlusterFS also uses (dht_pt_*), over more the DHT layer.
func buildDistribute(a *assembly, x *volfile.Volume, kids []*node) (*node, error) {
	if len(kids) == 1 {
		sg := newSingle(x.Name, kids[0].sub)
		return &node{x: x, sub: sg, kids: kids, single: sg, logger: a.log}, nil
	}
	o, err := dhtOptions(x)
	if err != nil {
		return nil, err
	}
	subs := make([]fop.Subvolume, len(kids))
	for i, k := range kids {
		subs[i] = k.sub
	}
	log := a.log.With(zap.String("subvol", x.Name))
	d, err := dht.New(x.Name, subs, o, log)
	if err != nil {
		return nil, err
	}
	return &node{x: x, sub: d, kids: kids, dht: d, logger: log}, nil
}

// dhtOptions reads cluster/distribute's options that change what the
// client does, with GlusterFS 10.3's defaults; the rest (min-free-disk,
// rebalance tuning) belong to the rebalance daemon or are not carried
// out (see the README).
func dhtOptions(x *volfile.Volume) (dht.Options, error) {
	o := dht.DefaultOptions()
	for _, b := range []struct {
		key string
		to  *bool
	}{
		{"lookup-optimize", &o.LookupOptimize},
		{"readdir-optimize", &o.ReaddirOptimize},
		{"weighted-rebalance", &o.Weighted},
		{"randomize-hash-range-by-gfid", &o.RandomizeByGFID},
	} {
		if v, ok := x.Option(b.key); ok {
			on, err := glusterBool(v)
			if err != nil {
				return o, fmt.Errorf("volfile: %s: option %s: %w", x.Name, b.key, err)
			}
			*b.to = on
		}
	}
	if v, ok := x.Option("lookup-unhashed"); ok && v != "auto" {
		on, err := glusterBool(v)
		if err != nil {
			return o, fmt.Errorf("volfile: %s: option lookup-unhashed: %w", x.Name, err)
		}
		o.LookupUnhashed = on
	}
	if v, ok := x.Option("rsync-hash-regex"); ok {
		o.RsyncHashRegex = v
	}
	if v, ok := x.Option("extra-hash-regex"); ok {
		o.ExtraHashRegex = v
	}
	if v, ok := x.Option("decommissioned-bricks"); ok {
		for _, n := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			o.Decommissioned = append(o.Decommissioned, n)
		}
	}
	if err := dht.CheckOptions(o); err != nil {
		return o, fmt.Errorf("volfile: %s: %w", x.Name, err)
	}
	return o, nil
}

// glusterBool parses a GlusterFS boolean option value (gf_string2boolean).
func glusterBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "yes", "true", "enable", "1":
		return true, nil
	case "off", "no", "false", "disable", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (on or off)", v)
}

// replicaSets returns the graph's replica sets in volfile order.
func (v *Volume) replicaSets() []*afr.Replicate {
	var rs []*afr.Replicate
	v.top.walk(func(n *node) {
		if n.repl != nil {
			rs = append(rs, n.repl)
		}
	})
	return rs
}
