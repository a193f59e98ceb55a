package shard

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
	"github.com/brickfs/brickfs/failover/afr"
)

func newLayer(t *testing.T, kid fop.Subvolume, bs uint64) *Shard {
	t.Helper()
	s := New("v-shard", kid, Options{BlockSize: bs, DeleteInterval: time.Hour}, zaptest.NewLogger(t))
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// replica3 is a replica set of three in-memory bricks, as the layer
// runs over it in a replica-3 volume.
// replica3 is a replica set of three in-memory bricks. A brick slower
// than its peers is never cut (LagTimeout off): these tests look at every
// brick's copy right after a call returns, and on a loaded machine a cut
// (correct there, and tested in afr) would leave one copy to land later.
func replica3(t *testing.T) (*afr.Replicate, []*foptest.Mem) {
	t.Helper()
	mems := []*foptest.Mem{foptest.NewMem("v-client-0"), foptest.NewMem("v-client-1"), foptest.NewMem("v-client-2")}
	kids := make([]afr.Child, 3)
	for i, m := range mems {
		kids[i] = m
	}
	r, err := afr.NewReplicate("v-replicate-0", kids, []string{"v-client-0", "v-client-1", "v-client-2"}, afr.ReplicateOptions{Arbiter: -1, FopTimeout: 5 * time.Second, PostOpDelay: 10 * time.Millisecond, LagTimeout: -1}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r, mems
}

func gfid() xdr.GFID { return newGFID() }

func create(t *testing.T, s *Shard, name string) (*fop.Fd, xdr.GFID) {
	t.Helper()
	g := gfid()
	f, _, _, err := s.Create(context.Background(), xdr.RootGFID, name, syscall.O_RDWR, syscall.S_IFREG|0o640, 0, g, nil)
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return f, g
}

func write(t *testing.T, s *Shard, f *fop.Fd, off uint64, data []byte) {
	t.Helper()
	if _, _, _, err := s.Write(context.Background(), f, off, data, nil); err != nil {
		t.Fatalf("write %d bytes at %d: %v", len(data), off, err)
	}
}

func read(t *testing.T, s *Shard, f *fop.Fd, off uint64, n uint32) []byte {
	t.Helper()
	b, _, err := s.Read(context.Background(), f, off, n, nil)
	if err != nil {
		t.Fatalf("read %d at %d: %v", n, off, err)
	}
	return b
}

func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// onDisk reads the file-size xattr of g on m.
func onDisk(t *testing.T, m *foptest.Mem, g xdr.GFID) Size {
	t.Helper()
	b, ok := m.Xattr(g, KeyFileSize)
	if !ok {
		t.Fatalf("%s has no %s", g, KeyFileSize)
	}
	sz, err := ParseSize(b)
	if err != nil {
		t.Fatal(err)
	}
	return sz
}

// blockOn returns block n of base on m, or nil.
func blockOn(t *testing.T, m *foptest.Mem, base xdr.GFID, n uint64) []byte {
	t.Helper()
	st, _, err := m.Lookup(context.Background(), DotShardGFID, Name(base, n), xdr.GFID{}, nil)
	if err != nil {
		return nil
	}
	d, _ := m.Data(st.GFID)
	if d == nil {
		d = []byte{}
	}
	return d
}

// Golden vectors 1 and 2: a new file carries its block size and a zero
// file size.
func TestCreateSetsXattrs(t *testing.T) {
	for _, bs := range []uint64{64 * mib, 4 * mib} {
		m := foptest.NewMem("v-client-0")
		s := newLayer(t, m, bs)
		_, g := create(t, s, "f")
		b, _ := m.Xattr(g, KeyBlockSize)
		if got := hex.EncodeToString(b); got != hex.EncodeToString(EncodeBlockSize(bs)) {
			t.Errorf("block size %s", got)
		}
		if b, _ := m.Xattr(g, KeyFileSize); !bytes.Equal(b, make([]byte, 32)) {
			t.Errorf("file size %x", b)
		}
	}
}

// Golden vectors 3 and 4: the size xattr after a small write and after
// a write across the first block boundary; block 1 made in .shard with
// the base file's mode, as root.
func TestWriteAcrossBlocks(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(100, 'a'))
	if got := onDisk(t, m, g); got != (Size{Size: 100, Blocks: 1}) {
		t.Fatalf("after 100 B: %+v", got)
	}
	write(t, s, f, 4*mib-4096, fill(8192, 'b'))
	if got := onDisk(t, m, g); got.Size != 0x401000 {
		t.Fatalf("after the crossing write: %+v, want size 0x401000", got)
	}
	base, _ := m.Data(g)
	if len(base) != 4*mib {
		t.Errorf("base file is %d bytes, want the whole first block", len(base))
	}
	b1 := blockOn(t, m, g, 1)
	if !bytes.Equal(b1, fill(4096, 'b')) {
		t.Errorf("block 1 holds %d bytes", len(b1))
	}
	st, _, err := m.Lookup(context.Background(), DotShardGFID, Name(g, 1), xdr.GFID{}, nil)
	if err != nil || st.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("block 1: mode %o, %v", st.Mode, err)
	}
	if _, ok := m.Xattr(st.GFID, KeyBlockSize); ok {
		t.Error("a block file carries the block size xattr")
	}
	// Through the layer: the logical size; the data reads back.
	lst, _, err := s.Lookup(context.Background(), xdr.RootGFID, "f", xdr.GFID{}, nil)
	if err != nil || lst.Size != 0x401000 {
		t.Fatalf("lookup size %d, %v", lst.Size, err)
	}
	got := read(t, s, f, 4*mib-4096, 8192)
	if !bytes.Equal(got, fill(8192, 'b')) {
		t.Error("the crossing write reads back wrong")
	}
}

// Reads: holes, missing and short blocks read as zeros up to the logical
// size; nothing past it.
func TestReadHolesAndEOF(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, _ := create(t, s, "f")
	write(t, s, f, 13*mib, fill(4096, 'z')) // block 3 only
	got := read(t, s, f, 0, 1<<20)
	if len(got) != 1<<20 || !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Errorf("a hole in the base file read %d bytes, not all zero", len(got))
	}
	got = read(t, s, f, 8*mib-10, 20) // blocks 1 and 2 do not exist
	if !bytes.Equal(got, make([]byte, 20)) {
		t.Errorf("missing blocks read %x", got)
	}
	got = read(t, s, f, 13*mib-4096, 64<<10)
	want := append(make([]byte, 4096), fill(4096, 'z')...)
	if !bytes.Equal(got, want) {
		t.Errorf("read at the end got %d bytes, want %d", len(got), len(want))
	}
	if got := read(t, s, f, 14*mib, 4096); len(got) != 0 {
		t.Errorf("read past EOF got %d bytes", len(got))
	}
}

// A write that spans three blocks, with a random pattern, reads back
// whole through the layer and lands at the right offsets in each block.
func TestWriteSpanningBlocks(t *testing.T) {
	r, mems := replica3(t)
	s := newLayer(t, r, 4*mib)
	f, g := create(t, s, "img")
	data := make([]byte, 9*mib)
	_, _ = rand.Read(data)
	write(t, s, f, 2*mib, data)
	if got := read(t, s, f, 2*mib, uint32(len(data))); !bytes.Equal(got, data) {
		t.Fatal("the data reads back wrong")
	}
	for _, m := range mems {
		if got := onDisk(t, m, g); got.Size != 11*mib {
			t.Errorf("%s: size %d", m.Name(), got.Size)
		}
		base, _ := m.Data(g)
		if !bytes.Equal(base[2*mib:], data[:2*mib]) {
			t.Errorf("%s: base file wrong", m.Name())
		}
		if !bytes.Equal(blockOn(t, m, g, 1), data[2*mib:6*mib]) || !bytes.Equal(blockOn(t, m, g, 2), data[6*mib:]) {
			t.Errorf("%s: blocks wrong", m.Name())
		}
	}
	// Every replica has block 1 with one gfid.
	var g1 xdr.GFID
	for i, m := range mems {
		st, _, err := m.Lookup(context.Background(), DotShardGFID, Name(g, 1), xdr.GFID{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			g1 = st.GFID
		} else if st.GFID != g1 {
			t.Errorf("block 1 has gfid %s on %s, %s on the first brick", st.GFID, m.Name(), g1)
		}
	}
}

// Golden vector 12 and the native bug it fixes: truncating to an exact
// multiple of the block size keeps the last kept block whole.
func TestTruncateToBlockMultipleKeepsData(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	data := make([]byte, 12*mib)
	_, _ = rand.Read(data)
	write(t, s, f, 0, data)
	if _, _, _, err := s.Ftruncate(context.Background(), f, 8*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got.Size != 8*mib || got.Blocks != 8*mib/512 {
		t.Errorf("size after truncate %+v", got)
	}
	if blockOn(t, m, g, 2) != nil {
		t.Error("block 2 survived the truncate")
	}
	if got := read(t, s, f, 0, 8*mib); !bytes.Equal(got, data[:8*mib]) {
		t.Error("data below the new size changed (native 10.3 empties the last kept block)")
	}
	// 6 MiB -> 4 MiB keeps the base file.
	if _, _, _, err := s.Ftruncate(context.Background(), f, 4*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, f, 0, 4*mib); !bytes.Equal(got, data[:4*mib]) {
		t.Error("truncating to the first block's end changed the base file")
	}
}

// Golden vector 7's shape: a truncate into the middle of a block unlinks
// the blocks past it and truncates that block; vector 8: growing only
// changes the size; vector 10: truncate to 0.
func TestTruncate(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(13*mib+4096, 'x'))
	_, st, _, err := s.Truncate(context.Background(), g, 5*mib, nil)
	if err != nil || st.Size != 5*mib {
		t.Fatalf("truncate: %d, %v", st.Size, err)
	}
	if b := blockOn(t, m, g, 1); len(b) != 1*mib {
		t.Errorf("block 1 is %d bytes, want 1 MiB", len(b))
	}
	if blockOn(t, m, g, 2) != nil || blockOn(t, m, g, 3) != nil {
		t.Error("blocks past the new size survived")
	}
	if got := onDisk(t, m, g); got != (Size{Size: 5 * mib, Blocks: 5 * mib / 512}) {
		t.Errorf("after the shrink %+v", got)
	}
	if _, _, _, err := s.Truncate(context.Background(), g, 20*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got != (Size{Size: 20 * mib, Blocks: 5 * mib / 512}) {
		t.Errorf("after growing %+v", got)
	}
	if blockOn(t, m, g, 2) != nil {
		t.Error("growing made a block")
	}
	if got := read(t, s, f, 5*mib-1, 2); !bytes.Equal(got, []byte{'x', 0}) {
		t.Errorf("around the old end: %q", got)
	}
	if _, _, _, err := s.Ftruncate(context.Background(), f, 0, nil); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got != (Size{}) {
		t.Errorf("after truncate to 0 %+v", got)
	}
	if base, _ := m.Data(g); len(base) != 0 || blockOn(t, m, g, 1) != nil {
		t.Error("truncate to 0 left data")
	}
}

// Opening with O_TRUNC empties every block, never just the base file.
func TestOpenTrunc(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(6*mib, 'q'))
	_ = s.Release(context.Background(), f)
	f2, _, err := s.Open(context.Background(), g, syscall.O_WRONLY|syscall.O_TRUNC, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Release(context.Background(), f2)
	if got := onDisk(t, m, g); got.Size != 0 {
		t.Errorf("size after O_TRUNC %+v", got)
	}
	if blockOn(t, m, g, 1) != nil {
		t.Error("block 1 survived O_TRUNC")
	}
}

// Golden vector 13, done right: two clients with stale caches extending
// one file leave its size at the end of the data (native: 0x7000).
func TestTwoClientsExtendingKeepTheSize(t *testing.T) {
	r, mems := replica3(t)
	a := newLayer(t, r, 4*mib)
	b := newLayer(t, r, 4*mib)
	fa, g := create(t, a, "f")
	fb, _, err := b.Open(context.Background(), g, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Alternate, each with the cache of its own last write.
	write(t, a, fa, 0, fill(4096, 1))
	write(t, b, fb, 4096, fill(4096, 2))
	write(t, a, fa, 8192, fill(4096, 3))
	write(t, b, fb, 12288, fill(4096, 4))
	if got := onDisk(t, mems[0], g); got.Size != 0x4000 {
		t.Errorf("size %#x, want 0x4000", got.Size)
	}
	// Concurrent extension across blocks.
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, f := a, fa
			if i%2 == 1 {
				l, f = b, fb
			}
			write(t, l, f, uint64(i+1)*4*mib+uint64(i)*4096, fill(4096, byte(i)))
		}()
	}
	wg.Wait()
	if got := onDisk(t, mems[0], g); got.Size != 8*4*mib+7*4096+4096 {
		t.Errorf("size %#x after concurrent extension, want %#x", got.Size, 8*4*mib+8*4096)
	}
}

// A failed piece fails the write and leaves the size alone (data before
// size, reference trap 4 and 7).
func TestFailedPieceNoSizeUpdate(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(100, 'a'))
	m.Refuse("MKNOD", syscall.ENOSPC)
	_, _, _, err := s.Write(context.Background(), f, 4*mib-100, fill(200, 'b'), nil)
	if fop.Errno(err) != syscall.ENOSPC {
		t.Fatalf("write into a block that cannot be made: %v", err)
	}
	if got := onDisk(t, m, g); got.Size != 100 {
		t.Errorf("size %d after a failed write", got.Size)
	}
}

// Concurrent writes of one client into fresh blocks make each block
// once and count the size once.
func TestConcurrentWritesOneClient(t *testing.T) {
	r, mems := replica3(t)
	s := newLayer(t, r, 4*mib)
	f, g := create(t, s, "f")
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			write(t, s, f, uint64(i)*1*mib, fill(1*mib, byte(i+1)))
		}()
	}
	wg.Wait()
	if got := onDisk(t, mems[1], g); got.Size != 16*mib {
		t.Errorf("size %d", got.Size)
	}
	for i := 0; i < 16; i++ {
		if got := read(t, s, f, uint64(i)*mib, 1); got[0] != byte(i+1) {
			t.Errorf("MiB %d reads %d", i, got[0])
		}
	}
}

// fsync reaches the base file and every block written since the last
// one, and only those.
func TestFsyncDirtyBlocks(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, _ := create(t, s, "f")
	for _, off := range []uint64{0, 4 * mib, 8 * mib, 20 * mib} {
		write(t, s, f, off, fill(4096, 'd'))
	}
	before := m.Calls("FSYNC")
	if _, err := s.Fsync(context.Background(), f, false, nil); err != nil {
		t.Fatal(err)
	}
	if n := m.Calls("FSYNC") - before; n != 4 {
		t.Errorf("fsync sent %d FSYNCs, want 4 (base + blocks 1, 2, 5)", n)
	}
	before = m.Calls("FSYNC")
	if _, err := s.Fsync(context.Background(), f, true, nil); err != nil {
		t.Fatal(err)
	}
	if n := m.Calls("FSYNC") - before; n != 1 {
		t.Errorf("the second fsync sent %d FSYNCs, want 1", n)
	}
}

// Fallocate allocates every block (golden vector 9's shape); zerofill
// really zeroes; discard leaves the size.
func TestFallocateZerofillDiscard(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	if _, _, _, err := s.Fallocate(context.Background(), f, 0, 0, 10*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got.Size != 10*mib || got.Blocks != 10*mib/512 {
		t.Errorf("after fallocate %+v", got)
	}
	if len(blockOn(t, m, g, 2)) != 2*mib {
		t.Error("fallocate did not make block 2")
	}
	write(t, s, f, 0, fill(10*mib, 'x'))
	if _, _, _, err := s.Zerofill(context.Background(), f, 3*mib, 2*mib, nil); err != nil {
		t.Fatal(err)
	}
	got := read(t, s, f, 3*mib-1, 2*mib+2)
	want := append(append([]byte{'x'}, make([]byte, 2*mib)...), 'x')
	if !bytes.Equal(got, want) {
		t.Error("zerofill did not zero the range")
	}
	if _, _, _, err := s.Discard(context.Background(), f, 8*mib, 4*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got.Size != 10*mib {
		t.Errorf("discard changed the size: %+v", got)
	}
	if _, _, _, err := s.Fallocate(context.Background(), f, 0x20, 0, 1, nil); fop.Errno(err) != syscall.EOPNOTSUPP {
		t.Errorf("fallocate with an unknown mode: %v", err)
	}
	// KEEP_SIZE allocates without growing.
	if _, _, _, err := s.Fallocate(context.Background(), f, fop.FallocKeepSize, 10*mib, 4*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got.Size != 10*mib {
		t.Errorf("KEEP_SIZE grew the file: %+v", got)
	}
	// ZERO_RANGE|KEEP_SIZE as the filesystem carries it out.
	if err := fop.ZeroKeepSize(context.Background(), s, f, 9*mib, 4*mib); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, f, 9*mib, 1*mib); !bytes.Equal(got, make([]byte, 1*mib)) {
		t.Error("zero-range keep-size did not zero")
	}
	if got := onDisk(t, m, g); got.Size != 10*mib {
		t.Errorf("zero-range keep-size grew the file: %+v", got)
	}
}

// SEEK_DATA and SEEK_HOLE see the blocks: missing ones are holes, the
// end is a hole.
func TestSeek(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, _ := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	write(t, s, f, 9*mib, fill(4096, 'b')) // block 2 at 1 MiB; block 1 missing
	write(t, s, f, 12*mib, fill(4*mib, 'c'))
	ctx := context.Background()
	for _, tc := range []struct {
		off  uint64
		what int32
		want uint64
	}{
		{0, fop.SeekData, 0},
		{0, fop.SeekHole, 4096},
		{4096, fop.SeekData, 8 * mib}, // Mem keeps no holes in a file: block 2 is data from 0
		{5 * mib, fop.SeekHole, 5 * mib},
		{9 * mib, fop.SeekHole, 9*mib + 4096},
		{12 * mib, fop.SeekHole, 16 * mib},
	} {
		got, _, err := s.Seek(ctx, f, tc.off, tc.what, nil)
		if err != nil || got != tc.want {
			t.Errorf("seek %d from %d: %d, %v; want %d", tc.what, tc.off, got, err, tc.want)
		}
	}
	if _, _, err := s.Seek(ctx, f, 16*mib, fop.SeekData, nil); fop.Errno(err) != syscall.ENXIO {
		t.Errorf("seek at EOF: %v", err)
	}
}

// The hidden namespace (reference §4.14).
func TestHiddenNamespace(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 4*mib, []byte("x")) // makes .shard
	ctx := context.Background()
	if _, _, err := s.Lookup(ctx, xdr.RootGFID, DotShard, xdr.GFID{}, nil); fop.Errno(err) != syscall.EPERM {
		t.Errorf("lookup /.shard: %v", err)
	}
	if _, _, err := s.Mkdir(ctx, xdr.RootGFID, DotShard, 0o755, 0, gfid(), nil); fop.Errno(err) != syscall.EPERM {
		t.Errorf("mkdir /.shard: %v", err)
	}
	if _, _, err := s.Lookup(ctx, DotShardGFID, Name(g, 1), xdr.GFID{}, nil); fop.Errno(err) != syscall.EPERM {
		t.Errorf("lookup in .shard: %v", err)
	}
	d, _, err := s.Opendir(ctx, xdr.RootGFID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ents, _, _, err := s.Readdirp(ctx, d, 0, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
		if e.Name == "f" && e.Stat.Size != 4*mib+1 {
			t.Errorf("readdirp shows f at %d bytes", e.Stat.Size)
		}
	}
	if strings.Contains(strings.Join(names, " "), DotShard) {
		t.Errorf("root listing shows .shard: %v", names)
	}
	if _, _, err := s.Getxattr(ctx, g, KeyFileSize, nil); fop.Errno(err) != syscall.ENODATA {
		t.Errorf("getxattr of the file size: %v", err)
	}
	all, _, err := s.Getxattr(ctx, g, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		if strings.HasPrefix(p.Key, keyPrefix) {
			t.Errorf("listxattr shows %s", p.Key)
		}
	}
	if _, err := s.Setxattr(ctx, g, xdr.Dict{{Key: KeyBlockSize, Value: xdr.Ptr(EncodeBlockSize(8 * mib))}}, 0, nil); fop.Errno(err) != syscall.EPERM {
		t.Errorf("setxattr of the block size: %v", err)
	}
	if _, err := s.Removexattr(ctx, g, KeyBlockSize, nil); fop.Errno(err) != syscall.EPERM {
		t.Errorf("removexattr of the block size: %v", err)
	}
}

// A file without the block-size xattr (made while sharding was off)
// passes through: its bytes stay in the base file.
func TestUnshardedPassesThrough(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	g := gfid()
	f0, _, _, err := m.Create(context.Background(), xdr.RootGFID, "plain", syscall.O_RDWR, syscall.S_IFREG|0o644, 0, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Release(context.Background(), f0)
	s := newLayer(t, m, 4*mib)
	st, _, err := s.Lookup(context.Background(), xdr.RootGFID, "plain", xdr.GFID{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := s.Open(context.Background(), st.GFID, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	write(t, s, f, 12*mib, []byte("tail"))
	if d, _ := m.Data(g); len(d) != 12*mib+4 {
		t.Errorf("the base file is %d bytes; an unsharded file must hold all its data", len(d))
	}
	if _, ok := m.Xattr(g, KeyFileSize); ok {
		t.Error("the layer sharded an unsharded file")
	}
}

// Golden vector 11 and §4.11: unlink leaves a marker with the size, the
// background deletion removes the blocks and the marker; a file still
// open elsewhere keeps its blocks until it is closed.
func TestUnlinkDeletesBlocks(t *testing.T) {
	r, mems := replica3(t)
	s := newLayer(t, r, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(20*mib+8192, 'u'))
	_ = s.Release(context.Background(), f)
	// Hold the marker's entry lock so the deletion cannot run yet.
	hold := owned(context.Background())
	if err := s.ensureDir(context.Background(), dirRemoveMe); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Entrylk(hold, RemoveMeGFID, g.String(), s.name, fop.EntrylkLock, fop.LkWrite, nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fop.ErrOnly(s.Unlink(context.Background(), xdr.RootGFID, "f", nil)) }()
	// The unlink waits on the marker lock; release it after checking.
	select {
	case err := <-done:
		t.Fatalf("unlink did not wait for the marker lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := r.Entrylk(hold, RemoveMeGFID, g.String(), s.name, fop.EntrylkUnlock, fop.LkWrite, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the blocks and marker to go", func() bool {
		for _, m := range mems {
			for n := uint64(1); n <= 5; n++ {
				if blockOn(t, m, g, n) != nil {
					return false
				}
			}
			if len(m.Names(RemoveMeGFID)) != 0 {
				return false
			}
		}
		return true
	})
}

// The marker keeps the size and block size (reference §2.5) and the
// deletion skips a file still open somewhere.
func TestDeletionSkipsOpenFiles(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(9*mib, 'o'))
	// Another client has it open: a brick fd the layer does not own.
	other, _, err := m.Open(context.Background(), g, syscall.O_RDONLY, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Release(context.Background(), f)
	if _, err := s.Unlink(context.Background(), xdr.RootGFID, "f", nil); err != nil {
		t.Fatal(err)
	}
	st, rx, err := m.Lookup(context.Background(), RemoveMeGFID, g.String(), xdr.GFID{}, sizeKeys)
	if err != nil {
		t.Fatalf("no marker: %v", err)
	}
	if st.Mode&0o777 != 0 {
		t.Errorf("marker mode %o", st.Mode)
	}
	fs, _ := rx.Bytes(KeyFileSize)
	if sz, _ := ParseSize(fs); sz.Size != 9*mib {
		t.Errorf("marker size %d", sz.Size)
	}
	if err := s.deleteMarked(context.Background()); err != nil {
		t.Fatal(err)
	}
	if blockOn(t, m, g, 2) == nil {
		t.Fatal("the deletion removed the blocks of a file still open")
	}
	if st := s.Stats(); st.RemoveBacklog != 1 || st.BlockSize != 4*mib {
		t.Errorf("a marker left for an open file: backlog %d, block size %d", st.RemoveBacklog, st.BlockSize)
	}
	_ = m.Release(context.Background(), other)
	// The unlink's own background run may hold the marker's lock now
	// (a run that finds it taken skips it): kick until it is done.
	waitFor(t, "the blocks and the marker to go once the file is closed", func() bool {
		s.kickDeletion()
		return blockOn(t, m, g, 1) == nil && blockOn(t, m, g, 2) == nil && len(m.Names(RemoveMeGFID)) == 0
	})
	waitFor(t, "the backlog to drain", func() bool { return s.Stats().RemoveBacklog == 0 })
}

// A second name keeps the blocks; renaming over a sharded file removes
// it as unlink does.
func TestLinksAndRenameOver(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	ctx := context.Background()
	f, g := create(t, s, "a")
	write(t, s, f, 0, fill(6*mib, 'a'))
	_ = s.Release(ctx, f)
	st, _, err := s.Link(ctx, g, xdr.RootGFID, "a2", nil)
	if err != nil || st.Size != 6*mib {
		t.Fatalf("link: size %d, %v", st.Size, err)
	}
	if _, err := s.Unlink(ctx, xdr.RootGFID, "a", nil); err != nil {
		t.Fatal(err)
	}
	if len(m.Names(RemoveMeGFID)) != 0 || blockOn(t, m, g, 1) == nil {
		t.Fatal("unlinking one of two names marked the file")
	}
	f2, g2 := create(t, s, "b")
	write(t, s, f2, 0, fill(5*mib, 'b'))
	_ = s.Release(ctx, f2)
	st, _, err = s.Rename(ctx, xdr.RootGFID, "b", xdr.RootGFID, "a2", nil)
	if err != nil || st.Size != 5*mib {
		t.Fatalf("rename: size %d, %v", st.Size, err)
	}
	waitFor(t, "the replaced file's blocks to go", func() bool {
		s.kickDeletion()
		return blockOn(t, m, g, 1) == nil
	})
	if blockOn(t, m, g2, 1) == nil {
		t.Error("the renamed file lost its blocks")
	}
}

// Markers left by others are cleaned; one whose base file still exists
// only loses the marker.
func TestDeletionOfForeignMarkers(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	ctx := context.Background()
	f, g := create(t, s, "keep")
	write(t, s, f, 0, fill(5*mib, 'k'))
	_ = s.Release(ctx, f)
	gone := gfid()
	if err := s.ensureDir(ctx, dirRemoveMe); err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); n <= 3; n++ {
		if _, _, err := m.Mknod(ctx, DotShardGFID, Name(gone, n), syscall.S_IFREG|0o644, 0, 0, gfid(), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.mark(ctx, gone, 4*mib, 16*mib); err != nil {
		t.Fatal(err)
	}
	if err := s.mark(ctx, g, 4*mib, 5*mib); err != nil {
		t.Fatal(err)
	}
	// A second mark of the same file replaces the size (GET_AND_SET).
	if err := s.mark(ctx, gone, 4*mib, 16*mib); err != nil {
		t.Fatal(err)
	}
	if err := s.deleteMarked(ctx); err != nil {
		t.Fatal(err)
	}
	for n := uint64(1); n <= 3; n++ {
		if blockOn(t, m, gone, n) != nil {
			t.Errorf("block %d of the removed file survived", n)
		}
	}
	if blockOn(t, m, g, 1) == nil {
		t.Error("a marker of an existing file deleted its blocks")
	}
	if names := m.Names(RemoveMeGFID); len(names) != 0 {
		t.Errorf("markers left: %v", names)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A brick down during writes: the replica set keeps serving; the blocks
// and the size xattr are what the others hold once it is back and
// healed by the replica set.
func TestWritesWithABrickDown(t *testing.T) {
	r, mems := replica3(t)
	s := newLayer(t, r, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	mems[2].SetDown(true)
	data := make([]byte, 10*mib)
	_, _ = rand.Read(data)
	write(t, s, f, 1*mib, data)
	if got := read(t, s, f, 1*mib, uint32(len(data))); !bytes.Equal(got, data) {
		t.Fatal("reads with a brick down are wrong")
	}
	for _, m := range mems[:2] {
		if got := onDisk(t, m, g); got.Size != 11*mib {
			t.Errorf("%s: size %d", m.Name(), got.Size)
		}
	}
	afrKey := "trusted.afr.v-client-2"
	if b, ok := mems[0].Xattr(g, afrKey); !ok || bytes.Equal(b, make([]byte, 12)) {
		t.Errorf("the base file does not accuse the down brick: %x", b)
	}
}

// Errors of a block reach the caller with their errno.
func TestPieceErrno(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, _ := create(t, s, "f")
	write(t, s, f, 4*mib, []byte("x"))
	m.Refuse("READ", syscall.EIO)
	if _, _, err := s.Read(context.Background(), f, 4*mib-1, 2, nil); fop.Errno(err) != syscall.EIO {
		t.Errorf("read: %v", err)
	}
}

// TestShardIntercepts lists, for every fop of the table, whether the
// shard layer takes it over or passes it through, checked against the
// methods its source defines on *Shard. A new fop fails here until
// someone decides.
func TestShardIntercepts(t *testing.T) {
	intercepts := map[string]bool{
		"Lookup": true, "Stat": true, "Fstat": true, "Readdirp": true, "Setattr": true, "Fsetattr": true,
		"Create": true, "Mknod": true, "Mkdir": true, "Symlink": true, "Link": true, "Unlink": true, "Rmdir": true,
		"Rename": true, "Open": true, "Opendir": true, "Release": true, "Read": true, "Write": true,
		"Fallocate": true, "Discard": true, "Zerofill": true, "Fsync": true, "Seek": true, "Truncate": true,
		"Ftruncate": true, "Getxattr": true, "Setxattr": true, "Removexattr": true, "CopyFileRange": true,
	}
	// Passed: they act on the base file alone (FLUSH goes to the base
	// only, as native), or are a parent's locks and xattrops.
	passes := []string{"Access", "Readlink", "Xattrop", "Statfs", "Inodelk", "Finodelk", "Entrylk", "Flush",
		"Fsyncdir", "Lk", "Fxattrop"}
	foptest.CheckIntercepts(t, ".", "Shard", intercepts, passes)
}

// directMem refuses O_DIRECT reads and writes whose offset or length is
// not 512-aligned, as a brick's filesystem does (EINVAL).
type directMem struct{ *foptest.Mem }

func unaligned(f *fop.Fd, off, n uint64) bool {
	return f.Flags&syscall.O_DIRECT != 0 && (off%512 != 0 || n%512 != 0)
}

func (d directMem) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	if unaligned(f, off, uint64(size)) {
		return nil, nil, &fop.OpError{Brick: d.Name(), Fop: "READ", Errno: syscall.EINVAL}
	}
	return d.Mem.Read(ctx, f, off, size, xd)
}

func (d directMem) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if unaligned(f, off, uint64(len(data))) {
		return pre, post, nil, &fop.OpError{Brick: d.Name(), Fop: "WRITE", Errno: syscall.EINVAL}
	}
	return d.Mem.Write(ctx, f, off, data, xd)
}

// O_DIRECT reads at the end of a file keep the caller's aligned length
// toward the bricks (qemu reading a qcow2 L1 table past a small file's
// end got EINVAL when the layer clipped the request), in the base file
// and in the other blocks.
func TestDirectReadAtEOF(t *testing.T) {
	m := directMem{foptest.NewMem("v-client-0")}
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	write(t, s, f, 4*mib, fill(4096, 'b'))
	_ = s.Release(context.Background(), f)
	if _, _, _, err := s.Truncate(context.Background(), g, 4*mib+1000, nil); err != nil {
		t.Fatal(err)
	}
	df, _, err := s.Open(context.Background(), g, syscall.O_RDWR|syscall.O_DIRECT, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Read(context.Background(), df, 0, 64<<10, nil)
	if err != nil || !bytes.Equal(got, append(fill(4096, 'a'), make([]byte, 60<<10)...)) {
		t.Errorf("O_DIRECT read in block 0: %d bytes, %v", len(got), err)
	}
	got, _, err = s.Read(context.Background(), df, 4*mib, 64<<10, nil)
	if err != nil || !bytes.Equal(got, fill(1000, 'b')) {
		t.Errorf("O_DIRECT read at the end: %d bytes, %v", len(got), err)
	}
	got, _, err = s.Read(context.Background(), df, 4*mib-4096, 8192, nil)
	if err != nil || !bytes.Equal(got, append(make([]byte, 4096), fill(1000, 'b')...)) {
		t.Errorf("O_DIRECT read across the boundary: %d bytes, %v", len(got), err)
	}
}

// A block another client deleted is made again rather than written
// while unlinked through the fd this client kept for it (the write's
// attributes show nlink 0), and reads never see the old block.
func TestBlockDeletedElsewhere(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	a := newLayer(t, m, 4*mib)
	b := newLayer(t, m, 4*mib)
	f, g := create(t, a, "f")
	write(t, a, f, 4*mib, fill(4096, 1))
	if n := m.Calls("OPEN"); n != 1 {
		t.Errorf("%d OPENs for one written block, want 1 (kept for later changes)", n)
	}
	write(t, a, f, 4*mib+4096, fill(4096, 1))
	if n := m.Calls("OPEN"); n != 1 {
		t.Errorf("%d OPENs after a second write to the block, want it kept", n)
	}
	// Another client truncates the file away and writes again.
	if _, _, _, err := b.Truncate(context.Background(), g, 0, nil); err != nil {
		t.Fatal(err)
	}
	if blockOn(t, m, g, 1) != nil {
		t.Fatal("the truncate left block 1")
	}
	write(t, a, f, 4*mib, fill(4096, 2))
	if got := blockOn(t, m, g, 1); !bytes.Equal(got, fill(4096, 2)) {
		t.Errorf("the write after another client's truncate went nowhere: block 1 holds %d bytes", len(got))
	}
	bf, _, err := b.Open(context.Background(), g, syscall.O_RDONLY, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, b, bf, 4*mib, 4096); !bytes.Equal(got, fill(4096, 2)) {
		t.Error("the other client does not read the new data")
	}
}

// A brick back from an outage, not yet healed, holds an old file size;
// lookups take the size from a brick with good metadata.
func TestLookupSizeAfterOutage(t *testing.T) {
	r, mems := replica3(t)
	s := newLayer(t, r, 4*mib)
	f, _ := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	mems[0].SetDown(true)
	write(t, s, f, 8*mib, fill(4096, 'b'))
	_ = s.Release(context.Background(), f)
	mems[0].SetDown(false)
	waitFor(t, "brick 0 to be up again", func() bool {
		for _, u := range r.ChildrenUp() {
			if !u {
				return false
			}
		}
		return true
	})
	fresh := newLayer(t, r, 4*mib)
	st, _, err := fresh.Lookup(context.Background(), xdr.RootGFID, "f", xdr.GFID{}, nil)
	if err != nil || st.Size != 8*mib+4096 {
		t.Errorf("lookup after the outage: size %d, %v; want %d", st.Size, err, 8*mib+4096)
	}
}

// A stat answered after this client grew the file, but sent before,
// does not shrink the size the client knows.
func TestLateReplyKeepsSize(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	before := m.Calls("STAT")
	release := m.Hang("STAT")
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = s.Stat(context.Background(), g, nil)
	}()
	waitFor(t, "the stat to hang", func() bool { return m.Calls("STAT") > before })
	write(t, s, f, 4096, fill(8192, 'b'))
	release()
	<-done
	if got := read(t, s, f, 0, 16384); len(got) != 12288 {
		t.Errorf("read %d bytes after a late stat reply; want 12288", len(got))
	}
}

// A truncate waits for a write in flight on the same file: the write's
// block is not removed under it, nor the size grown back after.
func TestTruncateWaitsForWrites(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	before := m.Calls("WRITE")
	release := m.Hang("WRITE")
	wdone := make(chan error, 1)
	go func() { wdone <- fop.ErrOnlyPrePost(s.Write(context.Background(), f, 12*mib, fill(4096, 'w'), nil)) }()
	waitFor(t, "the write to hang", func() bool { return m.Calls("WRITE") > before })
	tdone := make(chan error, 1)
	go func() { tdone <- fop.ErrOnlyPrePost(s.Ftruncate(context.Background(), f, 4096, nil)) }()
	select {
	case err := <-tdone:
		t.Fatalf("the truncate ran while a write was in flight: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := <-wdone; err != nil {
		t.Fatal(err)
	}
	if err := <-tdone; err != nil {
		t.Fatal(err)
	}
	if got := onDisk(t, m, g); got.Size != 4096 {
		t.Errorf("size %d after the truncate, want 4096", got.Size)
	}
	if blockOn(t, m, g, 3) != nil {
		t.Error("the written block survived the truncate that came after it")
	}
}

// fallocate(KEEP_SIZE) never makes blocks past the end (no client's
// deletion would find them).
func TestKeepSizePastEOF(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	if _, _, _, err := s.Fallocate(context.Background(), f, fop.FallocKeepSize, 0, 12*mib, nil); err != nil {
		t.Fatal(err)
	}
	if blockOn(t, m, g, 1) != nil || blockOn(t, m, g, 2) != nil {
		t.Error("KEEP_SIZE made blocks past the end")
	}
	if got := onDisk(t, m, g); got.Size != 4096 {
		t.Errorf("size %d", got.Size)
	}
}

// ZERO_RANGE|KEEP_SIZE zeroes the blocks too, never only the base file.
func TestZerofillKeepSize(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(9*mib, 'z'))
	if err := s.ZerofillKeepSize(context.Background(), f, 3*mib, 8*mib); err != nil {
		t.Fatal(err)
	}
	want := append(fill(3*mib, 'z'), make([]byte, 6*mib)...)
	if got := read(t, s, f, 0, 9*mib); !bytes.Equal(got, want) {
		t.Error("ZERO_RANGE|KEEP_SIZE did not zero every block")
	}
	if base, _ := m.Data(g); len(base) != 4*mib {
		t.Errorf("the base file is %d bytes", len(base))
	}
	if got := onDisk(t, m, g); got.Size != 9*mib {
		t.Errorf("size %d", got.Size)
	}
}

// Attributes from a setattr carry the logical size even when the layer
// has not seen the file yet.
func TestSetattrUnknownInode(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(6*mib, 's'))
	fresh := newLayer(t, m, 4*mib)
	_, post, _, err := fresh.Setattr(context.Background(), g, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil)
	if err != nil || post.Size != 6*mib {
		t.Errorf("setattr: size %d, %v", post.Size, err)
	}
}

// Growing a file over bytes a failed write left past its end shows
// zeros there.
func TestGrowOverFailedWrite(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	m.Refuse("FXATTROP", syscall.EIO)
	if _, _, _, err := s.Write(context.Background(), f, 4096, fill(4096, 'x'), nil); err == nil {
		t.Fatal("the write succeeded without its size update")
	}
	if _, _, _, err := s.Write(context.Background(), f, 5*mib, fill(4096, 'y'), nil); err == nil {
		t.Fatal("the write succeeded without its size update")
	}
	m.Refuse("FXATTROP", 0)
	if _, _, _, err := s.Truncate(context.Background(), g, 8*mib, nil); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, f, 4096, 8*mib-4096); !bytes.Equal(got, make([]byte, 8*mib-4096)) {
		t.Error("growing the file exposed bytes of writes that failed")
	}
}

// A block size xattr that cannot be right fails the file's I/O (EIO)
// rather than passing it through as unsharded.
func TestBadBlockSize(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	g := gfid()
	f0, _, _, err := m.Create(context.Background(), xdr.RootGFID, "bad", syscall.O_RDWR, syscall.S_IFREG|0o644, 0, g,
		xdr.Dict{{Key: KeyBlockSize, Value: xdr.Ptr(EncodeBlockSize(4096))}})
	if err != nil {
		t.Fatal(err)
	}
	_ = m.Release(context.Background(), f0)
	s := newLayer(t, m, 4*mib)
	if _, _, err := s.Lookup(context.Background(), xdr.RootGFID, "bad", xdr.GFID{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(context.Background(), g, syscall.O_RDWR, nil); fop.Errno(err) != syscall.EIO {
		t.Errorf("open of a file with a bad block size: %v, want EIO", err)
	}
}

// A write below the end this client caches, after another client cut
// the file shorter, still makes the file reach the write's end: the
// block file grew, so the size is compared with the bricks' value.
func TestWriteAfterOtherClientShrank(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	a := newLayer(t, m, 4*mib)
	b := newLayer(t, m, 4*mib)
	f, g := create(t, a, "f")
	write(t, a, f, 0, fill(8*mib, 'a'))
	if _, _, _, err := b.Truncate(context.Background(), g, 5*mib, nil); err != nil {
		t.Fatal(err)
	}
	write(t, a, f, 7*mib, fill(4096, 'n'))
	if got := onDisk(t, m, g); got.Size != 7*mib+4096 {
		t.Errorf("size %d after the write, want %d: the write is past the end", got.Size, 7*mib+4096)
	}
}

// The blocks that pieces of a failed write allocated are still counted.
func TestFailedWriteCountsBlocks(t *testing.T) {
	m := directMem{foptest.NewMem("v-client-0")}
	s := newLayer(t, m, 4*mib)
	f, g := create(t, s, "f")
	write(t, s, f, 0, fill(4096, 'a'))
	_ = s.Release(context.Background(), f)
	df, _, err := s.Open(context.Background(), g, syscall.O_RDWR|syscall.O_DIRECT, nil)
	if err != nil {
		t.Fatal(err)
	}
	// An O_DIRECT write whose tail, in block 1, is not aligned: the
	// base file's piece lands, block 1's fails.
	if _, _, _, err := s.Write(context.Background(), df, 4*mib-8192, fill(8192+100, 'd'), nil); fop.Errno(err) != syscall.EINVAL {
		t.Fatalf("unaligned O_DIRECT tail: %v", err)
	}
	base, _ := m.Data(g)
	want := int64((len(base) + 511) / 512)
	if got := onDisk(t, m.Mem, g); got.Blocks != want || got.Size != 4096 {
		t.Errorf("after the failed write: %+v; want size 4096 and the base file's %d blocks", got, want)
	}
}

// A failed extending O_DIRECT write leaves no block behind: the kernel's
// truncate back to the old size takes the block made for it, and so does
// a removal (native 10.3 leaks it forever, reference §2.3).
func TestFailedDirectWriteLeavesNoBlock(t *testing.T) {
	m := directMem{foptest.NewMem("v-client-0")}
	s := newLayer(t, m, 4*mib)
	ctx := context.Background()
	for _, how := range []string{"truncate", "unlink"} {
		f, g := create(t, s, how)
		write(t, s, f, 0, fill(4096, 'a'))
		_ = s.Release(ctx, f)
		df, _, err := s.Open(ctx, g, syscall.O_RDWR|syscall.O_DIRECT, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := s.Write(ctx, df, 12*mib, fill(8192+100, 'x'), nil); fop.Errno(err) != syscall.EINVAL {
			t.Fatalf("unaligned O_DIRECT write: %v", err)
		}
		if blockOn(t, m.Mem, g, 3) == nil {
			t.Fatal("no block was made for the failed write: the test shows nothing")
		}
		switch how {
		case "truncate":
			if _, _, _, err := s.Ftruncate(ctx, df, 4096, nil); err != nil {
				t.Fatal(err)
			}
			if blockOn(t, m.Mem, g, 3) != nil {
				t.Error("the truncate back to the old size left the failed write's block")
			}
			_ = s.Release(ctx, df)
		case "unlink":
			_ = s.Release(ctx, df)
			if _, err := s.Unlink(ctx, xdr.RootGFID, how, nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the failed write's block to be deleted with the file", func() bool {
				s.kickDeletion()
				return blockOn(t, m.Mem, g, 3) == nil && len(m.Names(RemoveMeGFID)) == 0
			})
		}
	}
}

// Kept block fds are bounded: past OpenBlocks the idle ones are
// released, and the blocks stay readable, writable and syncable.
func TestKeptFdsBounded(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	s := New("v-shard", m, Options{BlockSize: 4 * mib, OpenBlocks: 2, DeleteInterval: time.Hour}, zaptest.NewLogger(t))
	t.Cleanup(func() { _ = s.Close() })
	f, _ := create(t, s, "f")
	for n := 1; n <= 6; n++ {
		write(t, s, f, uint64(n)*4*mib, []byte{byte(n)})
	}
	waitFor(t, "idle kept fds to be released", func() bool {
		s.lru.mu.Lock()
		defer s.lru.mu.Unlock()
		return s.lru.n <= 2
	})
	waitFor(t, "the released fds to reach the brick", func() bool { return m.Calls("RELEASE") >= 4 })
	for n := 1; n <= 6; n++ {
		write(t, s, f, uint64(n)*4*mib+1, []byte{byte(n)})
		if got := read(t, s, f, uint64(n)*4*mib, 2); got[0] != byte(n) || got[1] != byte(n) {
			t.Errorf("block %d reads %v", n, got)
		}
	}
	if _, err := s.Fsync(context.Background(), f, false, nil); err != nil {
		t.Fatal(err)
	}
	_ = s.Release(context.Background(), f)
	waitFor(t, "the last close to release every kept fd", func() bool {
		s.lru.mu.Lock()
		defer s.lru.mu.Unlock()
		return s.lru.n == 0
	})
}

// The replica set says a write reached a file no longer named whichever
// child answers for it: one brick's copy unlinked by another client
// while this one held the file open.
func TestReplicaWriteReportsUnlinked(t *testing.T) {
	for bad := 0; bad < 3; bad++ {
		r, mems := replica3(t)
		ctx := context.Background()
		g := gfid()
		f, _, _, err := r.Create(ctx, xdr.RootGFID, "f", syscall.O_RDWR, syscall.S_IFREG|0o644, 0, g, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mems[bad].Unlink(ctx, xdr.RootGFID, "f", nil); err != nil {
			t.Fatal(err)
		}
		_, post, _, err := r.Write(ctx, f, 0, []byte("x"), nil)
		if err != nil || post.Nlink != 0 {
			t.Errorf("brick %d unlinked: write answers nlink %d, %v; want 0", bad, post.Nlink, err)
		}
		_ = r.Release(ctx, f)
	}
}

// A mount of a subdirectory never makes .shard (the bricks would put it
// inside the subdirectory, with the gfid of the volume's own): it finds
// the volume's .shard by its gfid, and without one says what to do.
func TestSubdirMountDoesNotMakeDotShard(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	sub := New("v-shard", m, Options{BlockSize: 4 * mib, DeleteInterval: time.Hour, SubdirMount: true}, zaptest.NewLogger(t))
	t.Cleanup(func() { _ = sub.Close() })
	f, _ := create(t, sub, "img")
	_, _, _, err := sub.Write(context.Background(), f, 5*mib, []byte("x"), nil)
	if err == nil || !strings.Contains(err.Error(), "mount the volume's root") {
		t.Fatalf("a write past the first block through a subdirectory mount without .shard: %v", err)
	}
	if n := m.Names(xdr.RootGFID); slices.Contains(n, DotShard) {
		t.Fatalf(".shard was made by a subdirectory mount: %v", n)
	}
	// Once the volume's root made it, the subdirectory mount uses it.
	root := newLayer(t, m, 4*mib)
	rf, _ := create(t, root, "first")
	write(t, root, rf, 5*mib, []byte("y"))
	write(t, sub, f, 5*mib, []byte("x"))
	if got := read(t, sub, f, 5*mib, 1); string(got) != "x" {
		t.Errorf("read back %q", got)
	}
}

// destSub answers READs as a brick client does with a fop.ReadDest: the
// data in the caller's buffer, and only the bytes read written there.
type destSub struct {
	fop.Subvolume
	took atomic.Int64
	more bool // answer a byte more than asked, elsewhere: a broken layer
}

func (d *destSub) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	b, rx, err := d.Subvolume.Read(ctx, f, off, size, xd)
	if d.more && err == nil {
		return append(bytes.Clone(b), make([]byte, int(size)+1-len(b))...), rx, nil
	}
	rd := fop.ReadDestOf(ctx)
	dest := rd.Take(int(size))
	if err != nil || dest == nil {
		return b, rx, err
	}
	defer rd.Give()
	d.took.Add(1)
	return dest[:copy(dest, b)], rx, nil
}

// Reads into the caller's buffer (fop.ReadDest, fuse's reply buffer, which
// holds an earlier reply's bytes): every piece lands in its part of it,
// and holes, missing and short blocks read as zeros there too.
func TestReadIntoDirtyReadDest(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	sub := &destSub{Subvolume: m}
	s := newLayer(t, sub, 4*mib)
	f, _ := create(t, s, "f")
	write(t, s, f, 13*mib, fill(4096, 'z')) // block 3 only
	write(t, s, f, 4*mib-4096, fill(8192, 'b'))
	readDirty := func(off uint64, n uint32) []byte {
		t.Helper()
		dest := fill(int(n), 0xee)
		b, _, err := s.Read(fop.WithReadDest(context.Background(), dest), f, off, n, nil)
		if err != nil {
			t.Fatalf("read %d at %d: %v", n, off, err)
		}
		if len(b) > 0 && !fop.InBuf(b, dest) {
			t.Errorf("read %d at %d: the answer is not in the caller's buffer", n, off)
		}
		return b
	}
	took := sub.took.Load()
	if got := readDirty(0, 1<<20); !bytes.Equal(got, make([]byte, 1<<20)) {
		t.Errorf("a hole in the base file read %d bytes, not all zero", len(got))
	}
	if got := readDirty(8*mib-10, 20); !bytes.Equal(got, make([]byte, 20)) {
		t.Errorf("missing blocks read %d bytes of 0xee", bytes.Count(got, []byte{0xee}))
	}
	if got := readDirty(4*mib-8192, 16384); !bytes.Equal(got, append(append(make([]byte, 4096), fill(8192, 'b')...), make([]byte, 4096)...)) {
		t.Errorf("a read across blocks 0 and 1 got %d bytes, not the 8 KiB written between zeros (%d bytes of 0xee)", len(got), bytes.Count(got, []byte{0xee}))
	}
	want := append(make([]byte, 4096), fill(4096, 'z')...)
	if got := readDirty(13*mib-4096, 64<<10); !bytes.Equal(got, want) {
		t.Errorf("read at the end got %d bytes, want %d", len(got), len(want))
	}
	if sub.took.Load() == took {
		t.Error("no piece was read into the caller's buffer")
	}
}

// A layer below that answers a piece with more than asked (a broken
// contract) neither crashes the read nor writes past the piece's part.
func TestReadPieceLongerThanAsked(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	sub := &destSub{Subvolume: m}
	s := newLayer(t, sub, 4*mib)
	f, _ := create(t, s, "f")
	write(t, s, f, 4*mib-4096, fill(8192, 'b'))
	sub.more = true
	dest := fill(16384, 0xee)
	b, _, err := s.Read(fop.WithReadDest(context.Background(), dest), f, 4*mib-8192, 16384, nil)
	// The file ends 4 KiB into block 1.
	if want := append(make([]byte, 4096), fill(8192, 'b')...); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("read across blocks: %d bytes (%d of them 'b'), %v; want 4 KiB of zeros, then the 8 KiB written", len(b), bytes.Count(b, []byte{'b'}), err)
	}
}
