package failover

import (
	"fmt"
	"strings"
	"time"

	"github.com/brickfs/brickfs/brick"
	"github.com/brickfs/brickfs/brick/volfile"
)

// Reconfigure applies a new volfile of the mounted volume where that can
// be done live, as the native client reconfigures its graph when glusterd
// announces a change: a brick moved to another host or path
// (replace-brick, reset-brick) is reconnected there, and AFR's client
// quorum follows the volfile. It returns what it changed. Any other change
// of what brickfs carries out (bricks added or removed, the replica count,
// distribute or arbiter appearing, an unsupported translator) is refused
// with an error that says to remount; the mount then goes on unchanged.
// Caching and statistics translators coming and going change nothing.
func (v *Volume) Reconfigure(g *volfile.Graph) ([]string, error) {
	chain, err := g.Chain()
	if err != nil {
		return nil, fmt.Errorf("the new volfile cannot be mounted by brickfs (%w); the mount keeps the graph it has", err)
	}
	for _, x := range chain {
		if id, ok := x.Option("volume-id"); ok && v.ID != "" && id != v.ID {
			return nil, fmt.Errorf("the volume now has volume-id %s, the mounted one had %s: it was deleted and created again; remount to use the new volume", id, v.ID)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if was, now := carried(v.chain), carried(chain); was != now {
		return nil, fmt.Errorf("the volume's graph changed from %s to %s; remount to use it", was, now)
	}
	oldLast, last := v.chain[len(v.chain)-1], chain[len(chain)-1]
	var changes []string
	if volfile.Canonical(last.Type) == volfile.TypeReplicate {
		changes, err = v.reconfigureReplicate(oldLast, last)
	} else {
		changes, err = v.moveBricks([]*volfile.Volume{oldLast}, []*volfile.Volume{last})
	}
	if err != nil {
		return nil, err
	}
	v.chain = chain
	return changes, nil
}

// carried names the translators of chain that brickfs carries out, in
// order: what must stay the same for a live change.
func carried(chain []*volfile.Volume) string {
	var ts []string
	for _, x := range chain {
		if volfile.Classify(x.Type) == volfile.Carry {
			t := volfile.Canonical(x.Type)
			if t == volfile.TypeReplicate {
				t = fmt.Sprintf("%s(%d)", t, len(x.Subvolumes))
			}
			ts = append(ts, t)
		}
	}
	return strings.Join(ts, " > ")
}

func (v *Volume) reconfigureReplicate(old, x *volfile.Volume) ([]string, error) {
	n := len(x.Subvolumes)
	oldRO, oldNames, err := replicateOptions(old, n)
	if err != nil {
		return nil, err
	}
	ro, names, err := replicateOptions(x, n)
	if err != nil {
		return nil, fmt.Errorf("%w; the mount keeps the graph it has", err)
	}
	if ro.Arbiter != oldRO.Arbiter {
		return nil, fmt.Errorf("the replica set %s changed its arbiter; remount to use it", x.Name)
	}
	for i := range names {
		if names[i] != oldNames[i] || x.Subvolumes[i].Name != old.Subvolumes[i].Name {
			return nil, fmt.Errorf("the bricks of %s were renamed or reordered (%s was %s); remount to use them", x.Name, x.Subvolumes[i].Name, old.Subvolumes[i].Name)
		}
	}
	changes, err := v.moveBricks(old.Subvolumes, x.Subvolumes)
	if err != nil {
		return nil, err
	}
	if ro.Quorum != oldRO.Quorum {
		v.repl.SetQuorum(ro.Quorum)
		msg := fmt.Sprintf("client quorum of %s is now %s", x.Name, quorumText(ro.Quorum, n))
		if up := v.repl.ChildrenUp(); !v.repl.HasQuorum(up) {
			n := 0
			for _, u := range up {
				if u {
					n++
				}
			}
			msg += fmt.Sprintf("; only %d bricks are up, so changes fail with ENOTCONN until enough are", n)
		}
		changes = append(changes, msg)
	}
	return changes, nil
}

func quorumText(q, n int) string {
	switch {
	case q < 0:
		return "none"
	case q > 0:
		return fmt.Sprintf("fixed at %d of %d", q, n)
	}
	return fmt.Sprintf("auto (%d of %d)", n/2+1, n)
}

// moveBricks points every client whose brick moved, or whose TLS settings
// changed, at its new place with its new settings. It checks them all
// before it moves any.
func (v *Volume) moveBricks(olds, subs []*volfile.Volume) ([]string, error) {
	if len(subs) != len(v.clients) {
		return nil, fmt.Errorf("the volume now has %d bricks, brickfs has %d; remount to use them", len(subs), len(v.clients))
	}
	var changes []string
	var moves []func()
	var movedClients []*brick.Client
	for i, s := range subs {
		if volfile.Canonical(s.Type) != volfile.TypeClient {
			return nil, fmt.Errorf("volfile: %s has %s (%s) where a brick was; remount to use it", s.Name, s.Name, s.Type)
		}
		cfg, err := BrickConfig(s, v.opts)
		if err != nil {
			return nil, fmt.Errorf("%w; the mount keeps the graph it has", err)
		}
		c := v.clients[i]
		if cfg.Name != c.Name() {
			return nil, fmt.Errorf("brick %s is now %s; remount to use it", c.Name(), cfg.Name)
		}
		host, port, path := c.Target() // port filled in: 24007 unless set
		np := cfg.RemotePort
		if np == 0 {
			np = 24007
		}
		tlsChanged := i < len(olds) && tlsKey(olds[i]) != tlsKey(s)
		if cfg.RemoteHost == host && np == port && cfg.RemoteSubvolume == path && !tlsChanged {
			continue
		}
		// The brick checks it belongs to the mounted volume.
		cfg.VolumeID = v.ID
		if tlsChanged {
			changes = append(changes, fmt.Sprintf("brick %s: TLS settings changed (%s)", c.Name(), tlsKey(s)))
		} else {
			changes = append(changes, fmt.Sprintf("brick %s moved from %s:%s to %s:%s", c.Name(), host, path, cfg.RemoteHost, cfg.RemoteSubvolume))
		}
		moves = append(moves, func() { c.Retarget(cfg) })
		movedClients = append(movedClients, c)
	}
	// One brick at a time, each given a while to come back before the
	// next goes: a change that touches every brick (its TLS settings)
	// never takes the whole replica set down at once.
	for i, m := range moves {
		m()
		if i < len(moves)-1 {
			v.waitReconnect(movedClients[i], moveWait)
		}
	}
	return changes, nil
}

// moveWait bounds how long Reconfigure waits for a moved brick to
// reconnect before it moves the next one.
const moveWait = 10 * time.Second

// waitReconnect waits until c has a connection newer than the one it had
// when Retarget was called, or timeout.
func (v *Volume) waitReconnect(c *brick.Client, timeout time.Duration) {
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
