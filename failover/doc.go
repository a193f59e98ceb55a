// Package failover is the volume graph above the bricks: it turns a client
// volfile's translators into one Fops that the filesystem drives. It
// carries out a single brick and one replica set (cluster/replicate:
// AFR's transactions, changelog, quorum, read selection, heal), with
// cluster/distribute's layout on new directories when the graph has one
// subvolume, and follows the volfile while mounted (replace-brick, quorum
// changes).
//
// # Errors
//
// Errors come from the brick package (*brick.OpError), so the filesystem
// maps them to errnos in one place. Where replicas answer differently the
// caller's errno follows AFR's rules: the bricks' own errno when a quorum
// answered and none succeeded (afr_final_errno's order: ENODATA > ENOENT >
// ESTALE > ENOSPC > the others), ENOTCONN ("client quorum is not met")
// only when too few bricks answered at all.
//
// # Concurrency
//
// A Fops is safe for concurrent use. Replicate's locks, in the order they
// may be taken: Replicate.mu (the inode table) before inode.mu (one
// file's readability and eager-lock state); replFd.mu (one fd's brick fds)
// and healMu are taken alone. replFd.mu is held across the network call
// that opens a brick's fd lazily (afr_fix_open), so two fops never open it
// twice; no other Go lock is held across a network call. The eager lock is
// a brick-side inodelk, not a Go lock: it is held across many fops of one
// file and released after post-op-delay of idleness or when another client
// waits for it; fops wait for it on inode.cond. Every fan-out to the
// bricks is bounded by fop-timeout; a brick that does not answer in time is
// dropped and marked for heal.
package failover
