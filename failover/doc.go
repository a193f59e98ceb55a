// Package failover assembles the volume graph above the bricks: it turns a
// client volfile's translators into one Fops that the filesystem drives —
// a single brick, or one replica set (package afr) over brick clients,
// with cluster/distribute's layout on new directories when the graph has
// one subvolume — and follows the volfile while mounted (replace-brick,
// quorum changes). It is the only importer of the layers and of the brick
// client.
//
// # Errors
//
// Errors come from the layers and the bricks as *fop.OpError, so the
// filesystem maps them to errnos in one place.
//
// # Concurrency
//
// A Volume is safe for concurrent use; Volume.mu guards the graph in use
// while the volfile follower changes it.
package failover
