// Package afr is cluster/replicate: one replica set over its children
// (brick clients, or in-memory bricks in tests), compatible with
// GlusterFS's AFR so that native clients and the self-heal daemon work
// beside it: every change locked, logged in trusted.afr.* and filed in the
// bricks' heal indices; client quorum; reads from a readable child chosen
// by the gfid's hash; a brick that hangs dropped after fop-timeout; and a
// heal of what it marked (data, metadata, entries) as soon as the brick is
// back. It speaks only the vocabulary (brick/fop).
//
// # Files
//
// By concern: afr.go (the type, its children and their events), quorum.go
// (client quorum), set.go (the []bool algebra of children), fanout.go
// (sending to children and combining their replies), inode.go and fd.go
// (per-inode readability, per-fd child fds in the fd's context), read.go
// (refresh, the read child, the read fops), lock.go (inodelks, entrylks
// and the eager lock), txn_data.go, txn_meta.go, txn_entry.go (the three
// transactions), changelog.go (trusted.afr.* counters, pre-op, post-op,
// accusations, the heal matrix), fops.go (the change fops), parent.go
// (what a parent layer drives through the replica set: Inodelk,
// Finodelk, Entrylk, Xattrop, Fxattrop, CopyFileRange), healqueue.go (the
// one door from the transactions to heal: noteHeal, noteEntryHeal,
// kickHeal, the worker), heal_data.go, heal_meta.go, heal_entry.go.
//
// # Errors
//
// Where children answer differently the caller's errno follows AFR's
// rules: the bricks' own errno when a quorum answered and none succeeded
// (afr_final_errno's order: ENODATA > ENOENT > ESTALE > ENOSPC > the
// others), ENOTCONN ("client quorum is not met") only when too few bricks
// answered at all; a changelog update that too few bricks take gives their
// errno too (an ENOSPC is the caller's).
//
// # Concurrency
//
// A Replicate is safe for concurrent use. Its locks, in the order they may
// be taken: Replicate.mu (the inode table) before inode.mu (one file's
// readability and eager-lock state); replFd.mu (one fd's child fds),
// healMu, abandonMu (blocking lock requests whose callers gave up) and
// watchMu (the watchers and their queued events; the children's states
// are read under it) are taken alone. Watchers run on the replica set's own delivery goroutine, never
// under one of its locks. replFd.mu is held across the network call that
// opens a child's fd lazily (afr_fix_open), so two fops never open it
// twice; no other Go lock is held across a network call. The eager lock is
// a brick-side inodelk in the replica's domain, not a Go lock: it is held
// across many fops of one file and released after post-op-delay of
// idleness or when another client waits for it; fops wait for it on
// inode.cond. Entry changes take entrylks in the same domain, in the
// sorted order of their (parent, name) pairs, on each child in index
// order; a contended lock is retried blocking one child at a time in index
// order, so two clients never deadlock (afr_lock). Every fan-out to the
// children is bounded by fop-timeout.
package afr
