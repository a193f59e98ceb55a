// Package failover is the volume graph above the bricks: it turns a client
// volfile's translators into one Fops that the filesystem drives. Today it
// carries out a graph over a single brick, with cluster/distribute's DHT
// layout on new directories when the graph has it; replication (AFR),
// read selection, quorum and brick health build on the same Fops.
//
// # Errors
//
// Errors come from the brick package unchanged (*brick.OpError), so the
// filesystem maps them to errnos in one place.
//
// # Concurrency
//
// A Fops is safe for concurrent use; it holds no lock across a network call.
package failover
