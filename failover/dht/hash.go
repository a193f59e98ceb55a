package dht

import (
	"encoding/binary"
	"fmt"
	"regexp"
)

// hashName is gf_dm_hashfn (libglusterfs/src/hashfn.c), the Davies-Meyer
// hash DHT places names by. Bytes of the final partial word are
// sign-extended, as C's char is on the platforms GlusterFS runs on: a
// UTF-8 name whose unsigned hash would pick the other subvolume lands
// where the native client puts it.
func hashName(name []byte) uint32 {
	h0, h1 := uint32(0x9464a485), uint32(0x542e1a94)
	n := len(name)
	pad := uint32(n) | uint32(n)<<8
	pad |= pad << 16
	var a [4]uint32
	rest := name
	for len(rest) >= 16 {
		for j := range a {
			a[j] = binary.LittleEndian.Uint32(rest[4*j:])
		}
		dmRound(6, &a, &h0, &h1)
		rest = rest[16:]
	}
	for j := range a {
		if len(rest) >= 4 {
			a[j] = binary.LittleEndian.Uint32(rest)
			rest = rest[4:]
			continue
		}
		a[j] = pad
		for _, b := range rest {
			a[j] = a[j]<<8 | uint32(int32(int8(b)))
		}
		rest = nil
	}
	dmRound(10, &a, &h0, &h1)
	return h0 ^ h1
}

// dmRound is dm_round: rounds of the TEA-like mixing step over one block.
func dmRound(rounds int, a *[4]uint32, h0, h1 *uint32) {
	const delta = 0x9E3779B9
	b0, b1 := *h0, *h1
	var sum uint32
	for i := 0; i < rounds; i++ {
		sum += delta
		b0 += ((b1 << 4) + a[0]) ^ (b1 + sum) ^ ((b1 >> 5) + a[1])
		b1 += ((b0 << 4) + a[2]) ^ (b0 + sum) ^ ((b0 >> 5) + a[3])
	}
	*h0 += b0
	*h1 += b1
}

// DefaultRsyncHashRegex is cluster.rsync-hash-regex's default: rsync's
// temporary ".name.XXXXXX" hashes as "name", so the rename at the end of
// a transfer does not move the file to another subvolume.
const DefaultRsyncHashRegex = `^\.(.+)\.[^.]+$`

// hasher hashes entry names as dht_hash_compute does: first through the
// extra-hash-regex, then the rsync-hash-regex; when one matches, its
// first group is hashed instead of the whole name.
type hasher struct {
	extra, rsync *regexp.Regexp // nil: not set, or "none"
}

// compileHashRegex compiles a hash-regex option value as POSIX ERE
// (leftmost-longest, as regexec matches); "" and "none" mean no regex.
func compileHashRegex(v string) (*regexp.Regexp, error) {
	if v == "" || v == "none" {
		return nil, nil
	}
	return regexp.CompilePOSIX(v)
}

func (h hasher) hash(name string) uint32 {
	b := []byte(name)
	for _, re := range []*regexp.Regexp{h.extra, h.rsync} {
		if re == nil {
			continue
		}
		if m := re.FindSubmatchIndex(b); m != nil && len(m) >= 4 && m[2] >= 0 {
			return hashName(b[m[2]:m[3]])
		}
	}
	return hashName(b)
}

// HashName is gf_dm_hashfn of name as is (no hash regex): where a name
// lands in a layout, for tools and tests that check placement.
func HashName(name string) uint32 { return hashName([]byte(name)) }

// CheckOptions reports options the layer cannot use (a hash regex that
// does not compile), so a new volfile can be refused before anything
// changes.
func CheckOptions(o Options) error {
	if _, err := compileHashRegex(o.ExtraHashRegex); err != nil {
		return fmt.Errorf("extra-hash-regex %q: %w", o.ExtraHashRegex, err)
	}
	if _, err := compileHashRegex(o.RsyncHashRegex); err != nil {
		return fmt.Errorf("rsync-hash-regex %q: %w", o.RsyncHashRegex, err)
	}
	return nil
}
