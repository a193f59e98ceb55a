package integration

import (
	"bytes"
	be "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/failover/dht"
)

// Subvolumes returns the bricks of a volume grouped by DHT subvolume (one
// replica set, or one brick), in volfile order.
func (c *Cluster) Subvolumes(t T, volume string) [][]BrickInfo {
	t.Helper()
	v := c.vol(t, volume)
	bs := c.Bricks(t, volume)
	n := v.kind.Set()
	var out [][]BrickInfo
	for i := 0; i < len(bs); i += n {
		out = append(out, bs[i:i+n])
	}
	return out
}

// SubvolumeName is the translator name DHT calls subvolume i of a volume
// (what linkto files name).
func SubvolumeName(volume string, kind Kind, i int) string {
	if kind.Replica < 2 {
		return fmt.Sprintf("%s-client-%d", volume, i)
	}
	return fmt.Sprintf("%s-replicate-%d", volume, i)
}

// Xattr reads one xattr of a backend path without following a symlink.
func Xattr(path, name string) ([]byte, bool) {
	buf := make([]byte, 512)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

// DHTSlice is one subvolume's trusted.glusterfs.dht on a directory.
type DHTSlice struct {
	Commit, Type, Start, Stop uint32
	Has                       bool
}

func (s DHTSlice) String() string {
	if !s.Has {
		return "none"
	}
	return fmt.Sprintf("%08x-%08x/%x", s.Start, s.Stop, s.Commit)
}

// ReadDHTSlice reads a backend directory's layout slice.
func ReadDHTSlice(path string) DHTSlice {
	v, ok := Xattr(path, "trusted.glusterfs.dht")
	if !ok || len(v) != 16 {
		return DHTSlice{}
	}
	return DHTSlice{be.BigEndian.Uint32(v), be.BigEndian.Uint32(v[4:]), be.BigEndian.Uint32(v[8:]), be.BigEndian.Uint32(v[12:]), true}
}

// Layout reads directory dir's layout from the first brick of every
// subvolume.
func (c *Cluster) Layout(t T, volume, dir string) []DHTSlice {
	t.Helper()
	var out []DHTSlice
	for _, set := range c.Subvolumes(t, volume) {
		out = append(out, ReadDHTSlice(filepath.Join(set[0].Path, dir)))
	}
	return out
}

// HashedSubvolume is the subvolume name hashes to in layout, or -1.
func HashedSubvolume(layout []DHTSlice, name string) int {
	h := dht.HashName(name)
	for i, s := range layout {
		if s.Has && !(s.Start == 0 && s.Stop == 0) && s.Start <= h && h <= s.Stop {
			return i
		}
	}
	return -1
}

// isLinktoFile reports whether a backend entry is a DHT linkto file and
// the subvolume name it points to.
func isLinktoFile(path string) (string, bool) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Mode&07777 != syscall.S_ISVTX {
		return "", false
	}
	v, ok := Xattr(path, "trusted.glusterfs.dht.linkto")
	if !ok {
		return "", false
	}
	return strings.TrimRight(string(v), "\x00"), true
}

// Placement is where DHT keeps each regular entry of a directory.
type Placement struct {
	Data   map[string]int // name -> the subvolume holding it
	Hashed map[string]int // name -> the subvolume it hashes to
}

// CheckDHT checks what a DHT client must leave on the bricks of directory
// dir (relative to the volume root), as GlusterFS leaves it: the
// directory on every subvolume with one gfid and a layout covering the
// hash space once; every other entry either a directory on every
// subvolume, or data on exactly one subvolume with at most one linkto
// file, on the subvolume the name hashes to and naming the one with the
// data. It returns where each file is.
func (c *Cluster) CheckDHT(t T, volume, dir string) Placement {
	t.Helper()
	kind := c.vol(t, volume).kind
	sets := c.Subvolumes(t, volume)
	layout := c.Layout(t, volume, dir)
	checkLayout(t, dir, layout)
	var gfid string
	names := map[string]bool{}
	for i, set := range sets {
		p := filepath.Join(set[0].Path, dir)
		g, ok := Xattr(p, "trusted.gfid")
		if !ok {
			t.Errorf("%s: missing on subvolume %d (%s)", dir, i, p)
			continue
		}
		if gfid == "" {
			gfid = string(g)
		} else if gfid != string(g) {
			t.Errorf("%s: gfid differs between subvolumes", dir)
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".glusterfs") || e.Name() == ".shard" {
				continue
			}
			names[e.Name()] = true
		}
	}
	pl := Placement{Data: map[string]int{}, Hashed: map[string]int{}}
	volCommit := c.VolumeCommitHash(t, volume)
	for name := range names {
		var data, links []int
		var dirs int
		var target []string
		for i, set := range sets {
			p := filepath.Join(set[0].Path, dir, name)
			fi, err := os.Lstat(p)
			if err != nil {
				continue
			}
			if fi.IsDir() {
				dirs++
				continue
			}
			if to, ok := isLinktoFile(p); ok {
				links = append(links, i)
				target = append(target, to)
			} else {
				data = append(data, i)
			}
		}
		hs := HashedSubvolume(layout, name)
		switch {
		case dirs > 0:
			if dirs != len(sets) || len(data)+len(links) > 0 {
				t.Errorf("%s/%s: a directory on %d of %d subvolumes, files on %v, linktos on %v", dir, name, dirs, len(sets), data, links)
			}
			continue
		case len(data) != 1:
			t.Errorf("%s/%s: data on subvolumes %v, want exactly one (linktos on %v)", dir, name, data, links)
			continue
		}
		pl.Data[name], pl.Hashed[name] = data[0], hs
		// Clients trust a miss on the hashed subvolume only when the
		// directory's layout carries the volume's commit hash.
		trusted := hs >= 0 && layoutCommit(layout, hs) == volCommit
		switch {
		case len(links) > 1 || len(links) == 1 && links[0] == hs && hs == data[0]:
			t.Errorf("%s/%s: data on %d, hashes to %d, linkto files on %v", dir, name, data[0], hs, links)
		case len(links) == 1 && links[0] != hs && volCommit == 0:
			t.Errorf("%s/%s: data on %d, hashes to %d, linkto files on %v", dir, name, data[0], hs, links)
		case len(links) == 1 && links[0] != hs:
			// Made where the name hashed before a fix-layout moved
			// its range: stale, and harmless while it names the data
			// (GlusterFS leaves these; a lookup everywhere drops one
			// whose data is gone).
			t.Logf("%s/%s: data on %d, hashes to %d, a linkto file left on %v by an older layout", dir, name, data[0], hs, links)
		}
		if hs >= 0 && hs != data[0] && len(links) == 0 {
			if trusted {
				t.Errorf("%s/%s: data on %d, hashes to %d, no linkto file there: lookups that trust the layout miss it", dir, name, data[0], hs)
			} else {
				t.Logf("%s/%s: data on %d, hashes to %d, no linkto file there; the layout's commit hash %d is not the volume's %d, so a miss is looked up everywhere", dir, name, data[0], hs, layoutCommit(layout, hs), volCommit)
			}
		}
		if len(links) == 1 && target[0] != SubvolumeName(volume, kind, data[0]) {
			known := false
			for i := range sets {
				known = known || target[0] == SubvolumeName(volume, kind, i)
			}
			if known {
				t.Errorf("%s/%s: linkto names %q, the data is on %s", dir, name, target[0], SubvolumeName(volume, kind, data[0]))
			} else {
				// glusterd renumbers the sets after one removed, and
				// linkto files keep the old names: clients look such a
				// name up everywhere (and repoint the file).
				t.Logf("%s/%s: linkto names %q, which the volume no longer has; the data is on %s", dir, name, target[0], SubvolumeName(volume, kind, data[0]))
			}
		}
	}
	return pl
}

// layoutCommit is the commit hash of subvolume i's slice.
func layoutCommit(layout []DHTSlice, i int) uint32 { return layout[i].Commit }

// VolumeCommitHash is the volume's commit hash as clients read it from the
// root (trusted.glusterfs.dht.commithash, a decimal string set by
// rebalance), 0 without one.
func (c *Cluster) VolumeCommitHash(t T, volume string) uint32 {
	t.Helper()
	sets := c.Subvolumes(t, volume)
	for _, set := range sets {
		if v, ok := Xattr(set[0].Path, "trusted.glusterfs.dht.commithash"); ok {
			if n, err := strconv.ParseUint(strings.TrimRight(string(v), "\x00"), 10, 32); err == nil {
				return uint32(n)
			}
		}
	}
	return 0
}

// checkLayout fails t unless the slices cover the hash space once.
func checkLayout(t T, dir string, layout []DHTSlice) {
	t.Helper()
	type rng struct{ a, b uint64 }
	var rs []rng
	for _, s := range layout {
		if s.Has && !(s.Start == 0 && s.Stop == 0) {
			rs = append(rs, rng{uint64(s.Start), uint64(s.Stop)})
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].a < rs[j].a })
	next := uint64(0)
	for _, r := range rs {
		if r.a != next {
			t.Errorf("%s: layout %v has a hole or an overlap at %#x", dir, layout, next)
			return
		}
		next = r.b + 1
	}
	if next != 1<<32 {
		t.Errorf("%s: layout %v does not reach 0xffffffff", dir, layout)
	}
}

// CheckShardDHT checks a sharded file on a distributed volume: the base
// file where DHT puts it, every block in .shard on the subvolume its name
// hashes to in .shard's layout (once, and the same on every data brick of
// that set), and the bricks' assembly equal to what each mount reads.
func (c *Cluster) CheckShardDHT(t T, volume, file string, mounts ...string) {
	t.Helper()
	kind := c.vol(t, volume).kind
	sets := c.Subvolumes(t, volume)
	pl := c.CheckDHT(t, volume, filepath.Dir(file))
	base, ok := pl.Data[filepath.Base(file)]
	if !ok {
		t.Errorf("%s: no data file on any subvolume", file)
		return
	}
	l, err := ReadShardLayout(sets[base][0].Path, file)
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	size, bs := l.Size(), l.BlockBytes()
	if size < 0 || bs <= 0 {
		t.Errorf("%s: size %s, block size %s", file, l.FileSize, l.BlockSize)
		return
	}
	want := make([]byte, size)
	b0, err := os.ReadFile(filepath.Join(sets[base][0].Path, file))
	if err != nil {
		t.Errorf("%s: %v", file, err)
		return
	}
	copy(want, b0)
	spl := c.CheckDHT(t, volume, ".shard")
	blocks := 0
	for name, sub := range spl.Data {
		g, n, ok := strings.Cut(name, ".")
		if !ok || g != l.GFID {
			continue
		}
		blocks++
		var first []byte
		for i, b := range sets[sub] {
			if kind.Arbiter > 0 && i == kind.Replica-1 {
				continue
			}
			data, err := os.ReadFile(filepath.Join(b.Path, ".shard", name))
			if err != nil {
				t.Errorf("block %s on %s: %v", name, b, err)
				continue
			}
			if first == nil {
				first = data
			} else if !bytes.Equal(first, data) {
				t.Errorf("block %s differs between the bricks of subvolume %d", name, sub)
			}
		}
		var k int64
		fmt.Sscan(n, &k)
		if off := k * bs; off < size {
			copy(want[off:], first)
		}
	}
	t.Logf("%s: base on subvolume %d, %d blocks of %d bytes over the subvolumes, size %d", file, base, blocks, bs, size)
	for _, m := range mounts {
		got, err := os.ReadFile(filepath.Join(m, file))
		if err != nil {
			t.Errorf("read %s through %s: %v", file, m, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s through %s: %d bytes that differ from the %d the bricks assemble", file, m, len(got), len(want))
		}
	}
}
