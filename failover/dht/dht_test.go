package dht

import (
	"context"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Appendix A of ../shared/reference/gluster-afr-dht.md: gf_dm_hashfn on
// names whose placement was checked on real bricks.
func TestHashVectors(t *testing.T) {
	hx := func(s string) string { b, _ := hex.DecodeString(s); return string(b) }
	for _, c := range []struct {
		name string
		want uint32
	}{
		{"a", 0x3a17e4e6}, {"ab", 0xc3af40d9}, {"abc", 0xba8bd29a}, {"abcd", 0xd89627f6}, {"abcde", 0x0a45ccec},
		{"abcdefghijklmnop", 0x5f7662ef}, {"abcdefghijklmnopq", 0xee27cbd1},
		{"file0", 0x8e5c9508}, {"file1", 0xa787fa82}, {"file2", 0xa7b6b0e5}, {"file3", 0x1c366097}, {"file4", 0x12898d73},
		{"file5", 0xd80b0569}, {"file6", 0xef94f0b0}, {"file7", 0x42985f57}, {"file8", 0xf31cac4e}, {"file9", 0x239e3820},
		{"dirA", 0x3c514a9e},
		{hx("6e61c3af76c3bc"), 0x3853b6a6}, // naïvü: bytes >= 0x80 sign-extended
		{hx("636166e697a5"), 0x49598dd1},   // caf日
		{"/dirA", 0xf057ac7a}, {"/dirB", 0xd47e2177}, {"/dirE", 0x32b7c899}, {"/dirF", 0x1ed5ee7e},
	} {
		if got := hashName([]byte(c.name)); got != c.want {
			t.Errorf("hash(%q) = %#08x, want %#08x", c.name, got, c.want)
		}
	}
}

func TestHashRegex(t *testing.T) {
	re, err := compileHashRegex(DefaultRsyncHashRegex)
	if err != nil {
		t.Fatal(err)
	}
	h := hasher{rsync: re}
	if got, want := h.hash(".file0.Xy12Ab"), hashName([]byte("file0")); got != want {
		t.Errorf("rsync temporary name hashes %#x, want that of file0 %#x", got, want)
	}
	if got, want := h.hash(".a.b.c"), hashName([]byte("a.b")); got != want {
		t.Errorf(".a.b.c hashes %#x, want that of a.b %#x (the group is leftmost-longest)", got, want)
	}
	if got, want := h.hash("file0.txt"), hashName([]byte("file0.txt")); got != want {
		t.Errorf("a plain name is munged: %#x, want %#x", got, want)
	}
	if re, _ := compileHashRegex("none"); re != nil {
		t.Errorf(`"none" compiled to %v`, re)
	}
}

// New directories get the ranges DHT gives them (§8.5): equal bricks
// split the space at 0x7fffffff, the first range going to the subvolume
// the path's hash picks.
func TestAssign(t *testing.T) {
	names := []string{"v-replicate-0", "v-replicate-1"}
	use := []bool{true, true}
	a := assign(names, use, []uint64{100, 100}, hashName([]byte("/dirA")), 0)
	if a[0].start != 0 || a[0].stop != 0x7ffffffe || a[1].start != 0x7fffffff || a[1].stop != 0xffffffff {
		t.Errorf("/dirA: %+v", a)
	}
	b := assign(names, use, nil, hashName([]byte("/dirB")), 0)
	if b[1].start != 0 || b[1].stop != 0x7ffffffe || b[0].start != 0x7fffffff || b[0].stop != 0xffffffff {
		t.Errorf("/dirB: %+v", b)
	}
	// Weighted: a brick three times the size gets three quarters.
	w := assign(names, use, []uint64{300, 100}, hashName([]byte("/dirA")), 0)
	if w[0].stop != 0xbffffffe || w[1].start != 0xbfffffff {
		t.Errorf("weighted: %+v", w)
	}
	// Name order is strcmp's: replicate-10 before replicate-2.
	n3 := []string{"v-replicate-2", "v-replicate-10", "v-replicate-0"}
	c := assign(n3, []bool{true, true, true}, nil, 0, 0)
	if c[2].start != 0 || c[1].start <= c[2].start || c[0].start <= c[1].start || c[0].stop != 0xffffffff {
		t.Errorf("name order: %+v", c)
	}
	// A subvolume that cannot take a range gets none; the rest cover all.
	d := assign(names, []bool{false, true}, nil, 0, 0)
	if d[0].owns() || d[1].start != 0 || d[1].stop != 0xffffffff {
		t.Errorf("one usable: %+v", d)
	}
}

func TestLayoutAnomalies(t *testing.T) {
	mk := func(r ...uint32) *layout {
		var s []slice
		for i := 0; i < len(r); i += 2 {
			s = append(s, slice{start: r[i], stop: r[i+1], has: true, present: true})
		}
		return newLayout(s)
	}
	if l := mk(0, 0x7ffffffe, 0x7fffffff, 0xffffffff); l.holes != 0 || l.overlaps != 0 {
		t.Errorf("complete layout: %s", l)
	}
	if l := mk(0, 0x7ffffffe, 0x80000000, 0xffffffff); l.holes != 1 {
		t.Errorf("hole not found: %s", l)
	}
	if l := mk(0, 0x7fffffff, 0x7fffffff, 0xffffffff); l.overlaps != 1 {
		t.Errorf("overlap not found: %s", l)
	}
	if l := mk(0, 0x7ffffffe, 0, 0); l.holes != 1 {
		t.Errorf("missing tail not found: %s", l)
	}
	if l := mk(0, 0x7ffffffe, 0x7fffffff, 0xffffffff); l.search(0x7fffffff) != 1 || l.search(0) != 0 || l.first() != 0 {
		t.Errorf("search: %s", l)
	}
}

type env struct {
	t    *testing.T
	d    *DHT
	m    []*foptest.Mem
	ctx  context.Context
	next byte
}

func newEnv(t *testing.T, n int, o Options) *env {
	e := &env{t: t, ctx: context.Background(), next: 0x10}
	subs := make([]fop.Subvolume, n)
	for i := range subs {
		e.m = append(e.m, foptest.NewMem(fmt.Sprintf("v-replicate-%d", i)))
		subs[i] = e.m[i]
	}
	d, err := New("v-dht", subs, o, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	return e
}

func (e *env) gfid() xdr.GFID { e.next++; return foptest.GFID(e.next) }

func (e *env) must(err error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
}

func (e *env) create(parent xdr.GFID, name string) xdr.GFID {
	e.t.Helper()
	f, st, _, err := e.d.Create(e.ctx, parent, name, uint32(syscall.O_RDWR), 0o644, 0, e.gfid(), nil)
	e.must(err, "create "+name)
	e.must(e.d.Release(e.ctx, f), "release "+name)
	return st.GFID
}

// where returns the subvolumes whose copy of parent holds name, and
// whether each is a linkto file.
func (e *env) where(parent xdr.GFID, name string) (data, links []int) {
	for i, m := range e.m {
		st, x, err := m.Lookup(e.ctx, parent, name, xdr.GFID{}, xdr.Dict{}.With(xattrLinkto, xdr.Uint(256)))
		if err != nil {
			continue
		}
		if isLinkto(st, x) {
			links = append(links, i)
		} else {
			data = append(data, i)
		}
	}
	return data, links
}

// hashedSub is the subvolume name hashes to in dir's layout as stored on
// the Mems.
// swapLayout lays dir out again on the bricks behind the layer's back,
// as another client's rebalance would: the two subvolumes' ranges
// swapped, with commit as the layouts' commit hash if not nil.
func (e *env) swapLayout(dir xdr.GFID, commit *uint32) {
	e.t.Helper()
	var s [2]slice
	for i, m := range e.m {
		v, _ := m.Xattr(dir, xattrLayout)
		s[i], _ = parseSlice(v)
	}
	s[0].start, s[0].stop, s[1].start, s[1].stop = s[1].start, s[1].stop, s[0].start, s[0].stop
	for i, m := range e.m {
		if commit != nil {
			s[i].commit = *commit
		}
		e.must(fop.ErrOnly(m.Setxattr(e.ctx, dir, xdr.Dict{}.With(xattrLayout, xdr.Ptr(s[i].encode())), 0, nil)), "swap the layout")
	}
}

func (e *env) hashedSub(dir xdr.GFID, name string) int {
	e.t.Helper()
	s := make([]slice, len(e.m))
	for i, m := range e.m {
		v, ok := m.Xattr(dir, xattrLayout)
		if !ok {
			e.t.Fatalf("%s has no layout on %s", dir, m.Name())
		}
		s[i], _ = parseSlice(v)
	}
	l := newLayout(s)
	if l.holes != 0 || l.overlaps != 0 {
		e.t.Fatalf("layout of %s on the bricks: %s", dir, l)
	}
	return l.search(hashName([]byte(name)))
}

// The first lookup of a fresh volume gives the root a layout on every
// subvolume, commit hash 1, as a native client's first mount does.
func TestRootLayoutHealed(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	if _, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, "nothing", xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOENT {
		t.Fatalf("lookup of a missing name: %v, want ENOENT", err)
	}
	var s []slice
	for _, m := range e.m {
		v, ok := m.Xattr(xdr.RootGFID, xattrLayout)
		if !ok {
			t.Fatalf("root of %s has no layout", m.Name())
		}
		p, _ := parseSlice(v)
		if p.commit != hashInvalid {
			t.Errorf("root commit hash %d, want 1", p.commit)
		}
		s = append(s, p)
	}
	if l := newLayout(s); l.holes != 0 || l.overlaps != 0 {
		t.Errorf("root layout %s", l)
	}
	// hash("/") picks the subvolume with the first range.
	want := int(hashName([]byte("/")) % 2)
	if s[want].start != 0 {
		t.Errorf("root layout starts on subvolume %d, want %d: %+v", 1-want, want, s)
	}
}

// Files land on the subvolume their name hashes to, and only there;
// lookups find them, on every subvolume count.
func TestPlacement(t *testing.T) {
	for _, n := range []int{2, 3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			e := newEnv(t, n, DefaultOptions())
			counts := make([]int, n)
			for k := 0; k < 60; k++ {
				name := fmt.Sprintf("file%d", k)
				g := e.create(xdr.RootGFID, name)
				data, links := e.where(xdr.RootGFID, name)
				want := e.hashedSub(xdr.RootGFID, name)
				if len(data) != 1 || data[0] != want || len(links) != 0 {
					t.Fatalf("%s on %v (linktos %v), want only on %d", name, data, links, want)
				}
				counts[want]++
				st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
				if err != nil || st.GFID != g {
					t.Fatalf("lookup %s: %v %v", name, st.GFID, err)
				}
			}
			for i, c := range counts {
				if c == 0 {
					t.Errorf("no file of 60 on subvolume %d: %v", i, counts)
				}
			}
		})
	}
	// Appendix A's placements on a 2x3 volume whose root splits at
	// 0x7fffffff with replicate-0 first.
	e := newEnv(t, 2, DefaultOptions())
	for i, m := range e.m {
		s := assign([]string{"v-replicate-0", "v-replicate-1"}, []bool{true, true}, nil, 0, 0)[i]
		e.must(fop.ErrOnly(m.Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrLayout, xdr.Ptr(s.encode())), 0, nil)), "set layout")
	}
	for k := 0; k < 10; k++ {
		name := fmt.Sprintf("file%d", k)
		e.create(xdr.RootGFID, name)
		data, _ := e.where(xdr.RootGFID, name)
		want := 1
		if k == 3 || k == 4 || k == 7 || k == 9 {
			want = 0
		}
		if len(data) != 1 || data[0] != want {
			t.Errorf("%s on %v, want replicate-%d", name, data, want)
		}
	}
}

// mkdir makes the directory on every subvolume with one gfid, the mds key
// on the hashed one only, and a complete layout with the volume's commit
// hash; the locks it took are all released.
func TestMkdir(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	g := e.gfid()
	st, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "dirA", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	if st.GFID != g {
		t.Fatalf("mkdir gfid %s, want %s", st.GFID, g)
	}
	hs := e.hashedSub(xdr.RootGFID, "dirA")
	var s []slice
	for i, m := range e.m {
		mst, _, err := m.Lookup(e.ctx, xdr.RootGFID, "dirA", xdr.GFID{}, nil)
		if err != nil || mst.GFID != g || !isDir(mst) {
			t.Fatalf("dirA on %s: %v %v", m.Name(), mst.GFID, err)
		}
		_, mds := m.Xattr(g, xattrMDS)
		if mds != (i == hs) {
			t.Errorf("mds key on %s: %v, want it only on the hashed subvolume %d", m.Name(), mds, hs)
		}
		if _, leak := m.Xattr(g, keyPreopParent); leak {
			t.Errorf("the pre-op key was stored on %s", m.Name())
		}
		v, ok := m.Xattr(g, xattrLayout)
		if !ok {
			t.Fatalf("dirA on %s has no layout", m.Name())
		}
		p, _ := parseSlice(v)
		if p.commit != 0 {
			t.Errorf("new directory's commit hash %d, want the volume's (0)", p.commit)
		}
		s = append(s, p)
	}
	want := assign(e.d.view().names, []bool{true, true, true}, e.d.weights(e.ctx, e.d.view(), []bool{true, true, true}), hashName([]byte("/dirA")), 0)
	for i := range s {
		if s[i].start != want[i].start || s[i].stop != want[i].stop {
			t.Errorf("slice %d: %08x-%08x, want %08x-%08x", i, s[i].start, s[i].stop, want[i].start, want[i].stop)
		}
	}
	// Files inside land by the new layout; a nested mkdir is placed by
	// its own path.
	e.create(g, "x")
	if data, _ := e.where(g, "x"); len(data) != 1 || data[0] != e.hashedSub(g, "x") {
		t.Errorf("dirA/x on %v", data)
	}
	g2 := e.gfid()
	_, _, err = e.d.Mkdir(e.ctx, g, "sub", 0o755, 0, g2, nil)
	e.must(err, "mkdir dirA/sub")
	start := int(hashName([]byte("/dirA/sub")) % 3)
	order := []int{0, 1, 2} // names sort as indexes here
	first := order[start]
	v, _ := e.m[first].Xattr(g2, xattrLayout)
	if p, _ := parseSlice(v); p.start != 0 {
		t.Errorf("/dirA/sub's first range is not on subvolume %d (hash of the path)", first)
	}
	// Locks released: a second client's mkdir takes them at once.
	other := fop.WithCaller(e.ctx, &fop.Caller{LkOwner: []byte("other!!!")})
	e.must(fop.ErrOnly(e.m[hs].Entrylk(other, xdr.RootGFID, "dirA", domEntrySync, fop.EntrylkLockNB, entrylkWrite, nil)), "entry lock after mkdir")
	e.must(fop.ErrOnly(e.m[hs].Entrylk(other, xdr.RootGFID, "dirA", domEntrySync, fop.EntrylkUnlock, entrylkWrite, nil)), "entry unlock")
	e.must(fop.ErrOnly(e.m[hs].Inodelk(other, xdr.RootGFID, domLayoutHeal, fop.LkSet, xdr.Flock{Type: fop.LkWrite}, nil)), "layout lock after mkdir")
	e.must(fop.ErrOnly(e.m[hs].Inodelk(other, xdr.RootGFID, domLayoutHeal, fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil)), "layout unlock")
	if _, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "dirA", 0o755, 0, e.gfid(), nil); fop.Errno(err) != syscall.EEXIST {
		t.Errorf("mkdir of an existing name: %v, want EEXIST", err)
	}
}

// A stale parent layout (another client rewrote it) makes the brick
// refuse the create; the layer reads the layout again and places the
// name by the new one.
func TestCreateStaleLayout(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm") // the root layout is now cached
	// Another client swaps the two ranges.
	var s [2]slice
	for i, m := range e.m {
		v, _ := m.Xattr(xdr.RootGFID, xattrLayout)
		s[i], _ = parseSlice(v)
	}
	s[0].start, s[0].stop, s[1].start, s[1].stop = s[1].start, s[1].stop, s[0].start, s[0].stop
	for i, m := range e.m {
		e.must(fop.ErrOnly(m.Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrLayout, xdr.Ptr(s[i].encode())), 0, nil)), "swap")
	}
	for k := 0; k < 8; k++ {
		name := fmt.Sprintf("after%d", k)
		e.create(xdr.RootGFID, name)
		if data, _ := e.where(xdr.RootGFID, name); len(data) != 1 || data[0] != e.hashedSub(xdr.RootGFID, name) {
			t.Errorf("%s on %v, want %d by the new layout", name, data, e.hashedSub(xdr.RootGFID, name))
		}
	}
}

// Renames leave what DHT leaves (§8.7): the data stays where it is, a
// linkto file for the new name sits where the new name hashes, no old
// name or stale linkto stays, and every name reads the same file.
func TestRename(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	// Find names hashing to each subvolume.
	on := [2][]string{}
	for k := 0; len(on[0]) < 4 || len(on[1]) < 4; k++ {
		n := fmt.Sprintf("n%d", k)
		h := e.hashedSub(xdr.RootGFID, n)
		on[h] = append(on[h], n)
	}
	check := func(name string, g xdr.GFID, dataOn int) {
		t.Helper()
		data, links := e.where(xdr.RootGFID, name)
		hs := e.hashedSub(xdr.RootGFID, name)
		if len(data) != 1 || data[0] != dataOn {
			t.Errorf("%s: data on %v, want %d", name, data, dataOn)
		}
		wantLinks := []int(nil)
		if hs != dataOn {
			wantLinks = []int{hs}
		}
		if fmt.Sprint(links) != fmt.Sprint(wantLinks) {
			t.Errorf("%s: linktos on %v, want %v", name, links, wantLinks)
		}
		for _, i := range links {
			x, _ := e.m[i].Xattr(g, xattrLinkto)
			if string(x) != e.d.subName(dataOn)+"\x00" {
				t.Errorf("%s: linkto on %d names %q", name, i, x)
			}
		}
		st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
		if err != nil || st.GFID != g {
			t.Errorf("lookup %s: %v %v, want %s", name, st.GFID, err, g)
		}
	}
	gone := func(name string) {
		t.Helper()
		if data, links := e.where(xdr.RootGFID, name); len(data)+len(links) != 0 {
			t.Errorf("%s still on %v, linktos %v", name, data, links)
		}
	}
	// Across subvolumes: a0 (on 0) -> b0 (hashes to 1).
	a0, b0 := on[0][0], on[1][0]
	g := e.create(xdr.RootGFID, a0)
	_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, a0, xdr.RootGFID, b0, nil)
	e.must(err, "rename across")
	gone(a0)
	check(b0, g, 0)
	// Again, from a linked name to a name hashing back home: the linkto
	// goes.
	a1 := on[0][1]
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, b0, xdr.RootGFID, a1, nil)
	e.must(err, "rename home")
	gone(b0)
	check(a1, g, 0)
	// Linked name to another name hashing away.
	b1, b2 := on[1][1], on[1][2]
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, a1, xdr.RootGFID, b1, nil)
	e.must(err, "rename away")
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, b1, xdr.RootGFID, b2, nil)
	e.must(err, "rename between linked names")
	gone(b1)
	check(b2, g, 0)
	// Over an existing file on the other subvolume: its data goes.
	b3 := on[1][3]
	victim := e.create(xdr.RootGFID, b3)
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, b2, xdr.RootGFID, b3, nil)
	e.must(err, "rename over")
	gone(b2)
	check(b3, g, 0)
	for _, m := range e.m {
		if _, ok := m.Data(victim); ok {
			t.Errorf("the replaced file's data is still on %s", m.Name())
		}
	}
	// Unlink removes the data and the linkto.
	_, err = e.d.Unlink(e.ctx, xdr.RootGFID, b3, nil)
	e.must(err, "unlink")
	gone(b3)
	// Hard links: the new name gets a linkto where it hashes.
	g = e.create(xdr.RootGFID, on[0][2])
	_, _, err = e.d.Link(e.ctx, g, xdr.RootGFID, on[1][0], nil)
	e.must(err, "link")
	check(on[0][2], g, 0)
	check(on[1][0], g, 0)
}

// A directory renamed keeps its gfid on every subvolume.
func TestRenameDir(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "d1", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	e.create(g, "inside")
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, "d1", xdr.RootGFID, "d2", nil)
	e.must(err, "rename dir")
	for _, m := range e.m {
		st, _, err := m.Lookup(e.ctx, xdr.RootGFID, "d2", xdr.GFID{}, nil)
		if err != nil || st.GFID != g {
			t.Errorf("d2 on %s: %v %v", m.Name(), st.GFID, err)
		}
		if _, _, err := m.Lookup(e.ctx, xdr.RootGFID, "d1", xdr.GFID{}, nil); err == nil {
			t.Errorf("d1 still on %s", m.Name())
		}
	}
	if _, _, err := e.d.Lookup(e.ctx, g, "inside", xdr.GFID{}, nil); err != nil {
		t.Errorf("file inside the renamed directory: %v", err)
	}
}

// readdir lists every entry once: files from where their data is,
// directories once, linkto files never, across pages and subvolumes.
func TestReaddirp(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	want := map[string]bool{}
	for k := 0; k < 150; k++ {
		n := fmt.Sprintf("f%03d", k)
		e.create(xdr.RootGFID, n)
		want[n] = true
	}
	for k := 0; k < 5; k++ {
		n := fmt.Sprintf("d%d", k)
		_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, n, 0o755, 0, e.gfid(), nil)
		e.must(err, "mkdir")
		want[n] = true
	}
	// Renames leave linkto files, which must not show.
	for k := 0; k < 20; k++ {
		from, to := fmt.Sprintf("f%03d", k), fmt.Sprintf("r%03d", k)
		_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, from, xdr.RootGFID, to, nil)
		e.must(err, "rename")
		delete(want, from)
		want[to] = true
	}
	want["."], want[".."] = true, true
	f, _, err := e.d.Opendir(e.ctx, xdr.RootGFID, nil)
	e.must(err, "opendir")
	defer e.d.Release(e.ctx, f)
	seen := map[string]int{}
	var off uint64
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("readdir does not end")
		}
		ents, eof, _, err := e.d.Readdirp(e.ctx, f, off, 4096, nil)
		e.must(err, "readdirp")
		for _, en := range ents {
			seen[en.Name]++
			off = en.Off
			if en.Stat.Mode&07777 == syscall.S_ISVTX {
				t.Errorf("linkto file %s listed", en.Name)
			}
		}
		if eof {
			break
		}
	}
	var extra, dup, lost []string
	for n, c := range seen {
		if !want[n] {
			extra = append(extra, n)
		}
		if c > 1 {
			dup = append(dup, n)
		}
	}
	for n := range want {
		if seen[n] == 0 {
			lost = append(lost, n)
		}
	}
	sort.Strings(extra)
	sort.Strings(dup)
	sort.Strings(lost)
	if len(extra)+len(dup)+len(lost) > 0 {
		t.Errorf("readdir: extra %v, listed twice %v, missing %v", extra, dup, lost)
	}
}

// rmdir: a directory with a file on any subvolume is not empty, and
// nothing is removed; one holding only linkto files is removed
// everywhere, linktos included.
func TestRmdir(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "d", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	e.create(g, "f")
	if _, err := e.d.Rmdir(e.ctx, xdr.RootGFID, "d", 0, nil); fop.Errno(err) != syscall.ENOTEMPTY {
		t.Fatalf("rmdir of a non-empty directory: %v, want ENOTEMPTY", err)
	}
	for _, m := range e.m {
		if _, _, err := m.Lookup(e.ctx, xdr.RootGFID, "d", xdr.GFID{}, nil); err != nil {
			t.Fatalf("a failed rmdir removed d from %s", m.Name())
		}
	}
	_, err = e.d.Unlink(e.ctx, g, "f", nil)
	e.must(err, "unlink")
	// A linkto file another client left behind.
	data := e.create(g, "stale")
	hs := e.hashedSub(g, "stale")
	_, err = e.m[hs].Unlink(e.ctx, g, "stale", nil)
	e.must(err, "drop data")
	e.must(e.d.linkto(e.ctx, hs, 1-hs, g, "stale", data, xdr.Iatt{}, nil), "stale linkto")
	_, err = e.d.Rmdir(e.ctx, xdr.RootGFID, "d", 0, nil)
	e.must(err, "rmdir")
	for _, m := range e.m {
		if _, _, err := m.Lookup(e.ctx, xdr.RootGFID, "d", xdr.GFID{}, nil); err == nil {
			t.Errorf("d is still on %s", m.Name())
		}
	}
}

// A stale linkto file (its data gone) is removed by the lookup that finds
// it, unless it is open.
func TestStaleLinkto(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	var name string
	for k := 0; ; k++ {
		name = fmt.Sprintf("s%d", k)
		if e.hashedSub(xdr.RootGFID, name) == 0 {
			break
		}
	}
	lg := e.gfid()
	e.must(e.d.linkto(e.ctx, 0, 1, xdr.RootGFID, name, lg, xdr.Iatt{}, nil), "linkto")
	// Open somewhere (a migration in progress, say): left alone.
	f, _, err := e.m[0].Open(e.ctx, lg, uint32(syscall.O_RDONLY), nil)
	e.must(err, "open the linkto")
	if _, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOENT {
		t.Fatalf("lookup of a stale linkto: %v, want ENOENT", err)
	}
	if _, links := e.where(xdr.RootGFID, name); len(links) != 1 {
		t.Errorf("an open linkto file was removed")
	}
	e.must(e.m[0].Release(e.ctx, f), "close")
	if _, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOENT {
		t.Fatalf("lookup of a stale linkto: %v, want ENOENT", err)
	}
	if _, links := e.where(xdr.RootGFID, name); len(links) != 0 {
		t.Errorf("stale linkto left on %v", links)
	}
}

// A directory made while a subvolume was down is made there, and its
// layout completed, by the lookup after the subvolume is back.
func TestDirHeal(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	// A name hashing to subvolume 0, made while 1 is down.
	var name string
	for k := 0; ; k++ {
		name = fmt.Sprintf("dir%d", k)
		if e.hashedSub(xdr.RootGFID, name) == 0 {
			break
		}
	}
	e.m[1].SetDown(true)
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, name, 0o750, 0, g, nil)
	e.must(err, "mkdir with a subvolume down")
	// While down, names of the new directory all go to subvolume 0.
	e.create(g, "early")
	e.m[1].SetDown(false)
	e.d.forget(g)
	st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	e.must(err, "lookup after")
	if st.GFID != g {
		t.Fatalf("gfid %s, want %s", st.GFID, g)
	}
	mst, _, err := e.m[1].Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	if err != nil || mst.GFID != g || mst.Mode&07777 != 0o750 {
		t.Fatalf("directory on the subvolume that was down: %v %o %v", mst.GFID, mst.Mode, err)
	}
	if _, _, err := e.d.Lookup(e.ctx, g, "early", xdr.GFID{}, nil); err != nil {
		t.Errorf("file made while a subvolume was down: %v", err)
	}
}

// A subvolume down: files elsewhere keep working, names that hash to it
// fail with ENOTCONN, nothing is half made.
func TestSubvolumeDown(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	var on0, on1 string
	for k := 0; on0 == "" || on1 == ""; k++ {
		n := fmt.Sprintf("v%d", k)
		if e.hashedSub(xdr.RootGFID, n) == 0 {
			on0 = n
		} else {
			on1 = n
		}
	}
	g0 := e.create(xdr.RootGFID, on0)
	e.create(xdr.RootGFID, on1)
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "empty", 0o755, 0, e.gfid(), nil)
	e.must(err, "mkdir")
	e.m[1].SetDown(true)
	f, _, err := e.d.Open(e.ctx, g0, uint32(syscall.O_RDWR), nil)
	e.must(err, "open on the live subvolume")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("still here"), nil)
	e.must(err, "write on the live subvolume")
	e.must(e.d.Release(e.ctx, f), "release")
	if _, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, on1, xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("lookup of a file on the down subvolume: %v, want ENOTCONN", err)
	}
	if _, _, _, err := e.d.Create(e.ctx, xdr.RootGFID, on1+"x", 0, 0o644, 0, e.gfid(), nil); err == nil && e.hashedSub(xdr.RootGFID, on1+"x") == 1 {
		t.Errorf("create of a name hashing to the down subvolume succeeded")
	}
	if _, err := e.d.Rmdir(e.ctx, xdr.RootGFID, "empty", 0, nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("rmdir of an empty directory with a subvolume down: %v, want ENOTCONN", err)
	}
	st, _, err := e.d.Statfs(e.ctx, xdr.RootGFID, nil)
	e.must(err, "statfs with a subvolume down")
	if st.Blocks != 262144 {
		t.Errorf("statfs with one of two down: %d blocks, want one subvolume's", st.Blocks)
	}
	e.m[1].SetDown(false)
	st, _, err = e.d.Statfs(e.ctx, xdr.RootGFID, nil)
	e.must(err, "statfs")
	if st.Blocks != 2*262144 {
		t.Errorf("statfs: %d blocks, want the sum", st.Blocks)
	}
}

// The layer meets the fop contract every brick and layer meets.
func TestContract(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	t.Cleanup(func() {
		if t.Failed() {
			for _, m := range e.m {
				t.Logf("%s: root %v d %v", m.Name(), m.Names(xdr.RootGFID), m.Names(foptest.GFID(3)))
			}
		}
	})
	foptest.Contract(t, e.d)
}

// Every fop of the table is carried out by the layer itself (the
// compiler checks the set; this checks nothing passes by embedding).
var _ fop.Subvolume = (*DHT)(nil)

// A rename over a file on the same subvolume, where the new name hashes
// elsewhere, leaves the new name a linkto file where it hashes (as
// dht_rename_cbk makes it): without it, a lookup trusting the layout
// would not find the file.
func TestRenameSameSubvolumeKeepsLinkto(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	var on0 []string
	var on1 string
	for k := 0; len(on0) < 2 || on1 == ""; k++ {
		n := fmt.Sprintf("q%d", k)
		if e.hashedSub(xdr.RootGFID, n) == 0 {
			on0 = append(on0, n)
		} else if on1 == "" {
			on1 = n
		}
	}
	ga := e.create(xdr.RootGFID, on0[0])
	e.create(xdr.RootGFID, on0[1])
	_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, on0[1], xdr.RootGFID, on1, nil)
	e.must(err, "rename to a name hashing away")
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, on0[0], xdr.RootGFID, on1, nil)
	e.must(err, "rename over it")
	data, links := e.where(xdr.RootGFID, on1)
	if fmt.Sprint(data) != "[0]" || fmt.Sprint(links) != "[1]" {
		t.Fatalf("%s: data on %v, linktos on %v; want data on 0, a linkto on 1", on1, data, links)
	}
	if x, _ := e.m[1].Xattr(ga, xattrLinkto); string(x) != "v-replicate-0\x00" {
		t.Errorf("the linkto names %q", x)
	}
	// A fresh client (nothing cached) finds it through the layout.
	d2, err := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), zaptest.NewLogger(t))
	e.must(err, "second client")
	st, _, err := d2.Lookup(e.ctx, xdr.RootGFID, on1, xdr.GFID{}, nil)
	if err != nil || st.GFID != ga {
		t.Errorf("lookup from another client: %v %v, want %s", st.GFID, err, ga)
	}
}

// Readdir offsets survive the round trip, stay positive for lseek, and
// the end-of-directory offset a brick gives its last entry moves on to
// the next subvolume.
func TestReaddirOffsets(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	d := e.d
	for _, c := range []struct {
		sub int
		off uint64
	}{{0, 1}, {2, 12345}, {1, 1<<60 + 7}, {2, 1<<62 + 5}, {0, 1<<63 - 2}} {
		enc := d.encodeOff(c.sub, c.off)
		if enc >= 1<<63 {
			t.Errorf("(%d, %#x) encodes as %#x, negative for lseek", c.sub, c.off, enc)
		}
		sub, off, ok := d.decodeOff(enc)
		if !ok || sub != c.sub || off != c.off {
			t.Errorf("(%d, %#x) -> %#x -> (%d, %#x, %v)", c.sub, c.off, enc, sub, off, ok)
		}
	}
	if sub, off, ok := d.decodeOff(d.encodeOff(0, eofOff)); !ok || sub != 1 || off != 0 {
		t.Errorf("end of subvolume 0 continues at (%d, %d, %v), want (1, 0)", sub, off, ok)
	}
	if sub, _, ok := d.decodeOff(d.encodeOff(2, eofOff)); !ok || sub != 3 {
		t.Errorf("end of the last subvolume decodes as %d %v, want the end", sub, ok)
	}
	if _, _, ok := d.decodeOff(1<<63 | 1); ok {
		t.Errorf("a negative offset was accepted")
	}
	// The same brick offset always gives the same offset (the kernel
	// and seekdir compare them), and one forgotten decodes to the
	// approximation GlusterFS uses.
	big := uint64(1<<62 + 0x123456789)
	a, b := d.encodeOff(1, big), d.encodeOff(1, big)
	if a != b {
		t.Errorf("brick offset %#x encoded as %#x, then %#x", big, a, b)
	}
	d.big.mu.Lock()
	d.big.exact = nil
	d.big.mu.Unlock()
	if sub, off, ok := d.decodeOff(a); !ok || sub != 1 || off != big&^(1<<(subBits+1)-1) {
		t.Errorf("forgotten %#x decodes as (%d, %#x, %v), want (1, %#x)", a, sub, off, ok, big&^(1<<(subBits+1)-1))
	}
}

// mknod and symlink carry no parent-layout check: a posix brick checks
// it only on create and mkdir, and would store the keys on the new file
// (and, the preop key being no xattr name, stop there, dropping the
// caller's own xattrs, such as a shard marker's size).
func TestMknodNoPreop(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	for k := 0; k < 6; k++ {
		n := fmt.Sprintf("node%d", k)
		xd := xdr.Dict{{Key: "trusted.mine", Value: xdr.Ptr([]byte("v"))}}
		st, _, err := e.d.Mknod(e.ctx, xdr.RootGFID, n, syscall.S_IFREG, 0, 0o644, e.gfid(), xd)
		e.must(err, "mknod")
		sub := e.hashedSub(xdr.RootGFID, n)
		if _, ok := e.m[sub].Xattr(st.GFID, xattrLayout); ok {
			t.Errorf("mknod %s stored the parent's layout on the file", n)
		}
		if v, ok := e.m[sub].Xattr(st.GFID, "trusted.mine"); !ok || string(v) != "v" {
			t.Errorf("mknod %s lost the caller's xattr", n)
		}
		st, _, err = e.d.Symlink(e.ctx, xdr.RootGFID, "sym"+n, "x", 0, e.gfid(), nil)
		e.must(err, "symlink")
		if _, ok := e.m[e.hashedSub(xdr.RootGFID, "sym"+n)].Xattr(st.GFID, xattrLayout); ok {
			t.Errorf("symlink %s stored the parent's layout on the link", n)
		}
	}
}

// A miss on the hashed subvolume is trusted (lookup-optimize) only from
// a layout read lately: after another client's fix-layout moved the
// ranges, a name made since by the new layout is found.
func TestStaleLayoutMiss(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "d", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	e.create(g, "warm") // d's layout is cached, commit == the volume's
	e.swapLayout(g, nil)
	// Another client makes x where the new layout puts it.
	sub := e.hashedSub(g, "x")
	_, _, err = e.m[sub].Mknod(e.ctx, g, "x", syscall.S_IFREG|0o644, 0, 0, e.gfid(), nil)
	e.must(err, "other client's mknod")
	e.d.ttl = 0 // the cached layout is now "old"
	if _, _, err := e.d.Lookup(e.ctx, g, "x", xdr.GFID{}, nil); err != nil {
		t.Errorf("lookup of a name made by the new layout: %v", err)
	}
}

// user.brickfs.subvolume names the subvolume holding a file's data,
// also after a rename left it on another one than its name hashes to;
// a directory has none.
func TestXattrSubvolume(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	if _, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, "nothing", xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOENT {
		t.Fatal(err)
	}
	for i := range 12 {
		name := fmt.Sprintf("f%d", i)
		g := e.create(xdr.RootGFID, name)
		if i%2 == 1 {
			_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, name, xdr.RootGFID, name+"-moved", nil)
			e.must(err, "rename")
			name += "-moved"
		}
		data, _ := e.where(xdr.RootGFID, name)
		v, _, err := e.d.Getxattr(e.ctx, g, fop.XattrSubvolume, nil)
		e.must(err, "getxattr")
		got, _ := v.Bytes(fop.XattrSubvolume)
		if len(data) != 1 || strings.TrimRight(string(got), "\x00") != e.m[data[0]].Name() {
			t.Errorf("%s: data on %v, xattr says %q", name, data, got)
		}
	}
	if _, _, err := e.d.Getxattr(e.ctx, xdr.RootGFID, fop.XattrSubvolume, nil); fop.Errno(err) != syscall.ENODATA {
		t.Errorf("a directory's subvolume: %v, want ENODATA", err)
	}
}

// The layer's figures: subvolumes up, inodes known.
func TestDHTStats(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	e.create(xdr.RootGFID, "f")
	if s := e.d.Stats(); s.Subvolumes != 3 || s.SubvolumesUp != 3 || s.Inodes == 0 || s.Migrations != 0 {
		t.Errorf("all up: %+v", s)
	}
	e.m[1].SetDown(true)
	if s := e.d.Stats(); s.SubvolumesUp != 2 {
		t.Errorf("one down: %+v", s)
	}
}

// A file away from where its name hashes, with no linkto file there,
// under a layout carrying the volume's commit hash (what a rebalance
// leaves, for a moment or, when its daemons disagreed on the layout, for
// good): a lookup trusts the miss and answers ENOENT, though the directory
// lists the file. Listing it makes the linkto file, and the name is found
// again. A stray with its linkto file costs the listing no call; under a
// layout lookups do not trust (a fix-layout without a rebalance) a
// listing makes none (a listing reads the root's commit hash again when
// it starts, and so sees a rebalance that laid the directory out again
// since brickfs last read it); with the hashed subvolume gone after its copy was
// listed, the listing still works.
func TestReaddirLinksStrays(t *testing.T) {
	for _, c := range []string{"committed", "rebalanced", "uncommitted", "linked", "down"} {
		t.Run(c, func(t *testing.T) {
			e := newEnv(t, 2, DefaultOptions())
			switch c {
			case "uncommitted", "rebalanced":
				e.d.ttl = 0 // every check reads the layouts again
			case "down":
				e.d.ttl = time.Hour // no listing reads them again
			}
			g := e.gfid()
			_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "d", 0o755, 0, g, nil)
			e.must(err, "mkdir")
			if c == "uncommitted" || c == "rebalanced" {
				// A rebalance started (the root's commit hash moved on)
				// and has not settled d.
				for i := range e.m {
					e.must(fop.ErrOnly(e.m[i].Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrCommitHash, xdr.Str("77")), 0, nil)), "commit hash")
				}
			}
			if c == "rebalanced" {
				// ... and has: d laid out again (its ranges swapped) and
				// committed, behind the back of brickfs, which still
				// holds d's old layout and the old commit hash.
				commit := uint32(77)
				e.swapLayout(g, &commit)
			}
			var name, other string
			for k := 0; name == "" || other == ""; k++ {
				n := fmt.Sprintf("disk%02d.img", k)
				switch e.hashedSub(g, n) {
				case 1:
					if name == "" {
						name = n
					}
				case 0:
					if other == "" {
						other = n
					}
				}
			}
			fg := e.gfid()
			if c == "linked" {
				// A rename leaves the data where it was and a linkto
				// file where the new name hashes.
				e.create(g, other)
				_, _, err := e.d.Rename(e.ctx, g, other, g, name, nil)
				e.must(err, "rename")
				st, _, err := e.d.Lookup(e.ctx, g, name, xdr.GFID{}, nil)
				e.must(err, "lookup")
				fg = st.GFID
			} else {
				_, _, err = e.m[0].Mknod(e.ctx, g, name, syscall.S_IFREG|0o640, 0, 0, fg, nil)
				e.must(err, "the daemon's migration, by its own layout")
				_, _, _, err = e.m[0].Setattr(e.ctx, fg, &xdr.Iatt{UID: 107, GID: 107}, fop.SetAttrUID|fop.SetAttrGID, nil)
				e.must(err, "chown")
			}
			data, links := e.where(g, name)
			if fmt.Sprint(data) != "[0]" {
				t.Fatalf("before the listing: data on %v, want [0]", data)
			}
			if c == "committed" {
				if _, _, err := e.d.Lookup(e.ctx, g, name, xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOENT {
					t.Fatalf("lookup before the listing: %v, want ENOENT (a miss the layout says is final)", err)
				}
			}
			f, _, err := e.d.Opendir(e.ctx, g, nil)
			e.must(err, "opendir")
			if c == "down" {
				// Gone after it listed its copy: its lookups fail (the
				// layouts are read lately enough not to be read again).
				e.m[1].Refuse("LOOKUP", syscall.ENOTCONN)
			}
			defer e.d.Release(e.ctx, f)
			// list lists d from the start, and returns how many lookups
			// the bricks saw meanwhile.
			list := func() int {
				t.Helper()
				lookups := e.m[0].Calls("LOOKUP") + e.m[1].Calls("LOOKUP")
				listed := false
				for off, eof := uint64(0), false; !eof; {
					var ents []fop.Dirent
					ents, eof, _, err = e.d.Readdirp(e.ctx, f, off, 4096, nil)
					e.must(err, "readdirp")
					for _, en := range ents {
						listed = listed || en.Name == name
						off = en.Off
					}
				}
				if !listed {
					t.Fatalf("%s not listed", name)
				}
				return e.m[0].Calls("LOOKUP") + e.m[1].Calls("LOOKUP") - lookups
			}
			lookups := list()
			if c == "down" {
				e.m[1].Refuse("LOOKUP", 0)
			}
			data, links = e.where(g, name)
			switch c {
			case "uncommitted", "down":
				if len(links) != 0 {
					t.Errorf("the listing made linkto files on %v", links)
				}
				if c == "down" && lookups != 1 {
					t.Errorf("the listing made %d lookups; want 1, on the hashed subvolume, refused", lookups)
				}
				return
			case "linked":
				if lookups != 0 || fmt.Sprint(links) != "[1]" {
					t.Errorf("a stray with its linkto file: the listing made %d lookups, linkto files on %v", lookups, links)
				}
				return
			}
			if fmt.Sprint(data) != "[0]" || fmt.Sprint(links) != "[1]" {
				t.Fatalf("after the listing: data on %v, linkto files on %v; want data on [0], a linkto on [1]", data, links)
			}
			st, x, err := e.m[1].Lookup(e.ctx, g, name, xdr.GFID{}, xdr.Dict{}.With(xattrLinkto, xdr.Uint(256)))
			e.must(err, "linkto lookup")
			if to, _ := x.Bytes(xattrLinkto); st.GFID != fg || strings.TrimRight(string(to), "\x00") != "v-replicate-0" || st.UID != 107 {
				t.Errorf("linkto file: gfid %s (want %s), target %q, uid %d", st.GFID, fg, to, st.UID)
			}
			if st, _, err := e.d.Lookup(e.ctx, g, name, xdr.GFID{}, nil); err != nil || st.GFID != fg {
				t.Errorf("lookup after the listing: %s, %v; want %s", st.GFID, err, fg)
			}
			// Listed again from the start (rewinddir), the file and its
			// new linkto file match: no call.
			// (With ttl 0, "rebalanced" reads the root's and d's
			// layouts again at the start, from both subvolumes.)
			want := map[string]int{"committed": 0, "rebalanced": 4}[c]
			if n := list(); n != want {
				t.Errorf("listed again: %d lookups, want %d", n, want)
			}
		})
	}
}
