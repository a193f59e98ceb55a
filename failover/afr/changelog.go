package afr

import (
	"context"
	"encoding/binary"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Changelog slots of trusted.afr.* values (afr.h AFR_NUM_CHANGE_LOGS):
// three big-endian int32 counters.
const (
	slotData  = 0
	slotMeta  = 1
	slotEntry = 2
)

const dirtyKey = "trusted.afr.dirty"

// counts is one 12-byte changelog value.
type counts [3]int32

func (c counts) bytes() []byte {
	b := make([]byte, 12)
	for i, v := range c {
		binary.BigEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

func parseCounts(b []byte) (counts, bool) {
	var c counts
	if len(b) != 12 {
		return c, false
	}
	for i := range c {
		c[i] = int32(binary.BigEndian.Uint32(b[4*i:]))
	}
	return c, true
}

func slotOnly(slot int, v int32) counts {
	var c counts
	c[slot] = v
	return c
}

// changelog builds an ADD_ARRAY dict: dirty plus one value per child.
// Children without an entry in pending get all-zero values, which the
// brick reads without writing; every key is sent, as AFR does, so the
// reply tells the whole pending matrix.
func (r *Replicate) changelog(dirty counts, pending map[int]counts) xdr.Dict {
	d := make(xdr.Dict, 0, len(r.keys)+1)
	d = append(d, xdr.Pair{Key: dirtyKey, Value: xdr.Ptr(dirty.bytes())})
	for i, k := range r.keys {
		d = append(d, xdr.Pair{Key: k, Value: xdr.Ptr(pending[i].bytes())})
	}
	return d
}

// lookupKeys asks LOOKUP to return the changelog, as afr_xattr_req_prepare does.
func (r *Replicate) lookupKeys() xdr.Dict {
	d := make(xdr.Dict, 0, len(r.keys)+1)
	d = append(d, xdr.Pair{Key: dirtyKey, Value: xdr.Uint(12)})
	for _, k := range r.keys {
		d = append(d, xdr.Pair{Key: k, Value: xdr.Uint(12)})
	}
	return d
}

// superFastHash is Paul Hsieh's hash over a gfid's 16 raw bytes, as
// libglusterfs/src/hashfn.c computes it; AFR reads from
// superFastHash(gfid) % children (afr_hash_child, read-hash-mode 1).
func superFastHash(g [16]byte) uint32 {
	hash := uint32(len(g))
	data := g[:]
	for n := len(data) / 4; n > 0; n-- {
		hash += uint32(binary.LittleEndian.Uint16(data))
		tmp := uint32(binary.LittleEndian.Uint16(data[2:]))<<11 ^ hash
		hash = hash<<16 ^ tmp
		data = data[4:]
		hash += hash >> 11
	}
	hash ^= hash << 3
	hash += hash >> 5
	hash ^= hash << 4
	hash += hash >> 17
	hash ^= hash << 25
	hash += hash >> 6
	return hash
}

// xattrop sends an ADD_ARRAY changelog update to the children in set and
// returns which applied it and, when they are too few for quorum, the
// error for the caller: the bricks' own errno (an ENOSPC or EDQUOT of the
// changelog is the caller's, as AFR keeps it from the changelog callback),
// else ENOTCONN.
func (r *Replicate) xattrop(ctx context.Context, gfid xdr.GFID, owner []byte, set []bool, dirty counts, pending map[int]counts, xdata xdr.Dict) ([]bool, error) {
	return r.xattropIf(ctx, gfid, owner, set, dirty, pending, xdata, nil)
}

// xattropIf is xattrop that cuts a slow child only once the children that
// applied it satisfy enough too (see fanoutLagCut): a data pre-op must not
// be left standing on stale copies alone because the good one was slow.
func (r *Replicate) xattropIf(ctx context.Context, gfid xdr.GFID, owner []byte, set []bool, dirty counts, pending map[int]counts, xdata xdr.Dict, enough func(ok []bool) bool) ([]bool, error) {
	dict := r.changelog(dirty, pending)
	rs := r.fanoutLagCut(internal(ctx, owner), set, func(ctx context.Context, i int) error {
		_, _, err := r.kids[i].Xattrop(ctx, gfid, fop.XattropAddArray, dict, xdata)
		return err
	}, nil, enough, nil).rs
	for i, rp := range rs {
		if set[i] && rp.err != nil {
			r.log.Warn("changelog update failed", zap.String("brick", r.kids[i].Name()), zap.Stringer("gfid", gfid), zap.Error(rp.err))
		}
	}
	ok := succeeded(rs, set)
	var fail error
	if !r.hasQuorum(ok) {
		fail = r.quorumErr("XATTROP", rs, set)
	}
	return ok, fail
}

// blame builds pending +1 in slot for every child in who.
func blame(who []bool, slot int) map[int]counts {
	m := map[int]counts{}
	for i, w := range who {
		if w {
			m[i] = slotOnly(slot, 1)
		}
	}
	return m
}

// accuse records on the children in to that the children in who missed a
// change of kind slot. It must reach quorum before the change may be
// acknowledged: that is what keeps an acknowledged write from being lost
// to a heal in the wrong direction.
func (r *Replicate) accuse(ctx context.Context, gfid xdr.GFID, owner []byte, to, who []bool, slot int, xdata xdr.Dict) error {
	if count(who) == 0 {
		return nil
	}
	var names []string
	for i, w := range who {
		if w {
			names = append(names, r.kids[i].Name())
		}
	}
	r.log.Warn("change missed bricks; marking them for heal", zap.Stringer("gfid", gfid), zap.Strings("bricks", names), zap.Int("slot", slot))
	if slot != slotEntry {
		r.noteHeal(gfid, slot)
	}
	ok, fail := r.xattrop(ctx, gfid, owner, to, counts{}, blame(who, slot), xdata)
	if !r.hasQuorum(ok) {
		return fail
	}
	if count(r.up()) == r.n() {
		// The accused brick is up (it failed the fop itself): nothing
		// else wakes the heal worker.
		r.kickHeal()
	}
	return nil
}

// matrix is the data slot of every child's changelog: m[i][j] is what
// child i holds against child j; dirty[i] is child i's own dirty count.
type matrix struct {
	m     [][]int32
	dirty []int32
}

func (r *Replicate) readMatrix(ctx context.Context, ino *inode, set []bool) (matrix, bool) {
	return r.readMatrixSlot(ctx, ino, set, slotData)
}

func (r *Replicate) readMatrixSlot(ctx context.Context, ino *inode, set []bool, slot int) (matrix, bool) {
	ds := r.xattropGet(ctx, ino, set)
	mx := matrix{m: make([][]int32, r.n()), dirty: make([]int32, r.n())}
	for i := range ds {
		mx.m[i] = make([]int32, r.n())
		if !set[i] {
			continue
		}
		if ds[i] == nil {
			return mx, false
		}
		if b, ok := ds[i].Bytes(dirtyKey); ok {
			if c, ok := parseCounts(b); ok {
				mx.dirty[i] = c[slot]
			}
		}
		for j, k := range r.keys {
			if b, ok := ds[i].Bytes(k); ok {
				if c, ok := parseCounts(b); ok {
					mx.m[i][j] = c[slot]
				}
			}
		}
	}
	return mx, true
}

// direction picks sources and sinks as afr_selfheal_find_direction does:
// a child accused by no child that is not itself accused by itself.
func (r *Replicate) direction(mx matrix) (sources, sinks []bool) {
	accused := make([]bool, r.n())
	for i := range mx.m {
		if mx.m[i][i] != 0 {
			continue // a fool accuses nobody
		}
		for j, v := range mx.m[i] {
			if v != 0 && j != i {
				accused[j] = true
			}
		}
	}
	sources, sinks = make([]bool, r.n()), make([]bool, r.n())
	for i := range accused {
		switch {
		case accused[i]:
			sinks[i] = true
		case i != r.opts.Arbiter:
			sources[i] = true
		}
	}
	return sources, sinks
}

// xattropGet reads the changelog of the children in set (all-zero adds).
func (r *Replicate) xattropGet(ctx context.Context, ino *inode, set []bool) []xdr.Dict {
	dict := r.changelog(counts{}, nil)
	out := make([]xdr.Dict, r.n())
	r.fanout(internal(ctx, ino.owner), set, func(ctx context.Context, i int) error {
		d, _, err := r.kids[i].Xattrop(ctx, ino.gfid, fop.XattropAddArray, dict, nil)
		out[i] = d
		return err
	})
	return out
}
