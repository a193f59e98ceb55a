package failover

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/failover/afr"
	"github.com/brickfs/brickfs/failover/dht"
)

// Reconfigure applies a new volfile of the mounted volume where that can
// be done live, as the native client reconfigures its graph when glusterd
// announces a change: node by node, a brick moved to another host or path
// (replace-brick, reset-brick) or given new TLS settings is reconnected
// there, a replica set's client quorum follows the volfile, and replica
// sets added or removed (add-brick, remove-brick commit) join or leave
// the distribute layer (planDistribute). It returns what it changed. Any
// other change of what brickfs carries out (the replica count, an arbiter
// appearing, shard turned on, an unsupported translator) is refused with
// an error that says to remount; the mount then goes on unchanged. Caching and statistics
// translators coming and going change nothing. Every node is checked
// before any is changed.
func (v *Volume) Reconfigure(g *volfile.Graph) ([]string, error) {
	if err := Check(g); err != nil {
		return nil, fmt.Errorf("the new volfile cannot be mounted by brickfs (%w); the mount keeps the graph it has", err)
	}
	for _, x := range g.Reachable() {
		if id, ok := x.Option("volume-id"); ok && v.ID != "" && id != v.ID {
			return nil, fmt.Errorf("the volume now has volume-id %s, the mounted one had %s: it was deleted and created again; remount to use the new volume", id, v.ID)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil, fmt.Errorf("the mount is closing; the new volfile is not applied")
	}
	top := carriedNode(g.Top)
	if was, now := liveShape(v.top.x), liveShape(top); was != now {
		return nil, fmt.Errorf("the volume's graph changed from %s to %s; remount to use it", was, now)
	}
	var steps []step
	v.undo = nil
	if err := v.plan(v.top, top, &steps); err != nil {
		for _, u := range v.undo {
			u()
		}
		v.undo = nil
		return nil, err
	}
	v.undo = nil
	var changes []string
	for _, s := range steps {
		changes = append(changes, s()...)
		v.publish() // a step may wait for bricks: show what is done
	}
	return changes, nil
}

// step is one change a node makes once every node agreed; it returns what
// it changed.
type step func() []string

// carriedNode returns the translator that stands for x in the built graph:
// x itself, or the first below it that has a node of its own.
func carriedNode(x *volfile.Volume) *volfile.Volume {
	for {
		r := registry[volfile.Canonical(x.Type)]
		if r.role == Carry && r.build != nil || len(x.Subvolumes) != 1 {
			return x
		}
		x = x.Subvolumes[0]
	}
}

// shape describes the carried graph below x.
func shape(x *volfile.Volume) string { return shapeOf(x, false) }

// liveShape is shape without distribute's subvolumes: what must stay the
// same for a live change.
func liveShape(x *volfile.Volume) string { return shapeOf(x, true) }

func shapeOf(x *volfile.Volume, live bool) string {
	x = carriedNode(x)
	t := volfile.Canonical(x.Type)
	if len(x.Subvolumes) == 0 {
		return t
	}
	if t == volfile.TypeReplicate {
		return fmt.Sprintf("%s(%d)", t, len(x.Subvolumes))
	}
	if t == volfile.TypeDistribute && live {
		// Its subvolumes come and go (add-brick, remove-brick): each
		// is checked by planDistribute.
		return t + " > subvolumes"
	}
	kids := make([]string, len(x.Subvolumes))
	for i, s := range x.Subvolumes {
		kids[i] = shapeOf(s, live)
	}
	return t + " > " + strings.Join(kids, ", ")
}

// plan checks the new translator x of node n (same shape) and adds the
// steps that apply it.
func (v *Volume) plan(n *node, x *volfile.Volume, steps *[]step) error {
	switch {
	case n.client != nil:
		move, err := v.planBrick(n, x)
		if err != nil {
			return err
		}
		*steps = append(*steps, func() []string {
			n.x = x
			if move == nil {
				return nil
			}
			return []string{move()}
		})
		return nil
	case n.repl != nil:
		return v.planReplicate(n, x, steps)
	case n.dht != nil:
		return v.planDistribute(n, x, steps)
	case n.single != nil && len(x.Subvolumes) > 1:
		return v.planDistribute(n, x, steps) // the volume grows
	case n.shard != nil:
		o, err := shardOptions(x)
		if err != nil {
			return err
		}
		if err := v.plan(n.kids[0], carriedNode(x.Subvolumes[0]), steps); err != nil {
			return err
		}
		*steps = append(*steps, func() []string {
			n.x = x
			var changes []string
			for _, c := range n.shard.Reconfigure(o) {
				v, _ := x.Option(c)
				changes = append(changes, fmt.Sprintf("%s: %s is now %s", x.Name, c, v))
			}
			return changes
		})
		return nil
	}
	for i, k := range n.kids {
		if err := v.plan(k, carriedNode(x.Subvolumes[i]), steps); err != nil {
			return err
		}
	}
	*steps = append(*steps, func() []string { n.x = x; return nil })
	return nil
}

// planReplicate checks a replica set's new translator: its arbiter and its
// bricks' names must stay; the bricks that moved are moved one at a time,
// each given a while to come back before the next goes, so a change that
// touches every brick (its TLS settings) never takes the whole replica set
// down at once; client quorum follows the volfile.
func (v *Volume) planReplicate(n *node, x *volfile.Volume, steps *[]step) error {
	old := n.x
	k := len(x.Subvolumes)
	oldRO, oldNames, err := replicateOptions(old, k)
	if err != nil {
		return err
	}
	ro, names, err := replicateOptions(x, k)
	if err != nil {
		return fmt.Errorf("%w; the mount keeps the graph it has", err)
	}
	if ro.Arbiter != oldRO.Arbiter {
		return fmt.Errorf("the replica set %s changed its arbiter; remount to use it", x.Name)
	}
	for i := range names {
		if names[i] != oldNames[i] || x.Subvolumes[i].Name != old.Subvolumes[i].Name {
			return fmt.Errorf("the bricks of %s were renamed or reordered (%s was %s); remount to use them", x.Name, x.Subvolumes[i].Name, old.Subvolumes[i].Name)
		}
	}
	var moves []func() string
	var moved []*brick.Client
	for i, kid := range n.kids {
		mv, err := v.planBrick(kid, carriedNode(x.Subvolumes[i]))
		if err != nil {
			return err
		}
		if mv != nil {
			moves = append(moves, mv)
			moved = append(moved, kid.client)
		}
	}
	*steps = append(*steps, func() []string {
		for i, kid := range n.kids {
			kid.x = carriedNode(x.Subvolumes[i])
		}
		n.x = x
		var changes []string
		for i, m := range moves {
			changes = append(changes, m())
			if i < len(moves)-1 {
				waitReconnect(moved[i], moveWait)
			}
		}
		if ro.Quorum != oldRO.Quorum {
			n.repl.SetQuorum(ro.Quorum)
			msg := fmt.Sprintf("client quorum of %s is now %s", x.Name, n.repl.QuorumText())
			if up := n.repl.ChildrenUp(); !n.repl.HasQuorum(up) {
				c := 0
				for _, u := range up {
					if u {
						c++
					}
				}
				msg += fmt.Sprintf("; only %d bricks are up, so changes fail with ENOTCONN until enough are", c)
			}
			changes = append(changes, msg)
		}
		return changes
	})
	return nil
}

// planBrick checks a brick's new translator and returns the move that
// points its client at the brick's new place or settings, or nil when
// nothing changed.
func (v *Volume) planBrick(n *node, x *volfile.Volume) (func() string, error) {
	if volfile.Canonical(x.Type) != volfile.TypeClient {
		return nil, fmt.Errorf("volfile: %s has %s (%s) where a brick was; remount to use it", x.Name, x.Name, x.Type)
	}
	c := n.client
	cur := c.Config()
	base := brick.Config{VolfileKey: cur.VolfileKey, Subdir: cur.Subdir, PingInterval: cur.PingInterval, PingTimeout: cur.PingTimeout,
		MgmtTLS: cur.MgmtTLS, TLSDir: cur.TLSDir}
	cfg, err := brick.ConfigFrom(x, base)
	if err != nil {
		return nil, fmt.Errorf("%w; the mount keeps the graph it has", err)
	}
	if cfg.Name != c.Name() {
		return nil, fmt.Errorf("brick %s is now %s; remount to use it", c.Name(), cfg.Name)
	}
	host, port, path := c.Target() // port filled in: 24007 unless set
	np := cfg.RemotePort
	if np == 0 {
		np = 24007
	}
	tlsChanged := tlsKey(n.x) != tlsKey(x)
	if cfg.RemoteHost == host && np == port && cfg.RemoteSubvolume == path && !tlsChanged {
		return nil, nil
	}
	// The brick checks it belongs to the mounted volume.
	cfg.VolumeID = v.ID
	change := fmt.Sprintf("brick %s moved from %s:%s to %s:%s", c.Name(), host, path, cfg.RemoteHost, cfg.RemoteSubvolume)
	if tlsChanged {
		change = fmt.Sprintf("brick %s: TLS settings changed (%s)", c.Name(), tlsKey(x))
	}
	return func() string { c.Retarget(cfg); return change }, nil
}

// moveWait bounds how long a replica set waits for a moved brick to
// reconnect before it moves the next one.
const moveWait = 10 * time.Second

// waitReconnect waits until c has a connection newer than the one it had
// when Retarget was called, or timeout.
func waitReconnect(c *brick.Client, timeout time.Duration) {
	_, was := c.Connection()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if up, gen := c.Connection(); up && gen != was {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tlsKey sums up a client translator's TLS options, to notice a change.
func tlsKey(cl *volfile.Volume) string {
	var parts []string
	for _, k := range []string{"ssl-enabled", "ssl-own-cert", "ssl-private-key", "ssl-ca-list", "ssl-crl-path", "ssl-cert-depth"} {
		v, _ := cl.Option("transport.socket." + k)
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, " ")
}

// planDistribute checks a distribute translator's new subvolumes against
// the mounted ones and adds the step that applies them: the volume grows
// and shrinks while mounted. A subvolume is known by its bricks, as
// glusterd keeps the client translators' names: one the volume had keeps
// serving (its bricks moved or its quorum changed as planned for it); one
// the volume gained (add-brick) is built here and connected by the step;
// one that left (remove-brick commit) is given up after retireGrace, so
// fops in flight on it end. A remove-brick commit also renumbers the
// replica sets after the one removed, and a set's name is its lock
// domain: such a set is replaced by a new one over the same brick
// connections (which keeps the bricks' locks of open files), and the old
// one drains its locks.
func (v *Volume) planDistribute(n *node, x *volfile.Volume, steps *[]step) error {
	o, err := dhtOptions(x)
	if err != nil {
		return err
	}
	a := &assembly{opts: v.opts, log: v.log, replicated: map[*volfile.Volume]bool{}, volumeID: v.ID}
	for _, y := range x.Subvolumes {
		markReplicated(a, y)
	}
	var kids, leaving []*node
	var fresh []*brick.Client
	var changes []string
	reused := map[*node]bool{}
	// A brick is in one set: a set that shares bricks with a set of the
	// mounted graph without being it changed its replica count or arbiter
	// (add-brick replica N): not something to apply live.
	owner := map[string]*node{}
	for _, k := range n.kids {
		for _, b := range leaves(k.x) {
			owner[b] = k
		}
	}
	for _, s := range x.Subvolumes {
		cx := carriedNode(s)
		var old *node
		for _, k := range n.kids {
			if identity(k.x) == identity(cx) {
				old = k
			}
		}
		switch {
		case old != nil && reused[old]:
			return fmt.Errorf("volfile: %s lists the bricks of %s twice; the mount keeps the graph it has", x.Name, cx.Name)
		case old != nil && old.x.Name == cx.Name:
			if err := v.plan(old, cx, steps); err != nil {
				return err
			}
			kids = append(kids, old)
		case old != nil:
			if old.repl == nil {
				return fmt.Errorf("volfile: %s was renamed %s; remount to use it", old.x.Name, cx.Name)
			}
			// Same bricks, new name: a new replica set over them.
			for i, b := range old.kids {
				if err := v.plan(b, carriedNode(cx.Subvolumes[i]), steps); err != nil {
					return err
				}
			}
			nk, err := buildReplicate(a, cx, old.kids)
			if err != nil {
				return fmt.Errorf("%w; the mount keeps the graph it has", err)
			}
			v.undo = append(v.undo, nk.repl.Close)
			kids = append(kids, nk)
			leaving = append(leaving, old)
			changes = append(changes, fmt.Sprintf("%s: replica set %s is now named %s (a remove-brick renumbered it)", x.Name, old.x.Name, cx.Name))
		default:
			for _, b := range leaves(cx) {
				if k, ok := owner[b]; ok {
					return fmt.Errorf("volfile: %s now has brick %s in %s, which is not the set it was in (%s): the replica count or the arbiter changed; remount to use it", x.Name, b, cx.Name, k.x.Name)
				}
			}
			before := len(a.clients)
			nk, err := a.build(s)
			if err != nil {
				for _, r := range a.repls {
					r.Close()
				}
				closeClients(a.clients)
				return fmt.Errorf("volfile: the new subvolume %s: %w; the mount keeps the graph it has", cx.Name, err)
			}
			fresh = append(fresh, a.clients[before:]...)
			kids = append(kids, nk)
			changes = append(changes, fmt.Sprintf("%s: subvolume %s added (%s)", x.Name, cx.Name, brickList(nk)))
		}
		reused[old] = true
	}
	if len(fresh) > 0 || len(a.repls) > 0 {
		repls, clients := a.repls, a.clients
		v.undo = append(v.undo, func() {
			for _, r := range repls {
				r.Close()
			}
			closeClients(clients)
		})
	}
	for _, k := range n.kids {
		if !reused[k] {
			leaving = append(leaving, k)
			changes = append(changes, fmt.Sprintf("%s: subvolume %s removed (%s)", x.Name, k.x.Name, brickList(k)))
		}
	}
	subs := make([]fop.Subvolume, len(kids))
	for i, k := range kids {
		subs[i] = k.sub
	}
	grows := n.dht == nil
	if grows {
		// The subvolume mounted alone must stay, first: directories
		// opened before are still listed from it.
		if kids[0] != n.kids[0] {
			return fmt.Errorf("volfile: %s no longer starts with %s, the subvolume it was mounted over; remount to use it", x.Name, n.kids[0].x.Name)
		}
		changes = append(changes, fmt.Sprintf("%s: the volume grew from one subvolume to %d: the distribute layer takes over", x.Name, len(kids)))
	} else if err := n.dht.CheckRegraph(subs); err != nil {
		return err
	}
	*steps = append(*steps, func() []string {
		if len(fresh) > 0 {
			v.startClients(fresh)
		}
		out := changes
		if grows {
			d, err := dht.New(x.Name, subs, o, n.logger.With(zap.String("subvol", x.Name)))
			if err != nil {
				// Checked above (options, count): cannot happen.
				return []string{fmt.Sprintf("%s: the new subvolumes not used: %v", x.Name, err)}
			}
			v.clients = append(v.clients, fresh...)
			n.kids, n.dht = kids, d
			n.single.grow(d)
			n.x = x
			return out
		}
		if len(kids) != len(n.kids) || len(leaving) > 0 {
			if _, _, err := n.dht.Regraph(subs); err != nil {
				// CheckRegraph passed under v.mu: cannot happen.
				return []string{fmt.Sprintf("%s: subvolumes not changed: %v", x.Name, err)}
			}
			v.clients = append(v.clients, fresh...)
			n.kids = kids
		} else {
			out = nil
		}
		n.x = x
		changed, err := n.dht.Reconfigure(o)
		if err != nil {
			return append(out, fmt.Sprintf("%s: options not applied: %v", x.Name, err))
		}
		for _, c := range changed {
			val, _ := x.Option(c)
			out = append(out, fmt.Sprintf("%s: %s is now %s", x.Name, c, val))
		}
		if len(leaving) > 0 {
			v.retire(leaving, kids)
		}
		return out
	})
	return nil
}

// markReplicated notes the bricks of x's replica sets, for their ping
// settings.
func markReplicated(a *assembly, x *volfile.Volume) {
	x = carriedNode(x)
	if volfile.Canonical(x.Type) == volfile.TypeReplicate {
		for _, s := range x.Subvolumes {
			a.replicated[s] = true
		}
	}
}

// identity names a subvolume by what stays when glusterd renumbers it:
// its bricks' client translator names.
func identity(x *volfile.Volume) string {
	x = carriedNode(x)
	if len(x.Subvolumes) == 0 {
		return x.Name
	}
	parts := make([]string, len(x.Subvolumes))
	for i, s := range x.Subvolumes {
		parts[i] = identity(s)
	}
	return volfile.Canonical(x.Type) + "(" + strings.Join(parts, ",") + ")"
}

// leaves returns the client translators' names below x.
func leaves(x *volfile.Volume) []string {
	x = carriedNode(x)
	if len(x.Subvolumes) == 0 {
		return []string{x.Name}
	}
	var out []string
	for _, s := range x.Subvolumes {
		out = append(out, leaves(s)...)
	}
	return out
}

// brickList names the bricks below n, host:path.
func brickList(n *node) string {
	var out []string
	n.walk(func(k *node) {
		if k.client != nil {
			host, _, path := k.client.Target()
			out = append(out, host+":"+path)
		}
	})
	return strings.Join(out, " ")
}

// startClients connects new bricks, each given a while; one that does not
// answer keeps trying in the background (its files wait, as at mount).
func (v *Volume) startClients(cs []*brick.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), moveWait)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Start(ctx); err != nil {
				v.log.Warn("a new brick did not answer; retrying in the background", zap.String("brick", c.Name()), zap.Error(err))
				c.StartBackground()
			}
		}()
	}
	wg.Wait()
}

// retireGrace is how long a subvolume that left the graph keeps serving
// the fops already sent to it before its replica set and bricks close.
var retireGrace = 30 * time.Second

// retire gives up nodes that left the graph (GlusterFS leaves an old
// graph's translators alive after a graph switch; brickfs closes them once
// their fops are done): replica sets stop their heal and drain their
// locks at once, in the background, and close after retireGrace, with
// their bricks unless the graph still uses them (kept: the nodes in the
// graph now). Close waits for all of it.
func (v *Volume) retire(nodes, kept []*node) {
	inUse := map[*brick.Client]bool{}
	for _, k := range kept {
		k.walk(func(b *node) {
			if b.client != nil {
				inUse[b.client] = true
			}
		})
	}
	var repls []*afr.Replicate
	var clients []*brick.Client
	for _, n := range nodes {
		n.walk(func(b *node) {
			if b.repl != nil {
				repls = append(repls, b.repl)
			}
			if b.client != nil && !inUse[b.client] {
				clients = append(clients, b.client)
			}
		})
	}
	var once sync.Once
	done := func() {
		once.Do(func() {
			for _, r := range repls {
				r.Drain()
				r.Close()
			}
			closeClients(clients)
			v.mu.Lock()
			v.clients = slices.DeleteFunc(v.clients, func(c *brick.Client) bool { return slices.Contains(clients, c) })
			v.mu.Unlock()
		})
	}
	stop := make(chan struct{})
	v.retiring = append(v.retiring, stop)
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for _, r := range repls {
			r.StopHeal()
			r.Drain()
		}
		select {
		case <-time.After(retireGrace):
		case <-stop:
		}
		done()
	}()
}
