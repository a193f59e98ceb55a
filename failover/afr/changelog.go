package afr

import (
	"encoding/binary"
	"time"

	"github.com/brickfs/brickfs/brick/xdr"
)

// Changelog slots of trusted.afr.* values (afr.h AFR_NUM_CHANGE_LOGS):
// three big-endian int32 counters.
const (
	slotData  = 0
	slotMeta  = 1
	slotEntry = 2
)

// xattropAddArray is GF_XATTROP_ADD_ARRAY: add big-endian int32 arrays.
const xattropAddArray = 0

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

var timeNow = time.Now
