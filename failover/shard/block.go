// Package shard is features/shard: a sharded file is its base file, which
// holds block 0, plus /.shard/<base-gfid>.<N> for every further block of
// the block size recorded on the base file; the logical size and block
// count live in the base file's trusted.glusterfs.shard.file-size.
//
// This file is the pure arithmetic and the on-disk encodings, checked
// against the golden vectors of ../shared/reference/gluster-shard.md §8.5
// (captured from GlusterFS 10.3 bricks); shard.go is the layer.
package shard

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"math"
	"strconv"
	"strings"

	"github.com/brickfs/brickfs/brick/xdr"
)

// The shard layer's fixed names and gfids (shard.h SHARD_ROOT_GFID,
// DOT_SHARD_REMOVE_ME_GFID).
var (
	DotShardGFID = xdr.GFID{0xbe, 0x31, 0x86, 0x38, 0xe8, 0xa0, 0x4c, 0x6d, 0x97, 0x7d, 0x7a, 0x93, 0x7a, 0xa8, 0x48, 0x06}
	RemoveMeGFID = xdr.GFID{0x77, 0xdd, 0x5a, 0x45, 0xdb, 0xf5, 0x45, 0x92, 0xb3, 0x1b, 0xb4, 0x40, 0x38, 0x23, 0x02, 0xe9}
)

const (
	// DotShard is the hidden directory under the volume root.
	DotShard = ".shard"
	// RemoveMe, under DotShard, holds a marker per file whose shards
	// are being deleted.
	RemoveMe = ".remove_me"
	// KeyBlockSize is the base file's block size, be64 bytes.
	KeyBlockSize = "trusted.glusterfs.shard.block-size"
	// KeyFileSize is the base file's logical size and block count.
	KeyFileSize = "trusted.glusterfs.shard.file-size"

	// MinBlockSize and MaxBlockSize bound shard-block-size, as glusterd
	// does (4 MiB .. 4 TiB).
	MinBlockSize = 4 << 20
	MaxBlockSize = 4 << 40
	// DefaultBlockSize is shard-block-size's default (64MB).
	DefaultBlockSize = 64 << 20
)

// EncodeBlockSize is the value of KeyBlockSize for bs.
func EncodeBlockSize(bs uint64) []byte { return binary.BigEndian.AppendUint64(nil, bs) }

// ParseBlockSize reads KeyBlockSize. A value outside what glusterd
// allows (4 MiB .. 4 TiB) is an error: the file's layout cannot be
// trusted, and a tiny block size would turn one write into millions of
// shards.
func ParseBlockSize(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%s is %d bytes, not 8", KeyBlockSize, len(b))
	}
	bs := binary.BigEndian.Uint64(b)
	if bs < MinBlockSize || bs > MaxBlockSize {
		return 0, fmt.Errorf("%s is %d, outside what GlusterFS writes", KeyBlockSize, bs)
	}
	return bs, nil
}

// Size is KeyFileSize: be64 size, be64 reserved, be64 blocks (512-byte
// units), be64 reserved. The values are signed on disk (a negative delta
// is an add of its two's complement); reserved fields are kept.
type Size struct {
	Size, Res1, Blocks, Res2 int64
}

// ParseSize reads KeyFileSize.
func ParseSize(b []byte) (Size, error) {
	if len(b) != 32 {
		return Size{}, fmt.Errorf("%s is %d bytes, not 32", KeyFileSize, len(b))
	}
	return Size{
		Size:   int64(binary.BigEndian.Uint64(b[0:])),
		Res1:   int64(binary.BigEndian.Uint64(b[8:])),
		Blocks: int64(binary.BigEndian.Uint64(b[16:])),
		Res2:   int64(binary.BigEndian.Uint64(b[24:])),
	}, nil
}

// Bytes encodes s as KeyFileSize's 32 bytes.
func (s Size) Bytes() []byte {
	b := make([]byte, 0, 32)
	for _, v := range []int64{s.Size, s.Res1, s.Blocks, s.Res2} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	return b
}

// Delta is the ADD_ARRAY64 operand that changes the size by dsize and the
// block count by dblocks (reserved fields get 0 added).
func Delta(dsize, dblocks int64) []byte { return Size{Size: dsize, Blocks: dblocks}.Bytes() }

// Name is the name of block n (n ≥ 1) of the file whose gfid is base,
// within DotShard: the canonical lowercase uuid, a dot, n in decimal.
func Name(base xdr.GFID, n uint64) string { return base.String() + "." + strconv.FormatUint(n, 10) }

// Piece is the part of a byte range that falls in one block.
type Piece struct {
	Block uint64 // 0 is the base file
	Off   uint64 // offset within the block's file
	Len   uint64
	At    uint64 // offset of the piece within the range
}

// ErrRange is a byte range that ends beyond the largest file offset
// (math.MaxInt64), as the kernel bounds them.
var ErrRange = errors.New("the range ends beyond the largest file offset")

// Pieces yields the pieces of [off, off+length) in the blocks of size bs
// it touches, in order, without building them all: a discard of a huge
// range on a sparse file is many blocks. A range that ends beyond
// math.MaxInt64 is ErrRange.
func Pieces(off, length, bs uint64) (iter.Seq[Piece], error) {
	if bs == 0 {
		return nil, errors.New("block size 0")
	}
	if off > math.MaxInt64 || length > math.MaxInt64-off {
		return nil, ErrRange
	}
	return func(yield func(Piece) bool) {
		for at := uint64(0); at < length; {
			pos := off + at
			n := pos / bs
			in := pos - n*bs
			l := min(bs-in, length-at)
			if !yield(Piece{Block: n, Off: in, Len: l, At: at}) {
				return
			}
			at += l
		}
	}, nil
}

// Shrink is how truncating a file from old to new bytes changes its
// blocks: Unlink lists the blocks that go entirely (never block 0), and
// when Trunc is set the block TruncBlock keeps its first TruncTo bytes.
// A new size that is an exact multiple of the block size keeps the last
// kept block whole: GlusterFS 10.3 emptied it (a data-loss bug,
// reference §4.8), this does not.
type Shrink struct {
	Unlink     []uint64
	Trunc      bool
	TruncBlock uint64
	TruncTo    uint64
}

// clamp reads an on-disk size, which is signed and may be negative after
// a native client's miscount (reference §3.3): below zero counts as 0.
func clamp(n int64) uint64 { return uint64(max(n, 0)) }

// PlanShrink plans a truncate from old down to new bytes (new < old, both
// as the file-size xattr holds them). known is the highest block known
// to exist (0 if none beyond what old implies): a block past the recorded
// size, left by a miscount, goes too, or it would come back as data when
// the file grows.
func PlanShrink(old, new int64, known, bs uint64) (Shrink, error) {
	o, n := clamp(old), clamp(new)
	if n >= o || bs == 0 {
		return Shrink{}, errors.New("not a shrink")
	}
	var s Shrink
	last := max((o-1)/bs, known)
	first := uint64(0) // the last block that keeps data
	if n > 0 {
		first = (n - 1) / bs
	}
	for b := first + 1; b <= last; b++ {
		s.Unlink = append(s.Unlink, b)
	}
	switch {
	case n == 0:
		s.Trunc, s.TruncBlock, s.TruncTo = true, 0, 0
	case n%bs != 0:
		s.Trunc, s.TruncBlock, s.TruncTo = true, first, n%bs
	}
	return s, nil
}

// Blocks is how many blocks a file of size bytes (as the file-size xattr
// holds it) spans: the base file counts; an empty or miscounted negative
// size has the base file only.
func Blocks(size int64, bs uint64) uint64 {
	sz := clamp(size)
	if sz == 0 || bs == 0 {
		return 1
	}
	return (sz-1)/bs + 1
}

// ParseBlockSizeOption reads the volfile's shard-block-size as glusterd
// does (gf_string2bytesize_range): leading blanks, a number (with a
// fraction if it has a point, as strtod reads it), then nothing or exactly
// one unit of B, KB, MB, GB, TB, PB in any case, 1024-based; 4MB..4TB.
func ParseBlockSizeOption(v string) (uint64, error) {
	s := strings.TrimLeft(v, " \t\n\r\v\f")
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("shard-block-size %q is not a size", v)
	}
	end := 0
	for end < len(s) && (s[end] == '+' && end == 0 || s[end] == '.' || s[end] >= '0' && s[end] <= '9') {
		end++
	}
	num, unit := s[:end], s[end:]
	mult := 1.0
	switch strings.ToUpper(unit) {
	case "", "B":
	case "KB":
		mult = 1 << 10
	case "MB":
		mult = 1 << 20
	case "GB":
		mult = 1 << 30
	case "TB":
		mult = 1 << 40
	case "PB":
		mult = 1 << 50
	default:
		return 0, fmt.Errorf("shard-block-size %q is not a size (units: B, KB, MB, GB, TB, PB)", v)
	}
	var f float64
	if strings.Contains(num, ".") {
		x, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, fmt.Errorf("shard-block-size %q is not a size", v)
		}
		f = x
	} else {
		x, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("shard-block-size %q is not a size", v)
		}
		f = float64(x)
	}
	bytes := f * mult
	if bytes < MinBlockSize || bytes > MaxBlockSize {
		return 0, fmt.Errorf("shard-block-size %q is outside 4MB..4TB", v)
	}
	return uint64(bytes), nil
}
