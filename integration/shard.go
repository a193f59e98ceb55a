package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Sharded volumes (features.shard, `group virt`): a file is its base file
// at its path plus .shard/<base-gfid>.<N> on the bricks. These helpers look
// at that layout on the brick backends.

// ShardVolume applies `gluster volume set VOL group virt` (which turns
// sharding on, with the rest of GlusterFS's profile for VM images) and the
// block size bs ("4MB", "64MB"), before the volume is started.
func (c *Cluster) ShardVolume(t T, volume, bs string) {
	t.Helper()
	c.Set(t, volume, "group", "virt")
	c.Set(t, volume, "features.shard-block-size", bs)
}

// BackendGFID is the canonical gfid of path on a brick backend.
func BackendGFID(path string) (string, error) {
	v, err := Getfattr(path, "trusted.gfid")
	if err != nil {
		return "", err
	}
	return gfidString(v), nil
}

// ShardLayout is a sharded file as one brick holds it.
type ShardLayout struct {
	GFID      string
	BlockSize string         // trusted.glusterfs.shard.block-size, hex
	FileSize  string         // trusted.glusterfs.shard.file-size, hex
	Blocks    map[int]string // block number (1..) -> sha256 of its file
	BaseSum   string
}

// Size is the logical size the file-size xattr records.
func (l ShardLayout) Size() int64 {
	h := strings.TrimPrefix(l.FileSize, "0x")
	if len(h) < 16 {
		return -1
	}
	n, err := strconv.ParseUint(h[:16], 16, 64)
	if err != nil {
		return -1
	}
	return int64(n)
}

// BlockBytes is the block size the block-size xattr records.
func (l ShardLayout) BlockBytes() int64 {
	n, err := strconv.ParseUint(strings.TrimPrefix(l.BlockSize, "0x"), 16, 64)
	if err != nil {
		return -1
	}
	return int64(n)
}

// ReadShardLayout reads file (relative to the volume root) and its
// blocks from one brick's backend.
func ReadShardLayout(brickPath, file string) (ShardLayout, error) {
	var l ShardLayout
	p := filepath.Join(brickPath, file)
	g, err := BackendGFID(p)
	if err != nil {
		return l, err
	}
	l.GFID = g
	if l.BlockSize, err = Getfattr(p, "trusted.glusterfs.shard.block-size"); err != nil {
		return l, err
	}
	if l.FileSize, err = Getfattr(p, "trusted.glusterfs.shard.file-size"); err != nil {
		return l, err
	}
	if l.BaseSum, _, err = Sum(p); err != nil {
		return l, err
	}
	l.Blocks = map[int]string{}
	names, _ := filepath.Glob(filepath.Join(brickPath, ".shard", g+".*"))
	for _, n := range names {
		num, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(n), g+"."))
		if err != nil {
			continue
		}
		sum, _, err := Sum(n)
		if err != nil {
			return l, err
		}
		l.Blocks[num] = sum
	}
	return l, nil
}

// ShardFiles lists file and every block file of it on any brick, plus
// .shard, relative to the volume root: what PendingHeal must look at on a
// sharded volume.
func (c *Cluster) ShardFiles(t T, volume string, files ...string) []string {
	t.Helper()
	set := map[string]bool{".shard": true}
	for _, f := range files {
		set[f] = true
		for _, b := range c.Bricks(t, volume) {
			if c.Dropped(b.Node) {
				continue
			}
			g, err := BackendGFID(filepath.Join(b.Path, f))
			if err != nil {
				continue
			}
			names, _ := filepath.Glob(filepath.Join(b.Path, ".shard", g+".*"))
			for _, n := range names {
				set[filepath.Join(".shard", filepath.Base(n))] = true
			}
		}
	}
	var out []string
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// Assemble reads a sharded file from one brick's backend as a client
// would: the base file, then each block at its offset, zeros in holes, up
// to the recorded size.
func Assemble(brickPath, file string) ([]byte, error) {
	l, err := ReadShardLayout(brickPath, file)
	if err != nil {
		return nil, err
	}
	size, bs := l.Size(), l.BlockBytes()
	if size < 0 || bs <= 0 {
		return nil, fmt.Errorf("%s: size %s, block size %s", file, l.FileSize, l.BlockSize)
	}
	out := make([]byte, size)
	base, err := os.ReadFile(filepath.Join(brickPath, file))
	if err != nil {
		return nil, err
	}
	copy(out, base)
	for n := range l.Blocks {
		b, err := os.ReadFile(filepath.Join(brickPath, ".shard", fmt.Sprintf("%s.%d", l.GFID, n)))
		if err != nil {
			return nil, err
		}
		if off := int64(n) * bs; off < size {
			copy(out[off:], b)
		}
	}
	return out, nil
}

// CheckShardBackends fails the test unless every data brick holds file
// identically (base file, the same blocks with the same contents, the same
// shard xattrs), the assembled contents are what each mount reads, and no
// block carries the shard xattrs or another owner than root.
func (c *Cluster) CheckShardBackends(t T, volume string, kind Kind, file string, mounts ...string) {
	t.Helper()
	if kind.Subvolumes() > 1 {
		c.checkSpreadShard(t, volume, kind, file, mounts...)
		return
	}
	var first *ShardLayout
	var want []byte
	for _, b := range c.Bricks(t, volume) {
		if kind.Arbiter > 0 && b.Index%kind.Set() == kind.Replica-1 {
			continue
		}
		l, err := ReadShardLayout(b.Path, file)
		if err != nil {
			t.Errorf("%s on brick %d: %v", file, b.Index, err)
			continue
		}
		t.Logf("%s on brick %d: gfid %s, file-size %s, %d blocks", file, b.Index, l.GFID, l.FileSize, len(l.Blocks))
		if first == nil {
			first = &l
			if want, err = Assemble(b.Path, file); err != nil {
				t.Errorf("assemble %s on brick %d: %v", file, b.Index, err)
			}
		} else {
			if l.GFID != first.GFID || l.FileSize != first.FileSize || l.BlockSize != first.BlockSize || l.BaseSum != first.BaseSum {
				t.Errorf("%s differs on brick %d: %+v; the first brick has %+v", file, b.Index, l, *first)
			}
			if fmt.Sprint(l.Blocks) != fmt.Sprint(first.Blocks) {
				t.Errorf("%s's blocks differ on brick %d: %v; the first brick has %v", file, b.Index, l.Blocks, first.Blocks)
			}
		}
		for n := range l.Blocks {
			p := filepath.Join(b.Path, ".shard", fmt.Sprintf("%s.%d", l.GFID, n))
			if v, err := Getfattr(p, "trusted.glusterfs.shard.file-size"); err == nil {
				t.Errorf("block %s carries the file size %s", p, v)
			}
			if st := backendStat(p); st == nil || st.Uid != 0 || st.Gid != 0 {
				t.Errorf("block %s is not owned by root: %+v", p, st)
			}
		}
	}
	for _, m := range mounts {
		got, err := os.ReadFile(filepath.Join(m, file))
		if err != nil {
			t.Errorf("read %s through %s: %v", file, m, err)
			continue
		}
		if !bytes.Equal(got, want) {
			gs, ws := sha256.Sum256(got), sha256.Sum256(want)
			t.Errorf("%s through %s: %d bytes sha256 %.16s; the bricks assemble %d bytes sha256 %.16s",
				file, m, len(got), hex.EncodeToString(gs[:]), len(want), hex.EncodeToString(ws[:]))
		}
	}
}

// checkSpreadShard is CheckShardBackends on a distributed volume, where
// the base file and each block are on one replica set (linkto files
// elsewhere): every data copy of each is identical within its set, no
// piece has data on two sets, and the pieces assemble to what each mount
// reads.
func (c *Cluster) checkSpreadShard(t T, volume string, kind Kind, file string, mounts ...string) {
	t.Helper()
	set := kind.Set()
	type piece struct {
		sum  string
		sets map[int]bool
		path string
	}
	// pieces by name relative to the brick: the base file, .shard/G.N
	pieces := map[string]*piece{}
	var layout *ShardLayout
	var layoutBrick string
	// The file's gfid, from any brick that has its name (data or linkto):
	// its blocks are looked for on every brick.
	var gfid string
	for _, b := range c.Bricks(t, volume) {
		if g, err := BackendGFID(filepath.Join(b.Path, file)); err == nil {
			gfid = g
			break
		}
	}
	for _, b := range c.Bricks(t, volume) {
		if kind.Arbiter > 0 && b.Index%set == kind.Replica-1 {
			continue
		}
		names := []string{file}
		if gfid != "" {
			blocks, _ := filepath.Glob(filepath.Join(b.Path, ".shard", gfid+".*"))
			for _, p := range blocks {
				names = append(names, filepath.Join(".shard", filepath.Base(p)))
			}
		}
		for _, n := range names {
			p := filepath.Join(b.Path, n)
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			if _, link := isLinktoFile(p); link {
				continue
			}
			sum, _, err := Sum(p)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			pc := pieces[n]
			if pc == nil {
				pc = &piece{sum: sum, sets: map[int]bool{}, path: p}
				pieces[n] = pc
			} else if pc.sum != sum {
				t.Errorf("%s differs between bricks: %s and %s", n, pc.path, p)
			}
			pc.sets[b.Index/set] = true
			if n == file && layout == nil {
				l, err := ReadShardLayout(b.Path, file)
				if err != nil {
					t.Errorf("%s on brick %d: %v", file, b.Index, err)
					continue
				}
				layout, layoutBrick = &l, b.Path
			}
		}
	}
	for n, pc := range pieces {
		if len(pc.sets) != 1 {
			t.Errorf("%s has data on %d replica sets", n, len(pc.sets))
		}
	}
	if layout == nil {
		t.Errorf("%s: no brick holds its base file", file)
		return
	}
	size, bs := layout.Size(), layout.BlockBytes()
	if size < 0 || bs <= 0 {
		t.Errorf("%s on %s: size %s, block size %s", file, layoutBrick, layout.FileSize, layout.BlockSize)
		return
	}
	want := make([]byte, size)
	for n, pc := range pieces {
		b, err := os.ReadFile(pc.path)
		if err != nil {
			t.Errorf("%s: %v", pc.path, err)
			continue
		}
		off := int64(0)
		if n != file {
			num, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(n), layout.GFID+"."))
			if err != nil {
				continue
			}
			off = int64(num) * bs
			if v, err := Getfattr(pc.path, "trusted.glusterfs.shard.file-size"); err == nil {
				t.Errorf("block %s carries the file size %s", pc.path, v)
			}
		}
		if off < size {
			copy(want[off:], b)
		}
	}
	t.Logf("%s: gfid %s, file-size %s, base and %d blocks over the replica sets", file, layout.GFID, layout.FileSize, len(pieces)-1)
	for _, m := range mounts {
		got, err := os.ReadFile(filepath.Join(m, file))
		if err != nil {
			t.Errorf("read %s through %s: %v", file, m, err)
			continue
		}
		if !bytes.Equal(got, want) {
			gs, ws := sha256.Sum256(got), sha256.Sum256(want)
			t.Errorf("%s through %s: %d bytes sha256 %.16s; the bricks assemble %d bytes sha256 %.16s",
				file, m, len(got), hex.EncodeToString(gs[:]), len(want), hex.EncodeToString(ws[:]))
		}
	}
}

// gfidString is a trusted.gfid value (0x + 32 hex digits) in canonical
// form.
func gfidString(hexv string) string {
	h := strings.TrimPrefix(hexv, "0x")
	if len(h) != 32 {
		return h
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func backendStat(p string) *syscall.Stat_t {
	var st syscall.Stat_t
	if syscall.Stat(p, &st) != nil {
		return nil
	}
	return &st
}
