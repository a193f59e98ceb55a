// Package failover assembles the volume graph above the bricks from the
// client volfile's tree, as GlusterFS builds its translator graph, and is
// the only importer of the layers and of the brick client.
//
// # Assembly
//
// registry.go has one row per translator type: carried out (with the
// function that builds its node), passed by (caching, statistics: its
// child stands in for it), or refused with its reason. Open walks the
// volfile from its top, builds each node's children first, then the node:
// protocol/client becomes a brick client (configured by brick.ConfigFrom),
// cluster/replicate a replica set (package afr) over its bricks,
// cluster/distribute over one subvolume a layer that gives new
// directories the layout covering the whole hash range. It then connects
// every brick at once and mounts when each part of the graph has a brick
// that answers. The io-stats layer (package stats) always stands on top,
// whether the volfile names debug/io-stats or not: Volume.Fops drives it.
//
// # Status
//
// Volume.Status is the graph as a tree of fop.Status, io-stats on top,
// each node with the figures of its kind (brick.Client.Stats,
// afr.Replicate.Stats, dht.DHT.Stats, shard.Shard.Stats, the io-stats
// counters): `brickfs status`, the Prometheus metrics and the statedump
// read it. The figures are atomics and short critical sections; Status
// holds Volume.mu only to walk the nodes, never across a call to a brick
// (but a Reconfigure under way holds it, so a Status waits for it).
//
// # Events
//
// Child events flow up as GlusterFS's notify does: every node is a
// fop.Subvolume, and a parent Watches its children (a replica set counts
// its bricks up and down, and tells its own watchers when client quorum
// comes or goes).
//
// # Reconfigure
//
// Volume.Reconfigure applies a changed volfile node by node (volfile.Watch
// fetches it): a brick that moved is reconnected there, a replica set
// moves its bricks one at a time and follows its quorum options. A change
// of the graph's shape is refused with "remount". Every node is checked
// before any is changed.
//
// # Errors
//
// Errors come from the layers and the bricks as *fop.OpError, so the
// filesystem maps them to errnos in one place.
//
// # Concurrency
//
// A Volume is safe for concurrent use; Volume.mu serializes Reconfigure,
// which is the only writer of the nodes' volfile translators.
package failover
