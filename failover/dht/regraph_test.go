package dht

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// A volume grows while mounted (add-brick): files stay where they are and
// are found, an open fd and a directory listing in progress go on, an
// existing directory gets a copy (without a range) on the new subvolume,
// a new directory gives it a range, and files hashing there land there.
func TestRegraphAdd(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	var names []string
	gfids := map[string]xdr.GFID{}
	for i := range 12 {
		n := fmt.Sprintf("f%02d", i)
		names = append(names, n)
		gfids[n] = e.create(xdr.RootGFID, n)
	}
	dir, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "dir", 0o755, 0, e.gfid(), nil)
	e.must(err, "mkdir dir")
	names = append([]string{"dir"}, names...)
	f, _, err := e.d.Open(e.ctx, gfids["f00"], uint32(syscall.O_RDWR), nil)
	e.must(err, "open f00")
	dfd, _, err := e.d.Opendir(e.ctx, xdr.RootGFID, nil)
	e.must(err, "opendir")
	ents, _, _, err := e.d.Readdirp(e.ctx, dfd, 0, 1, nil)
	e.must(err, "readdirp")
	if len(ents) == 0 {
		t.Fatal("no first entry")
	}
	listed := []fop.Dirent{ents[0]}

	m2 := foptest.NewMem("v-replicate-2")
	added, removed, err := e.d.Regraph([]fop.Subvolume{e.m[0], e.m[1], m2})
	e.must(err, "regraph")
	if !slices.Equal(added, []string{"v-replicate-2"}) || len(removed) != 0 {
		t.Fatalf("added %v removed %v", added, removed)
	}
	e.m = append(e.m, m2)

	// The listing goes on from where it was, each entry once.
	off := ents[0].Off
	for {
		ents, eof, _, err := e.d.Readdirp(e.ctx, dfd, off, 4096, nil)
		e.must(err, "readdirp after the change")
		listed = append(listed, ents...)
		if len(ents) > 0 {
			off = ents[len(ents)-1].Off
		}
		if eof || len(ents) == 0 {
			break
		}
	}
	var got []string
	for _, en := range listed {
		if en.Name != "." && en.Name != ".." {
			got = append(got, en.Name)
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, names) {
		t.Errorf("listing across the change: %v, want %v", got, names)
	}
	e.must(e.d.Release(e.ctx, dfd), "releasedir")

	// Every file is found; the open fd writes where the file is.
	for _, n := range names[1:] {
		st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, n, xdr.GFID{}, nil)
		if err != nil || st.GFID != gfids[n] {
			t.Errorf("lookup %s after add-brick: %v %v", n, st.GFID, err)
		}
	}
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("still"), nil)
	e.must(err, "write through an fd opened before the change")
	data, _ := e.where(xdr.RootGFID, "f00")
	if b, _ := e.m[data[0]].Data(gfids["f00"]); string(b) != "still" {
		t.Errorf("f00 holds %q", b)
	}
	e.must(e.d.Release(e.ctx, f), "release")

	// The old directory has a copy on the new subvolume, with no range
	// until fix-layout gives it one.
	_, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, "dir", xdr.GFID{}, nil)
	e.must(err, "lookup dir")
	if st, _, err := m2.Lookup(e.ctx, xdr.RootGFID, "dir", xdr.GFID{}, nil); err != nil || st.GFID != dir.GFID {
		t.Fatalf("dir on the new subvolume: %v %v", st.GFID, err)
	}
	if v, ok := m2.Xattr(dir.GFID, xattrLayout); ok {
		if s, _ := parseSlice(v); s.owns() {
			t.Errorf("the new copy of an old directory got range %#x-%#x before fix-layout", s.start, s.stop)
		}
	}

	// A new directory spreads over all three, and names hashing to the
	// new subvolume land there.
	nd, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "new", 0o755, 0, e.gfid(), nil)
	e.must(err, "mkdir new")
	landed := false
	for i := 0; i < 64 && !landed; i++ {
		n := fmt.Sprintf("g%d", i)
		if e.hashedSub(nd.GFID, n) != 2 {
			continue
		}
		e.create(nd.GFID, n)
		if d, _ := e.where(nd.GFID, n); slices.Equal(d, []int{2}) {
			landed = true
		} else {
			t.Fatalf("%s hashes to the new subvolume but its data is on %v", n, d)
		}
	}
	if !landed {
		t.Fatal("no name hashed to the new subvolume")
	}
	st, _, err := e.d.Statfs(e.ctx, xdr.RootGFID, nil)
	e.must(err, "statfs")
	one, _, _ := e.m[0].Statfs(e.ctx, xdr.RootGFID, nil)
	if st.Blocks != 3*one.Blocks {
		t.Errorf("statfs counts %d blocks, want three subvolumes' %d", st.Blocks, 3*one.Blocks)
	}
}

// A volume shrinks while mounted (remove-brick commit, after the rebalance
// daemon moved the files off): the subvolume that left is never asked
// again, and an fd opened on it finds its file where it was moved.
func TestRegraphRemove(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	on0, g := e.createOn(0)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("before"), nil)
	e.must(err, "write")

	// The rebalance daemon moves it to subvolume 1 and removes the old
	// copy; then the commit drops subvolume 0.
	nf, _, _, err := e.m[1].Create(e.ctx, xdr.RootGFID, on0, uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	e.must(err, "copy")
	_, _, _, err = e.m[1].Write(e.ctx, nf, 0, []byte("before"), nil)
	e.must(err, "copy data")
	e.must(e.m[1].Release(e.ctx, nf), "release copy")
	_, err = e.m[0].Unlink(e.ctx, xdr.RootGFID, on0, nil)
	e.must(err, "unlink source")
	_, removed, err := e.d.Regraph([]fop.Subvolume{e.m[1], e.m[2]})
	e.must(err, "regraph")
	if !slices.Equal(removed, []string{"v-replicate-0"}) {
		t.Fatalf("removed %v", removed)
	}
	lookups := e.m[0].Calls("LOOKUP")

	_, _, _, err = e.d.Write(e.ctx, f, 6, []byte("after"), nil)
	e.must(err, "write through an fd whose subvolume left")
	if b, _ := e.m[1].Data(g); string(b) != "beforeafter" {
		t.Errorf("the moved file holds %q", b)
	}
	b, _, err := e.d.Read(e.ctx, f, 0, 64, nil)
	if err != nil || string(b) != "beforeafter" {
		t.Errorf("read through the fd: %q %v", b, err)
	}
	e.must(e.d.Release(e.ctx, f), "release")

	// New directories and files use the subvolumes left; the layout
	// hole the removed one left is healed.
	nd, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "after", 0o755, 0, e.gfid(), nil)
	e.must(err, "mkdir after removal")
	for i := range 8 {
		e.create(nd.GFID, fmt.Sprintf("h%d", i))
	}
	for i := range 8 {
		e.create(xdr.RootGFID, fmt.Sprintf("r%d", i))
	}
	if n := e.m[0].Calls("LOOKUP"); n != lookups {
		t.Errorf("the removed subvolume was asked %d lookups after it left", n-lookups)
	}
	if _, _, err := e.m[0].Lookup(e.ctx, xdr.RootGFID, "after", xdr.GFID{}, nil); err == nil {
		t.Error("a directory was made on the removed subvolume")
	}
	if up := e.d.SubvolumesUp(); len(up) != 2 {
		t.Errorf("SubvolumesUp lists %d subvolumes, want 2", len(up))
	}
}

// Regraph refuses a list that reorders the subvolumes it keeps or lists
// one twice, and the layer goes on over what it had.
func TestRegraphRefusesReorder(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	if _, _, err := e.d.Regraph([]fop.Subvolume{e.m[1], e.m[0], e.m[2]}); err == nil {
		t.Fatal("a reordering was accepted")
	}
	if _, _, err := e.d.Regraph([]fop.Subvolume{e.m[0], e.m[0]}); err == nil {
		t.Fatal("a subvolume listed twice was accepted")
	}
	// Still working over the old three.
	if up := e.d.SubvolumesUp(); len(up) != 3 {
		t.Fatalf("after refused changes the layer has %d subvolumes", len(up))
	}
}

// A directory fd opened before add-brick keeps working once fix-layout
// gives the new subvolume hash 0 (where a directory's fd fops go first):
// the new subvolume has no copy open in that fd.
func TestRegraphDirFdAfterFixLayout(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	dfd, _, err := e.d.Opendir(e.ctx, xdr.RootGFID, nil)
	e.must(err, "opendir")
	m2 := foptest.NewMem("v-replicate-2")
	_, _, err = e.d.Regraph([]fop.Subvolume{e.m[0], e.m[1], m2})
	e.must(err, "regraph")
	e.m = append(e.m, m2)
	// fix-layout: the new subvolume owns the start of the hash space.
	for i, s := range []slice{{start: 0x55555556, stop: 0xaaaaaaaa}, {start: 0xaaaaaaab, stop: 0xffffffff}, {start: 0, stop: 0x55555555}} {
		s.has = true
		e.must(fop.ErrOnly(e.m[i].Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrLayout, xdr.Ptr(s.encode())), 0, nil)), "layout")
	}
	e.d.forgetAll()
	if _, _, err := e.d.Fstat(e.ctx, dfd, nil); err != nil {
		t.Errorf("fstat of a directory opened before the change: %v", err)
	}
	if _, err := e.d.Fsyncdir(e.ctx, dfd, false, nil); err != nil {
		t.Errorf("fsyncdir of a directory opened before the change: %v", err)
	}
	e.must(e.d.Release(e.ctx, dfd), "releasedir")
}

// A listing opened before a remove-brick commit goes on without the
// subvolume that left, and nothing it lists points there.
func TestRegraphRemoveDuringListing(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	for i := range 12 {
		e.create(xdr.RootGFID, fmt.Sprintf("f%02d", i))
	}
	dfd, _, err := e.d.Opendir(e.ctx, xdr.RootGFID, nil)
	e.must(err, "opendir")
	_, _, err = e.d.Regraph([]fop.Subvolume{e.m[1], e.m[2]})
	e.must(err, "regraph")
	before := e.m[0].Calls("READDIRP")
	var off uint64
	for {
		ents, eof, _, err := e.d.Readdirp(e.ctx, dfd, off, 4096, nil)
		e.must(err, "readdirp after the removal")
		if len(ents) > 0 {
			off = ents[len(ents)-1].Off
		}
		if eof || len(ents) == 0 {
			break
		}
	}
	if n := e.m[0].Calls("READDIRP") - before; n != 0 {
		t.Errorf("the listing read the removed subvolume %d times", n)
	}
	stayed := map[string]bool{}
	for i := range 12 {
		n := fmt.Sprintf("f%02d", i)
		if data, _ := e.where(xdr.RootGFID, n); len(data) == 1 && data[0] == 0 {
			stayed[n] = true // on the removed subvolume: gone from the volume
		}
	}
	stats := e.m[0].Calls("STAT") + e.m[0].Calls("LOOKUP")
	for i := range 12 {
		n := fmt.Sprintf("f%02d", i)
		if stayed[n] {
			continue
		}
		st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, n, xdr.GFID{}, nil)
		e.must(err, "lookup "+n)
		_, _, err = e.d.Stat(e.ctx, st.GFID, nil)
		e.must(err, "stat "+n)
	}
	if n := e.m[0].Calls("STAT") + e.m[0].Calls("LOOKUP") - stats; n != 0 {
		t.Errorf("the removed subvolume was asked %d times after the listing", n)
	}
	e.must(e.d.Release(e.ctx, dfd), "releasedir")
}

// forgetAll drops what the layer knows, as a Regraph does.
func (d *DHT) forgetAll() {
	d.mu.Lock()
	d.inodes = map[xdr.GFID]*inode{xdr.RootGFID: {dir: true, mds: -1}}
	d.mu.Unlock()
}

// A linkto file naming a subvolume the volume no longer has by that name
// (a remove-brick commit renumbers the replica sets) is pointed at the
// data by the lookup that finds the data everywhere.
func TestLinktoRepointed(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	g := e.create(xdr.RootGFID, "a")
	from, _ := e.where(xdr.RootGFID, "a")
	var to string
	for i := 0; to == ""; i++ {
		n := fmt.Sprintf("b%d", i)
		if e.hashedSub(xdr.RootGFID, n) != from[0] {
			to = n
		}
	}
	_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, "a", xdr.RootGFID, to, nil)
	e.must(err, "rename")
	data, links := e.where(xdr.RootGFID, to)
	if len(data) != 1 || len(links) != 1 {
		t.Fatalf("after the rename: data %v, linkto %v", data, links)
	}
	e.must(fop.ErrOnly(e.m[links[0]].Setxattr(e.ctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-9")), 0, nil)), "stale linkto")
	e.d.forgetAll()
	st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, to, xdr.GFID{}, nil)
	if err != nil || st.GFID != g {
		t.Fatalf("lookup through a stale linkto: %v %v", st.GFID, err)
	}
	if v, _ := e.m[links[0]].Xattr(g, xattrLinkto); strings.TrimRight(string(v), "\x00") != e.m[data[0]].Name() {
		t.Errorf("the linkto file names %q, want %q", v, e.m[data[0]].Name())
	}
}

// After a remove-brick commit, a file whose linkto file was on the removed
// subvolume has none where its name hashes now, though the layout carries
// the volume's commit hash: the miss is looked up everywhere (and the
// linkto file made) instead of trusted.
func TestRegraphRemoveDistrustsMisses(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	// The volume was rebalanced: the root's layout carries its commit hash.
	for i := range e.m {
		e.must(fop.ErrOnly(e.m[i].Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrCommitHash, xdr.Str("77")), 0, nil)), "commit hash")
	}
	third := []slice{{start: 0, stop: 0x55555554}, {start: 0x55555555, stop: 0xaaaaaaa9}, {start: 0xaaaaaaaa, stop: 0xffffffff}}
	for i, s := range third {
		s.has, s.commit = true, 77
		e.must(fop.ErrOnly(e.m[i].Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrLayout, xdr.Ptr(s.encode())), 0, nil)), "layout")
	}
	// A file on subvolume 2 whose name hashes to 0 after the removal of
	// 1 (whose range goes to 0 here), its linkto file having been on 1.
	var name string
	for i := 0; name == ""; i++ {
		n := fmt.Sprintf("n%d", i)
		if h := hashName([]byte(n)); h >= 0x55555555 && h <= 0xaaaaaaa9 {
			name = n
		}
	}
	g := e.gfid()
	nf, _, _, err := e.m[2].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	e.must(err, "data")
	e.must(e.m[2].Release(e.ctx, nf), "release")
	_, _, err = e.d.Regraph([]fop.Subvolume{e.m[0], e.m[2]})
	e.must(err, "regraph")
	two := []slice{{start: 0, stop: 0xaaaaaaa9}, {start: 0xaaaaaaaa, stop: 0xffffffff}}
	for j, i := range []int{0, 2} {
		s := two[j]
		s.has, s.commit = true, 77
		e.must(fop.ErrOnly(e.m[i].Setxattr(e.ctx, xdr.RootGFID, xdr.Dict{}.With(xattrLayout, xdr.Ptr(s.encode())), 0, nil)), "layout")
	}
	st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	if err != nil || st.GFID != g {
		t.Fatalf("lookup of a file whose linkto file left with its subvolume: %v %v", st.GFID, err)
	}
	if _, links := e.where(xdr.RootGFID, name); !slices.Equal(links, []int{0}) {
		t.Errorf("linkto files on %v, want one made on 0 where the name hashes now", links)
	}
}
