package dht

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

func namesOn(e *env, dir xdr.GFID, want int, n int, prefix string) []string {
	var out []string
	for k := 0; len(out) < n; k++ {
		s := fmt.Sprintf("%s%d", prefix, k)
		if e.hashedSub(dir, s) == want {
			out = append(out, s)
		}
	}
	return out
}

// rename of a directory over a non-empty directory whose entries sit
// on a subvolume other than the new name's hashed one.
func TestRenameDirOverNonEmpty(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	src, dst := e.gfid(), e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "srcdir", 0o755, 0, src, nil)
	e.must(err, "mkdir src")
	_, _, err = e.d.Mkdir(e.ctx, xdr.RootGFID, "dstdir", 0o755, 0, dst, nil)
	e.must(err, "mkdir dst")
	dh := e.hashedSub(xdr.RootGFID, "dstdir")
	// a file in dstdir that lives on the other subvolume
	name := namesOn(e, dst, 1-dh, 1, "f")[0]
	e.create(dst, name)
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, "srcdir", xdr.RootGFID, "dstdir", nil)
	t.Logf("rename srcdir -> non-empty dstdir: err=%v", err)
	for i, m := range e.m {
		st, _, err1 := m.Lookup(e.ctx, xdr.RootGFID, "dstdir", xdr.GFID{}, nil)
		_, _, err2 := m.Lookup(e.ctx, xdr.RootGFID, "srcdir", xdr.GFID{}, nil)
		t.Logf("sub %d: dstdir gfid %v (%v) srcdir present=%v", i, st.GFID, err1, err2 == nil)
	}
	if fop.Errno(err) != syscall.ENOTEMPTY {
		t.Errorf("rename over a non-empty directory: %v, want ENOTEMPTY", err)
	}
	for i, m := range e.m {
		st, _, err1 := m.Lookup(e.ctx, xdr.RootGFID, "dstdir", xdr.GFID{}, nil)
		st2, _, err2 := m.Lookup(e.ctx, xdr.RootGFID, "srcdir", xdr.GFID{}, nil)
		if err1 != nil || st.GFID != dst || err2 != nil || st2.GFID != src {
			t.Errorf("subvolume %d: dstdir %v %v, srcdir %v %v; want both as they were", i, st.GFID, err1, st2.GFID, err2)
		}
	}
	e.d.forget(src)
	e.d.forget(dst)
	if _, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, "dstdir", xdr.GFID{}, nil); err != nil {
		t.Errorf("lookup dstdir after: %v", err)
	}
}

// the data's subvolume is down; the name's linkto is on an up one.
func TestLinktoTargetDown(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	a := namesOn(e, xdr.RootGFID, 0, 1, "a")[0]
	b := namesOn(e, xdr.RootGFID, 1, 1, "b")[0]
	e.create(xdr.RootGFID, a)
	_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, a, xdr.RootGFID, b, nil) // data on 0, linkto on 1
	e.must(err, "rename")
	e.m[0].SetDown(true)
	d2, _ := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), zaptest.NewLogger(t))
	_, _, err = d2.Lookup(e.ctx, xdr.RootGFID, b, xdr.GFID{}, nil)
	t.Logf("lookup of %s (data on a down subvol, linkto up): %v (errno %v)", b, err, fop.Errno(err))
	if fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("want ENOTCONN, got %v", fop.Errno(err))
	}
}

// opendir/readdir with one subvolume down.
func TestOpendirSubvolumeDown(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	for k := 0; k < 10; k++ {
		e.create(xdr.RootGFID, fmt.Sprintf("f%d", k))
	}
	e.m[1].SetDown(true)
	// A listing without one set would hide its files: refused, saying so.
	_, _, err := e.d.Opendir(e.ctx, xdr.RootGFID, nil)
	if fop.Errno(err) != syscall.ENOTCONN || !strings.Contains(err.Error(), "a listing needs every replica set") {
		t.Errorf("opendir / with one of two subvolumes down: %v", err)
	}
}

// ABBA on dht.file.migrate between two clients renaming a->b and b->a.
func TestRenameOppositeNoDeadlock(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	a := namesOn(e, xdr.RootGFID, 0, 1, "a")[0]
	b := namesOn(e, xdr.RootGFID, 1, 1, "b")[0]
	e.create(xdr.RootGFID, a)
	e.create(xdr.RootGFID, b)
	d2, _ := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), zaptest.NewLogger(t))
	e.m[0].Delay("INODELK", 100*time.Millisecond)
	e.m[1].Delay("INODELK", 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	go func() { _, _, err := e.d.Rename(ctx, xdr.RootGFID, a, xdr.RootGFID, b, nil); errs <- err }()
	go func() { _, _, err := d2.Rename(ctx, xdr.RootGFID, b, xdr.RootGFID, a, nil); errs <- err }()
	e1, e2 := <-errs, <-errs
	t.Logf("rename a->b: %v; rename b->a: %v; ctx: %v", e1, e2, ctx.Err())
	if ctx.Err() != nil {
		t.Errorf("deadlock: both renames waited until the deadline")
	}
}

// the source changed between resolve and the locks (another client
// renamed it away and made a new file with the old name).
func TestRenameSourceChangedUnderLocks(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	olds := namesOn(e, xdr.RootGFID, 0, 2, "o")
	old, other := olds[0], olds[1]
	newn := namesOn(e, xdr.RootGFID, 1, 1, "n")[0]
	g1 := e.create(xdr.RootGFID, old)
	base := e.m[0].Calls("INODELK")
	release := e.m[0].Hang("INODELK")
	done := make(chan error, 1)
	go func() { _, _, err := e.d.Rename(e.ctx, xdr.RootGFID, old, xdr.RootGFID, newn, nil); done <- err }()
	for deadline := time.Now().Add(5 * time.Second); e.m[0].Calls("INODELK") == base; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the rename never asked for its lock")
		}
	}
	// Another client: mv old other; create old.
	_, _, err := e.m[0].Rename(e.ctx, xdr.RootGFID, old, xdr.RootGFID, other, nil)
	e.must(err, "other client's rename")
	g2 := e.gfid()
	f, _, _, err := e.m[0].Create(e.ctx, xdr.RootGFID, old, uint32(syscall.O_RDWR|syscall.O_EXCL), 0o644, 0, g2, nil)
	e.must(err, "other client's create")
	e.m[0].Release(e.ctx, f)
	release()
	err = <-done
	t.Logf("rename: %v", err)
	_, _, errOld := e.m[0].Lookup(e.ctx, xdr.RootGFID, old, xdr.GFID{}, nil)
	_, _, errOther := e.m[0].Lookup(e.ctx, xdr.RootGFID, other, xdr.GFID{}, nil)
	_, okG2 := e.m[0].Data(g2)
	t.Logf("g1=%s g2=%s; %q on 0: %v; %q on 0: %v; g2 data present: %v", g1, g2, old, errOld, other, errOther, okG2)
	for i, m := range e.m {
		for _, n := range m.Names(xdr.RootGFID) {
			st, x, _ := m.Lookup(e.ctx, xdr.RootGFID, n, xdr.GFID{}, xdr.Dict{}.With(xattrLinkto, xdr.Uint(256)))
			t.Logf("sub %d: %s gfid %s linkto=%v", i, n, st.GFID, isLinkto(st, x))
		}
	}
	if !okG2 {
		t.Errorf("the other client's new file %q (%s) was deleted by a rename of the old one", old, g2)
	}
}

// A lookup racing another client's rmdir (non-hashed copies gone, the
// hashed one not yet) does not make the directory again: the rmdir holds
// the name's entry lock, and the heal waits for it and looks again.
func TestHealDoesNotUndoRmdir(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "gone", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	hs := e.hashedSub(xdr.RootGFID, "gone")
	// Another client's rmdir: its locks, then the non-hashed copy.
	other := fop.WithCaller(e.ctx, &fop.Caller{LkOwner: []byte("rmdir!!!")})
	e.must(fop.ErrOnly(e.m[hs].Entrylk(other, xdr.RootGFID, "gone", domEntrySync, fop.EntrylkLock, entrylkWrite, nil)), "rmdir's entry lock")
	_, err = e.m[1-hs].Rmdir(e.ctx, xdr.RootGFID, "gone", 0, nil)
	e.must(err, "rmdir non-hashed")
	// brickfs looks it up meanwhile (kernel revalidation).
	e.d.forget(g)
	base := e.m[hs].Calls("ENTRYLK")
	done := make(chan error, 1)
	go func() { _, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, "gone", xdr.GFID{}, nil); done <- err }()
	for deadline := time.Now().Add(5 * time.Second); e.m[hs].Calls("ENTRYLK") == base; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the lookup never asked for the name's entry lock before healing the directory")
		}
	}
	// The rmdir ends: the hashed copy, then its lock.
	_, err = e.m[hs].Rmdir(e.ctx, xdr.RootGFID, "gone", 0, nil)
	e.must(err, "rmdir hashed")
	e.must(fop.ErrOnly(e.m[hs].Entrylk(other, xdr.RootGFID, "gone", domEntrySync, fop.EntrylkUnlock, entrylkWrite, nil)), "unlock")
	t.Logf("lookup during the rmdir: %v", <-done)
	for i, m := range e.m {
		if _, _, err := m.Lookup(e.ctx, xdr.RootGFID, "gone", xdr.GFID{}, nil); err == nil {
			t.Errorf("the removed directory is back on subvolume %d", i)
		}
	}
}

// chmod of a directory while the copy reads go to is down; that copy
// comes back and is never healed.
func TestDirAttrsHealed(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "d", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	l, _ := e.d.layoutOf(e.ctx, g)
	first := l.first()
	e.m[first].SetDown(true)
	_, _, _, cerr := e.d.Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o700}, fop.SetAttrMode, nil)
	t.Logf("chmod 700 with subvol %d down: %v", first, cerr)
	e.m[first].SetDown(false)
	e.d.forget(g)
	_, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, "d", xdr.GFID{}, nil)
	e.must(err, "lookup")
	st, _, err2 := e.d.Stat(e.ctx, g, nil)
	t.Logf("stat after the subvolume is back: mode %o %v", st.Mode&07777, err2)
	switch {
	case cerr == nil && st.Mode&07777 != 0o700:
		t.Errorf("chmod succeeded but was lost: mode %o", st.Mode&07777)
	case cerr != nil && st.Mode&07777 != 0o755:
		t.Errorf("chmod failed but changed the mode to %o", st.Mode&07777)
	}
	// With another copy down, the chmod succeeds and reaches that copy
	// by the first lookup after it is back.
	other := 1 - first
	e.m[other].SetDown(true)
	_, _, _, err = e.d.Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o711}, fop.SetAttrMode, nil)
	e.must(err, "chmod with the other copy down")
	e.m[other].SetDown(false)
	_, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, "d", xdr.GFID{}, nil)
	e.must(err, "lookup")
	if mst, _, err := e.m[other].Stat(e.ctx, g, nil); err != nil || mst.Mode&07777 != 0o711 {
		t.Errorf("the copy that was down: mode %o %v, want 711", mst.Mode&07777, err)
	}
}

// place makes name with data on sub x (and a linkto where it hashes).
func (e *env) place(name string, x int) xdr.GFID {
	g := e.gfid()
	f, _, _, err := e.m[x].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR|syscall.O_EXCL), 0o644, 0, g, nil)
	e.must(err, "place")
	e.m[x].Write(e.ctx, f, 0, []byte(name), nil)
	e.m[x].Release(e.ctx, f)
	if h := e.hashedSub(xdr.RootGFID, name); h != x {
		e.must(e.d.linkto(e.ctx, h, x, xdr.RootGFID, name, g, xdr.Iatt{}, nil), "place linkto")
	}
	return g
}

func TestRenameMatrix(t *testing.T) {
	for sc := 0; sc < 3; sc++ {
		for sh := 0; sh < 3; sh++ {
			for dh := 0; dh < 3; dh++ {
				for dc := -1; dc < 3; dc++ {
					name := fmt.Sprintf("sc%d-sh%d-dh%d-dc%d", sc, sh, dh, dc)
					t.Run(name, func(t *testing.T) {
						e := newEnv(t, 3, DefaultOptions())
						e.create(xdr.RootGFID, "warm")
						src := namesOn(e, xdr.RootGFID, sh, 1, "s")[0]
						dst := namesOn(e, xdr.RootGFID, dh, 2, "d")[1]
						gs := e.place(src, sc)
						var gd xdr.GFID
						if dc >= 0 {
							gd = e.place(dst, dc)
						}
						e.d.inodes = map[xdr.GFID]*inode{xdr.RootGFID: e.d.inodes[xdr.RootGFID]}
						_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, src, xdr.RootGFID, dst, nil)
						if err != nil {
							t.Fatalf("rename: %v", err)
						}
						data, links := e.where(xdr.RootGFID, dst)
						if len(data) != 1 || data[0] != sc {
							t.Errorf("dst data on %v, want [%d]", data, sc)
						}
						if sc != dh && fmt.Sprint(links) != fmt.Sprint([]int{dh}) || sc == dh && len(links) != 0 {
							t.Errorf("dst linktos on %v (dh %d)", links, dh)
						}
						d1, l1 := e.where(xdr.RootGFID, src)
						if len(d1)+len(l1) != 0 {
							t.Errorf("src left: data %v links %v", d1, l1)
						}
						if dc >= 0 {
							for i, m := range e.m {
								if _, ok := m.Data(gd); ok {
									t.Errorf("replaced file's inode still on %d", i)
								}
							}
						}
						d2, _ := New("v-dht", []fop.Subvolume{e.m[0], e.m[1], e.m[2]}, DefaultOptions(), zaptest.NewLogger(t))
						st, _, err := d2.Lookup(e.ctx, xdr.RootGFID, dst, xdr.GFID{}, nil)
						if err != nil || st.GFID != gs {
							t.Errorf("fresh lookup: %v %v", st.GFID, err)
						}
					})
				}
			}
		}
	}
}

// O_CREAT without O_EXCL on a name whose data subvolume is down.
func TestCreateOverLinkto(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	a := namesOn(e, xdr.RootGFID, 0, 1, "a")[0]
	b := namesOn(e, xdr.RootGFID, 1, 1, "b")[0]
	g := e.create(xdr.RootGFID, a)
	_, _, err := e.d.Rename(e.ctx, xdr.RootGFID, a, xdr.RootGFID, b, nil) // data on 0, linkto on 1
	e.must(err, "rename")
	e.m[0].SetDown(true)
	_, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, b, xdr.GFID{}, nil)
	t.Logf("lookup: %v", fop.Errno(err))
	f, st, _, err := e.d.Create(e.ctx, xdr.RootGFID, b, uint32(syscall.O_WRONLY|syscall.O_APPEND), 0o644, 0, e.gfid(), nil)
	t.Logf("create without O_EXCL: gfid %s (data gfid %s) mode %o err %v", st.GFID, g, st.Mode, err)
	if err == nil {
		e.d.Release(e.ctx, f)
		t.Errorf("an fd was handed out while the data's subvolume is down")
	}
	// With it up, the create opens the data, not the linkto file.
	e.m[0].SetDown(false)
	f, st, _, err = e.d.Create(e.ctx, xdr.RootGFID, b, uint32(syscall.O_RDWR), 0o644, 0, e.gfid(), nil)
	e.must(err, "create over the linkto")
	if st.GFID != g {
		t.Errorf("create answered gfid %s, want the data's %s", st.GFID, g)
	}
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("data"), nil)
	e.must(err, "write")
	e.d.Release(e.ctx, f)
	if b0, _ := e.m[0].Data(g); string(b0) != "data" {
		t.Errorf("the data file holds %q", b0)
	}
	if b1, _ := e.m[1].Data(g); len(b1) != 0 {
		t.Errorf("the linkto file holds %q", b1)
	}
}

// An open file the rebalance daemon migrated (its copy turned into a
// linkto file, the data copied to another subvolume): a write through
// the fd opened before follows it there instead of landing in the linkto.
func TestWriteFollowsMigration(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	name := namesOn(e, xdr.RootGFID, 0, 1, "m")[0]
	g := e.create(xdr.RootGFID, name)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	defer e.d.Release(e.ctx, f)
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("before"), nil)
	e.must(err, "write before")
	// The rebalance daemon: data to subvolume 1, the old copy a linkto.
	nf, _, _, err := e.m[1].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	e.must(err, "copy")
	_, _, _, err = e.m[1].Write(e.ctx, nf, 0, []byte("before"), nil)
	e.must(err, "copy data")
	e.m[1].Release(e.ctx, nf)
	_, _, _, err = e.m[0].Truncate(e.ctx, g, 0, nil)
	e.must(err, "truncate source")
	e.must(fop.ErrOnly(e.m[0].Setxattr(e.ctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-1")), 0, nil)), "linkto xattr")
	_, _, _, err = e.m[0].Setattr(e.ctx, g, &xdr.Iatt{Mode: syscall.S_ISVTX}, fop.SetAttrMode, nil)
	e.must(err, "linkto mode")
	_, _, _, err = e.d.Write(e.ctx, f, 6, []byte(" after"), nil)
	e.must(err, "write after the migration")
	if b, _ := e.m[1].Data(g); string(b) != "before after" {
		t.Errorf("the migrated file holds %q, want %q", b, "before after")
	}
	got, _, err := e.d.Read(e.ctx, f, 0, 64, nil)
	if err != nil || string(got) != "before after" {
		t.Errorf("read through the fd: %q %v", got, err)
	}
}

// Lookups made under the namespace locks (a rename's second look) do not
// heal: the heal would take the same entry lock with another owner and
// wait for itself.
func TestNoHealUnderLocks(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "sd", 0o755, 0, g, nil)
	e.must(err, "mkdir")
	hs := e.hashedSub(xdr.RootGFID, "sd")
	_, err = e.m[1-hs].Rmdir(e.ctx, xdr.RootGFID, "sd", 0, nil) // a copy missing
	e.must(err, "drop a copy")
	e.d.forget(g)
	ls := e.d.newLocks(e.ctx)
	defer ls.release()
	e.must(ls.entrylk(hs, xdr.RootGFID, "sd", domEntrySync), "the rename's entry lock")
	done := make(chan error, 1)
	go func() { _, err := e.d.resolve(withLocksHeld(e.ctx), xdr.RootGFID, "sd", nil); done <- err }()
	select {
	case err := <-done:
		e.must(err, "lookup under the locks")
	case <-time.After(5 * time.Second):
		t.Fatal("a lookup under the rename's locks waits for those locks")
	}
}
