package dht

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// The layout xattr and its neighbours (dht-common.h).
const (
	xattrLayout     = "trusted.glusterfs.dht"
	xattrMDS        = "trusted.glusterfs.dht.mds"
	xattrLinkto     = "trusted.glusterfs.dht.linkto"
	xattrCommitHash = "trusted.glusterfs.dht.commithash"
	keyPreopParent  = "glusterfs.preop.parent.key"
	keyInternalFop  = "glusterfs-internal-fop"

	// hashInvalid is DHT_LAYOUT_HASH_INVALID: the commit hash of a layout
	// that no rebalance committed, so a miss is looked up everywhere.
	hashInvalid = 1
	// typeUser is DHT_HASH_TYPE_DM_USER, a layout an operator set; it
	// hashes as the normal type does and is never healed over.
	typeUser = 1
)

// slice is one subvolume's part of a directory's layout
// (trusted.glusterfs.dht: be32 commit hash, type, start, stop).
type slice struct {
	start, stop uint32
	commit, typ uint32
	has         bool // the directory and its layout xattr were seen there
	present     bool // the directory exists there (answered lookup)
}

// owns reports whether the slice holds a hash range: a missing layout, or
// start == stop == 0, owns none.
func (s slice) owns() bool { return s.has && !(s.start == 0 && s.stop == 0) }

func (s slice) encode() []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b[0:], s.commit)
	binary.BigEndian.PutUint32(b[4:], s.typ)
	binary.BigEndian.PutUint32(b[8:], s.start)
	binary.BigEndian.PutUint32(b[12:], s.stop)
	return b
}

// parseSlice decodes a layout xattr; anything but 16 bytes is no layout.
func parseSlice(v []byte) (slice, bool) {
	if len(v) != 16 {
		return slice{}, false
	}
	return slice{
		commit: binary.BigEndian.Uint32(v[0:]),
		typ:    binary.BigEndian.Uint32(v[4:]),
		start:  binary.BigEndian.Uint32(v[8:]),
		stop:   binary.BigEndian.Uint32(v[12:]),
		has:    true,
	}, true
}

// layout is a directory's layout: one slice per subvolume, in the order
// of the distribute translator's subvolumes.
type layout struct {
	s []slice
	// complete: the slices that own a range cover 0..0xffffffff once,
	// with every subvolume answering.
	holes, overlaps int
	missing         int // subvolumes that answered without the directory
	unknown         int // subvolumes that did not answer (down)
}

// newLayout builds a layout from per-subvolume slices and checks it
// (dht_layout_anomalies).
func newLayout(s []slice) *layout {
	l := &layout{s: s}
	type rng struct{ start, stop uint32 }
	var rs []rng
	for _, x := range s {
		if x.owns() {
			rs = append(rs, rng{x.start, x.stop})
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	next := uint64(0)
	for _, r := range rs {
		switch {
		case uint64(r.start) > next:
			l.holes++
		case uint64(r.start) < next:
			l.overlaps++
		}
		if uint64(r.stop)+1 > next {
			next = uint64(r.stop) + 1
		}
	}
	if next != 1<<32 {
		l.holes++
	}
	return l
}

// search returns the subvolume whose slice holds hash, or -1 (a hole).
func (l *layout) search(hash uint32) int {
	for i, x := range l.s {
		if x.owns() && x.start <= hash && hash <= x.stop {
			return i
		}
	}
	return -1
}

// first returns the subvolume owning hash 0, where DHT sends the locks
// and fops of a directory that go to one subvolume; -1 if none does.
func (l *layout) first() int { return l.search(0) }

// commitMatches reports whether every owning slice carries commit hash h:
// then a name missing from its hashed subvolume is missing everywhere.
func (l *layout) commitMatches(h uint32) bool {
	any := false
	for _, x := range l.s {
		if x.owns() {
			any = true
			if x.commit != h {
				return false
			}
		}
	}
	return any
}

func (l *layout) String() string {
	s := ""
	for i, x := range l.s {
		switch {
		case !x.present && !x.has:
			s += fmt.Sprintf(" %d:-", i)
		case !x.has:
			s += fmt.Sprintf(" %d:none", i)
		default:
			s += fmt.Sprintf(" %d:%08x-%08x/%x", i, x.start, x.stop, x.commit)
		}
	}
	return fmt.Sprintf("[%s ] holes %d overlaps %d missing %d down %d", s, l.holes, l.overlaps, l.missing, l.unknown)
}

// assign computes the ranges DHT gives a directory
// (dht_selfheal_layout_new_directory): usable subvolumes taken in
// translator-name order (plain byte order) from the one path's hash
// picks, each getting a share weighted by its size in MiB (or equal
// shares when weights is nil or a weight is 0), the last one ending at
// 0xffffffff. names are the subvolumes' translator names, usable says
// which may get a range, and hash is the hash of the directory's path.
// The result is indexed like names; unusable subvolumes own nothing.
func assign(names []string, usable []bool, weights []uint64, hash, commit uint32) []slice {
	n := len(names)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	use := 0
	var total uint64
	weighted := weights != nil
	for _, i := range order {
		if !usable[i] {
			continue
		}
		use++
		if weighted {
			if weights[i] == 0 {
				weighted = false
			}
			total += weights[i]
		}
	}
	out := make([]slice, n)
	if use == 0 {
		return out
	}
	var chunk float64
	if weighted && total > 0 {
		chunk = float64(0xffffffff) / float64(total)
	} else {
		weighted = false
		chunk = float64(0xffffffff) / float64(use)
	}
	startAt := int(hash % uint32(n))
	var start uint32
	used := 0
	for k := 0; k < n; k++ {
		i := order[(k+startAt)%n]
		if !usable[i] {
			continue
		}
		w := uint64(1)
		if weighted {
			w = weights[i]
		}
		size := uint32(chunk * float64(w))
		out[i] = slice{start: start, stop: start + size - 1, commit: commit, has: true, present: true}
		used++
		if used == use {
			out[i].stop = 0xffffffff
			break
		}
		start += size
	}
	return out
}

// keepOverlap reorders the ranges of a recomputed layout so that each
// subvolume keeps as much of its old range as it can, as
// dht_selfheal_layout_maximize_overlap does: files placed by the old
// layout then mostly stay where lookups find them.
func keepOverlap(names []string, next, old []slice) {
	n := len(next)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	ov := func(a, b slice) uint64 { // overlap of new range a with old range b
		if !a.owns() || !b.owns() {
			return 0
		}
		lo, hi := max(a.start, b.start), min(a.stop, b.stop)
		if lo > hi {
			return 0
		}
		return uint64(hi-lo) + 1
	}
	for x := 0; x < n; x++ {
		i := order[x]
		if !next[i].owns() {
			continue
		}
		best, bestGain := i, uint64(0)
		for y := x + 1; y < n; y++ {
			j := order[y]
			if !next[j].owns() {
				continue
			}
			cur := ov(next[i], old[i]) + ov(next[j], old[j])
			swapped := ov(next[j], old[i]) + ov(next[i], old[j])
			if swapped > cur && swapped-cur > bestGain {
				best, bestGain = j, swapped-cur
			}
		}
		if best != i {
			next[i].start, next[best].start = next[best].start, next[i].start
			next[i].stop, next[best].stop = next[best].stop, next[i].stop
		}
	}
}
