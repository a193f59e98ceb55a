package shard

import (
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/brickfs/brickfs/brick/xdr"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// hexOf reads a vector's "be64 be64 be64 be64" notation; "0" is eight
// zero bytes.
func hexOf(t *testing.T, s string) []byte {
	t.Helper()
	var b []byte
	for _, w := range strings.Fields(s) {
		if w == "0" {
			w = "0000000000000000"
		}
		x, err := hex.DecodeString(w)
		if err != nil || len(x) != 8 {
			t.Fatalf("bad vector word %q", w)
		}
		b = append(b, x...)
	}
	return b
}

// The golden vectors of the reference (§8.5): the xattrop operand each
// write or truncate sends, and what the brick then holds.
func TestGoldenDeltas(t *testing.T) {
	for _, v := range []struct {
		name           string
		dsize, dblocks int64
		want           string
		before, after  string // the file-size xattr around it, "" if not given
	}{
		{"3: 100 B at 0, new file", 100, 1, "0000000000000064 0 0000000000000001 0", "", ""},
		{"4: 8 KiB at 4 MiB-4 KiB, size 100", 4*mib + 4096 - 100, 23 + 8, "0000000000400f9c 0 000000000000001f 0",
			"0000000000000064 0 0000000000000001 0", "0000000000401000 0 0000000000000020 0"},
		{"5: O_DIRECT 4 KiB at 13 MiB", 13*mib + 4096 - 0x401000, 16, "0000000000900000 0 0000000000000010 0",
			"0000000000401000 0 0000000000000020 0", "0000000000d01000 0 0000000000000030 0"},
		{"7: ftruncate 0xd01000 to 5 MiB", 5*mib - 0xd01000, -1024 - 16 + (16 - 1040), "ffffffffff7ff000 0 fffffffffffff7f0 0", "", ""},
		{"8: truncate 5 MiB to 20 MiB", 15 * mib, 0, "0000000000f00000 0 0 0",
			"0000000000500000 0 0000000000000028 0", "0000000001400000 0 0000000000000028 0"},
		{"9: fallocate 10 MiB, empty file", 10 * mib, 8192 + 8192 + 4096, "0000000000a00000 0 0000000000005000 0", "", ""},
		{"10: truncate to 0 of a dense 9 MiB file", -9 * mib, -0x4800, "ffffffffff700000 0 ffffffffffffb800 0", "", ""},
		{"12: ftruncate 12 MiB to 8 MiB (correct)", -4 * mib, -8192, "ffffffffffc00000 0 ffffffffffffe000 0", "", ""},
	} {
		got := Delta(v.dsize, v.dblocks)
		if want := hexOf(t, v.want); string(got) != string(want) {
			t.Errorf("%s: operand %x, want %x", v.name, got, want)
		}
		if v.before != "" {
			before, err := ParseSize(hexOf(t, v.before))
			if err != nil {
				t.Fatal(err)
			}
			after := Size{Size: before.Size + v.dsize, Res1: before.Res1, Blocks: before.Blocks + v.dblocks, Res2: before.Res2}
			if want := hexOf(t, v.after); string(after.Bytes()) != string(want) {
				t.Errorf("%s: brick holds %x after it, want %x", v.name, after.Bytes(), want)
			}
		}
	}
	if b := EncodeBlockSize(64 * mib); hex.EncodeToString(b) != "0000000004000000" {
		t.Errorf("64 MiB block size %x", b)
	}
	if b := EncodeBlockSize(4 * mib); hex.EncodeToString(b) != "0000000000400000" {
		t.Errorf("4 MiB block size %x", b)
	}
}

// Where a write's bytes go: the golden vectors' pieces.
func TestGoldenPieces(t *testing.T) {
	for _, v := range []struct {
		name         string
		off, len, bs uint64
		want         []Piece
	}{
		{"3", 0, 100, 4 * mib, []Piece{{0, 0, 100, 0}}},
		{"4: crossing into block 1", 4*mib - 4*kib, 8 * kib, 4 * mib, []Piece{{0, 4190208, 4096, 0}, {1, 0, 4096, 4096}}},
		{"5: inside block 3", 13 * mib, 4 * kib, 4 * mib, []Piece{{3, 1048576, 4096, 0}}},
		{"6: a 64 MiB-block file keeps its block size", 70 * mib, 4 * kib, 64 * mib, []Piece{{1, 6291456, 4096, 0}}},
		{"9: fallocate 10 MiB", 0, 10 * mib, 4 * mib, []Piece{{0, 0, 4 * mib, 0}, {1, 0, 4 * mib, 4 * mib}, {2, 0, 2 * mib, 8 * mib}}},
		{"empty", 5, 0, 4 * mib, nil},
	} {
		seq, err := Pieces(v.off, v.len, v.bs)
		if err != nil {
			t.Fatal(err)
		}
		var got []Piece
		for p := range seq {
			got = append(got, p)
		}
		if !reflect.DeepEqual(got, v.want) {
			t.Errorf("%s: %+v, want %+v", v.name, got, v.want)
		}
	}
	// A range ending past the largest file offset is refused, never
	// wrapped around into block 0.
	for _, r := range [][2]uint64{{1<<64 - 4096, 8192}, {1 << 63, 1}, {1<<63 - 10, 11}} {
		if _, err := Pieces(r[0], r[1], 4*mib); err != ErrRange {
			t.Errorf("range [%d,+%d): %v, want ErrRange", r[0], r[1], err)
		}
	}
	// A huge range is yielded lazily: stopping early costs nothing.
	seq, err := Pieces(0, 1<<62, 4*mib)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range seq {
		if n++; n == 3 {
			break
		}
	}
}

// Truncate plans: the golden vectors, and the block-multiple case where
// GlusterFS 10.3 loses data.
func TestGoldenShrink(t *testing.T) {
	for _, v := range []struct {
		name         string
		old, new, bs uint64
		want         Shrink
	}{
		{"7: 0xd01000 to 5 MiB", 0xd01000, 5 * mib, 4 * mib, Shrink{Unlink: []uint64{2, 3}, Trunc: true, TruncBlock: 1, TruncTo: mib}},
		{"10: 9 MiB to 0", 9 * mib, 0, 4 * mib, Shrink{Unlink: []uint64{1, 2}, Trunc: true, TruncBlock: 0, TruncTo: 0}},
		{"12: 12 MiB to 8 MiB keeps block 1 whole", 12 * mib, 8 * mib, 4 * mib, Shrink{Unlink: []uint64{2}}},
		{"6 MiB to 4 MiB keeps the base whole", 6 * mib, 4 * mib, 4 * mib, Shrink{Unlink: []uint64{1}}},
		{"within block 0", 100, 10, 4 * mib, Shrink{Trunc: true, TruncBlock: 0, TruncTo: 10}},
	} {
		got, err := PlanShrink(int64(v.old), int64(v.new), 0, v.bs)
		if err != nil || !reflect.DeepEqual(got, v.want) {
			t.Errorf("%s: %+v, %v; want %+v", v.name, got, err, v.want)
		}
	}
	if _, err := PlanShrink(5, 5, 0, 4*mib); err == nil {
		t.Error("a truncate to the same size planned as a shrink")
	}
	// Blocks known past the recorded size go too.
	if got, _ := PlanShrink(5*mib, 1*mib, 7, 4*mib); !reflect.DeepEqual(got.Unlink, []uint64{1, 2, 3, 4, 5, 6, 7}) {
		t.Errorf("shrink with block 7 known: unlinks %v", got.Unlink)
	}
	// Vector 11: unlinking a file of 0x1402000 bytes deletes shards 1..5.
	if n := Blocks(0x1402000, 4*mib); n != 6 {
		t.Errorf("blocks of 0x1402000 at 4 MiB: %d, want 6 (base + shards 1..5)", n)
	}
	// A negative recorded size (a native client's miscount, reference
	// §3.3) counts as empty, never as 2^64 - 512 bytes.
	if n := Blocks(-512, 4*mib); n != 1 {
		t.Errorf("blocks of a size of -512: %d, want 1", n)
	}
	if _, err := PlanShrink(-512, 0, 0, 4*mib); err == nil {
		t.Error("a shrink from a negative size planned")
	}
}

func TestNamesAndEncodings(t *testing.T) {
	g, err := xdr.ParseGFID("4a6c67cc-ea5b-4e92-8bc0-78b265fbf85e")
	if err != nil {
		t.Fatal(err)
	}
	if n := Name(g, 1); n != "4a6c67cc-ea5b-4e92-8bc0-78b265fbf85e.1" {
		t.Errorf("shard name %q", n)
	}
	if n := Name(g, 10); !strings.HasSuffix(n, ".10") {
		t.Errorf("shard name %q", n)
	}
	if DotShardGFID.String() != "be318638-e8a0-4c6d-977d-7a937aa84806" || RemoveMeGFID.String() != "77dd5a45-dbf5-4592-b31b-b440382302e9" {
		t.Errorf("fixed gfids %v %v", DotShardGFID, RemoveMeGFID)
	}
	// Reserved fields survive a parse and an encode; odd values are kept.
	in := hexOf(t, "ffffffffffffffff 0000000000000007 0000000000000000 0000000000000009")
	s, err := ParseSize(in)
	if err != nil || s.Size != -1 || s.Res1 != 7 || s.Res2 != 9 || string(s.Bytes()) != string(in) {
		t.Errorf("file-size round trip: %+v %v", s, err)
	}
	if _, err := ParseSize(make([]byte, 31)); err == nil {
		t.Error("a 31-byte file-size parsed")
	}
	for _, bad := range [][]byte{nil, make([]byte, 8), EncodeBlockSize(MaxBlockSize + 1), EncodeBlockSize(1), EncodeBlockSize(MinBlockSize - 1)} {
		if _, err := ParseBlockSize(bad); err == nil {
			t.Errorf("block size %x accepted", bad)
		}
	}
	for v, want := range map[string]uint64{"64MB": 64 * mib, "4MB": 4 * mib, "5MB": 5 * mib, "4194304": 4 * mib, "1GB": 1 << 30,
		"64mb": 64 * mib, "4.5MB": 4*mib + 512*kib, "0.0625GB": 64 * mib, "+64MB": 64 * mib, " 64MB": 64 * mib, "4TB": 4 << 40, "4194304B": 4 * mib} {
		if got, err := ParseBlockSizeOption(v); err != nil || got != want {
			t.Errorf("shard-block-size %q: %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"1MB", "", "x", "0", "5TB", "64M", "64 MB", "-64MB", "64MBs", "1PB"} {
		if _, err := ParseBlockSizeOption(v); err == nil {
			t.Errorf("shard-block-size %q accepted", v)
		}
	}
}

// FuzzPieces: the pieces cover the range exactly, in order, each inside
// one block.
func FuzzPieces(f *testing.F) {
	f.Add(uint64(4*mib-4*kib), uint64(8*kib), uint64(4*mib))
	f.Add(uint64(0), uint64(10*mib), uint64(5*mib))
	f.Fuzz(func(t *testing.T, off, length, bs uint64) {
		bs = bs%(64*mib) + 4096
		length %= 256 * mib
		at := uint64(0)
		seq, err := Pieces(off, length, bs)
		if err != nil {
			if off+length >= off && off+length <= 1<<63-1 {
				t.Fatalf("range [%d,+%d) refused: %v", off, length, err)
			}
			return
		}
		for p := range seq {
			if p.At != at || p.Len == 0 || p.Off+p.Len > bs || p.Block*bs+p.Off != off+at {
				t.Fatalf("piece %+v at %d of [%d,+%d) bs %d", p, at, off, length, bs)
			}
			at += p.Len
		}
		if at != length {
			t.Fatalf("pieces cover %d of %d", at, length)
		}
	})
}
