package afr

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/brickfs/brickfs/brick/xdr"
)

// inode is what the replica set keeps per file: its lock owner, the
// readable children last computed, and its eager data lock.
type inode struct {
	gfid  xdr.GFID
	owner []byte

	mu   sync.Mutex
	cond *sync.Cond

	// Readability, refreshed by every LOOKUP and after child events.
	readGen  uint64 // GUARDED_BY(mu)
	readable []bool // GUARDED_BY(mu); nil until known
	metaRead []bool // GUARDED_BY(mu)
	isDir    bool   // GUARDED_BY(mu)

	// The eager data lock: several writes share one lock and pre-op.
	held     bool        // GUARDED_BY(mu)
	changing bool        // GUARDED_BY(mu); a lock or unlock is on the wire
	lockGen  uint64      // GUARDED_BY(mu); generation the lock was taken in
	locked   []bool      // GUARDED_BY(mu); children holding the lock
	part     []bool      // GUARDED_BY(mu); children taking part (locked, pre-op done, not accused)
	busy     [][2]uint64 // GUARDED_BY(mu); ranges of fops in flight
	timer    *time.Timer // GUARDED_BY(mu); the delayed post-op
	// releaseNow asks the last fop in flight to end the eager lock at once:
	// after a failure, or when another client waits for the lock.
	releaseNow bool // GUARDED_BY(mu)
	// noPostOp keeps dirty raised at unlock: a change reached too few
	// bricks and the heal daemon must compare them (afr_changelog_post_op_do).
	noPostOp bool // GUARDED_BY(mu)
	// noJoin keeps new fops out of the held lock until it is taken again:
	// another client waits for it (contended), or a change failed, or the
	// accusation of a brick that missed it fell short of quorum, so the
	// children taking part no longer say who must be accused. A fop
	// joining it would skip those children and accuse nobody; one taking
	// the lock anew accuses them in its pre-op.
	noJoin bool // GUARDED_BY(mu)
	// cycle counts the times the eager lock was taken, so that a brick's
	// answer about a lock (contended) is matched to the lock it was about.
	cycle atomic.Uint64
	// ownLocks is, per child, how many more of our inodelks in AFR's
	// domain the brick may count beside the eager lock: a metadata
	// change's, and locks whose unlock is on its way or left until the
	// child stops lagging (see contended).
	ownLocks []atomic.Int32
	fds      int       // GUARDED_BY(mu); open fds, for dropping idle inodes
	lastUsed time.Time // GUARDED_BY(mu)
}

func (r *Replicate) inode(g xdr.GFID) *inode {
	r.mu.Lock()
	defer r.mu.Unlock()
	ino := r.inodes[g]
	if ino == nil {
		if len(r.inodes) > 100000 {
			r.pruneLocked()
		}
		ino = &inode{gfid: g, owner: newOwner(), ownLocks: make([]atomic.Int32, r.n())}
		ino.cond = sync.NewCond(&ino.mu)
		r.inodes[g] = ino
	}
	return ino
}

// pruneLocked forgets idle inodes. REQUIRES r.mu.
func (r *Replicate) pruneLocked() {
	cut := time.Now().Add(-time.Minute)
	for g, ino := range r.inodes {
		ino.mu.Lock()
		idle := !ino.held && !ino.changing && ino.fds == 0 && len(ino.busy) == 0 && ino.lastUsed.Before(cut)
		ino.mu.Unlock()
		if idle {
			delete(r.inodes, g)
		}
	}
}

// setReadable computes which children hold a good copy from the changelog
// the replies carry (afr_readables_fill, afr_accused_fill): a child is
// unreadable if any reply accuses it. The arbiter never holds data.
func (r *Replicate) setReadable(ino *inode, ok []bool, dicts []xdr.Dict, isDir bool, gen uint64) {
	data, meta := r.readableFrom(ok, dicts, isDir)
	ino.mu.Lock()
	ino.readable, ino.metaRead, ino.isDir, ino.readGen = data, meta, isDir, gen
	ino.lastUsed = timeNow()
	ino.mu.Unlock()
}

// refreshReadable is setReadable for a refresh or lookup that some
// children did not answer. The changelog of one still connected that gave
// no answer of its own (unseen: lagging, cut as slow, timed out) is unseen
// only for now: when it held a good copy, the answers alone may clear the
// copies it accuses, so what was known is kept instead. A child that was
// good stays good unless one that answered accuses it, and one that was
// not good does not become good, until a refresh that every connected
// good copy answers (its lag ending is such an event). Otherwise a refresh
// while the only good copy lags would take the stale copies for good
// ones, and the next write, leaving the lagging copy out, would blame it:
// the file left without a source (split-brain). A child that is down, or
// answered with an error of its own, is judged from the others' answers,
// as AFR does.
//
// Only the changelogs of the children in ok count: a child left out of ok
// (its copy of the parent is stale) may hold another file of the name.
func (r *Replicate) refreshReadable(ino *inode, ok, unseen, trust []bool, dicts []xdr.Dict, isDir bool, gen uint64) {
	all := make([]bool, r.n())
	seen := make([]xdr.Dict, r.n())
	for i := range all {
		all[i] = true
		if trust[i] {
			seen[i] = dicts[i]
		}
	}
	data, meta := r.readableFrom(all, seen, isDir) // accused by none in ok
	ino.mu.Lock()
	ino.readable = keepGood(ino.readable, ok, unseen, data, ino.isDir == isDir)
	ino.metaRead = keepGood(ino.metaRead, ok, unseen, meta, ino.isDir == isDir)
	ino.isDir, ino.readGen = isDir, gen
	ino.lastUsed = timeNow()
	ino.mu.Unlock()
}

// keepGood merges what a refresh found (fresh: accused by none of the
// children in ok, which answered) with what was known (prev): see
// refreshReadable.
func keepGood(prev, ok, unseen, fresh []bool, same bool) []bool {
	out := and(fresh, ok)
	if !same || len(prev) != len(ok) {
		return out
	}
	for i := range ok {
		if unseen[i] && prev[i] {
			// A good copy is connected but gave no answer.
			for j := range out {
				out[j] = (ok[j] || unseen[j]) && fresh[j] && prev[j]
			}
			return out
		}
	}
	return out
}

// readableFrom says which children among ok hold a good copy of the data
// (for a directory: of its entries) and of the metadata, from the
// changelogs their lookups returned: a child any other accuses is not
// good. The arbiter never holds good data.
func (r *Replicate) readableFrom(ok []bool, dicts []xdr.Dict, isDir bool) (data, meta []bool) {
	data, meta = clone(ok), clone(ok)
	slot := slotData
	if isDir {
		slot = slotEntry
	}
	for i := range dicts {
		if !ok[i] {
			continue
		}
		for j, k := range r.keys {
			b, found := dicts[i].Bytes(k)
			if !found {
				continue
			}
			c, valid := parseCounts(b)
			if !valid {
				continue
			}
			if c[slot] != 0 {
				data[j] = false
			}
			if c[slotMeta] != 0 {
				meta[j] = false
			}
		}
	}
	if a := r.opts.Arbiter; a >= 0 && a < len(data) && !isDir {
		data[a] = false
	}
	return data, meta
}

// changelogClean reports whether no copy accuses another for data, in
// the changelogs their lookups returned. Dirty is not looked at: a copy
// holds the source's eager lock, whose pre-op raised it (readableFrom
// does not look at it either).
func (r *Replicate) changelogClean(dicts []xdr.Dict) bool {
	for _, d := range dicts {
		for _, k := range r.keys {
			b, found := d.Bytes(k)
			if !found {
				continue
			}
			if c, valid := parseCounts(b); !valid || c[slotData] != 0 {
				return false
			}
		}
	}
	return true
}

// unreadable stops reads from children that missed a change, at once:
// the cached readable set would otherwise send a read to the stale copy
// until the next refresh.
func (r *Replicate) unreadable(ino *inode, who []bool, slot int) {
	if count(who) == 0 {
		return
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	for i, w := range who {
		if !w {
			continue
		}
		if slot == slotMeta {
			if ino.metaRead != nil {
				ino.metaRead[i] = false
			}
		} else if ino.readable != nil {
			ino.readable[i] = false
		}
	}
}

// claimBlame marks the children of who as holding a stale copy (of the
// data or entries, or with slot slotMeta the metadata) before a change
// blames them, unless that would leave ok, the children the change stands
// on, without a good copy; it reports whether it did. The check and the
// marks are one step: two changes failing on different children at once
// cannot both pass the check and together blame every good copy. Nothing
// known (nil) passes; every copy already accused passes for metadata and
// entries (AFR leaves them to the heal) but not for data (validWrite).
func (r *Replicate) claimBlame(ino *inode, ok, who []bool, slot int) bool {
	ino.mu.Lock()
	defer ino.mu.Unlock()
	good := &ino.readable
	if slot == slotMeta {
		good = &ino.metaRead
	}
	g := *good
	if g == nil || count(who) == 0 {
		return true
	}
	if count(g) == 0 {
		return slot != slotData
	}
	after := and(g, not(who))
	if !anyGood(after, ok) {
		return false
	}
	*good = after
	return true
}

// pick returns the iatt of the best child among ok: readable first.
func (r *Replicate) pick(ino *inode, ok []bool, sts []xdr.Iatt) xdr.Iatt {
	if i := r.pickIndex(ino, ok); i >= 0 {
		return sts[i]
	}
	return xdr.Iatt{}
}

// pickIndex is the child whose answer pick takes, or -1 if none.
func (r *Replicate) pickIndex(ino *inode, ok []bool) int {
	ino.mu.Lock()
	readable := ino.readable
	ino.mu.Unlock()
	h := int(superFastHash(ino.gfid) % uint32(r.n()))
	if ok[h] && (readable == nil || readable[h]) {
		return h
	}
	for i := range ok {
		if ok[i] && (readable == nil || readable[i]) {
			return i
		}
	}
	for i := range ok {
		if ok[i] && i != r.opts.Arbiter {
			return i
		}
	}
	for i := range ok {
		if ok[i] {
			return i
		}
	}
	return -1
}

// bestMeta returns the first child of ok whose metadata is good (not
// accused in the metadata slot), or -1 when none of them is.
func (r *Replicate) bestMeta(ino *inode, ok []bool) int {
	ino.mu.Lock()
	good := ino.metaRead
	ino.mu.Unlock()
	for i := range ok {
		if ok[i] && good != nil && good[i] {
			return i
		}
	}
	return -1
}
