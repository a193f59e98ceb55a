package dht

import (
	"context"
	"fmt"
	"runtime"
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
	first := e.hashedSub(xdr.RootGFID, "d") // the mds copy
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
	e.migrate(name, g, "before")
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

// A directory with a copy missing that cannot be made (ENOSPC there):
// renaming it must not hang.
func TestRenameDirMissingCopyNoDeadlock(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	g := e.gfid()
	hs := e.hashedSub(xdr.RootGFID, "d")
	other := 1 - hs
	e.m[other].SetDown(true)
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "d", 0o755, 0, g, nil)
	e.must(err, "mkdir with other down")
	e.m[other].SetDown(false)
	e.m[other].Refuse("MKDIR", syscall.ENOSPC)
	e.d.forget(g)
	done := make(chan error, 1)
	go func() { _, _, err := e.d.Rename(e.ctx, xdr.RootGFID, "d", xdr.RootGFID, "d2", nil); done <- err }()
	select {
	case err := <-done:
		if fop.Errno(err) != syscall.EIO {
			t.Errorf("rename of a directory missing a copy: %v, want EIO", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatalf("rename of a directory with a missing copy hung (waiters on %d: %d)", hs, e.m[hs].Waiters())
	}
}

// newParent's layout goes stale (>ttl) while the rename waits for its
// locks and newParent has a copy missing: the re-resolve heals it and
// takes dht.layout.heal WRITE on newParent, which the rename holds READ.
func TestRenameStaleLayoutNoDeadlock(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.d.ttl = 50 * time.Millisecond
	e.create(xdr.RootGFID, "warm")
	p := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "p", 0o755, 0, p, nil)
	e.must(err, "mkdir p")
	e.create(xdr.RootGFID, "f")
	// p's copy on one subvolume vanishes (made while down, say).
	ph := e.hashedSub(xdr.RootGFID, "p")
	_, err = e.m[1-ph].Rmdir(e.ctx, xdr.RootGFID, "p", 0, nil)
	e.must(err, "drop a copy of p")
	// first both(): uses the cached layout of p (no heal) - so keep it fresh
	_, _ = e.d.layoutOf(e.ctx, p)
	// the rename's lock waits take longer than the ttl
	e.m[0].Delay("ENTRYLK", 60*time.Millisecond)
	e.m[1].Delay("ENTRYLK", 60*time.Millisecond)
	done := make(chan error, 1)
	go func() { _, _, err := e.d.Rename(e.ctx, xdr.RootGFID, "f", p, "g", nil); done <- err }()
	select {
	case err := <-done:
		t.Logf("rename: %v", err)
	case <-time.After(3 * time.Second):
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Logf("%s", buf[:n])
		t.Fatalf("rename hung (waiters %d %d)", e.m[0].Waiters(), e.m[1].Waiters())
	}
}

// Two writes on one fd both see the migration: one opened fd leaks or
// one is released twice.
func TestConcurrentFollow(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	name := namesOn(e, xdr.RootGFID, 0, 1, "m")[0]
	g := e.create(xdr.RootGFID, name)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	e.migrate(name, g, "")
	e.m[1].Delay("OPEN", 50*time.Millisecond)
	errs := make(chan error, 2)
	for k := 0; k < 2; k++ {
		go func() { _, _, _, err := e.d.Write(e.ctx, f, uint64(k), []byte("x"), nil); errs <- err }()
	}
	e1, e2 := <-errs, <-errs
	if e1 != nil || e2 != nil {
		t.Errorf("writes: %v %v", e1, e2)
	}
	before := openCount(e, 1)
	e.must(e.d.Release(e.ctx, f), "release")
	if n := openCount(e, 1); n != 0 {
		t.Errorf("fds left open on subvolume 1 after release: %d (before release %d)", n, before)
	}
}

func openCount(e *env, i int) int {
	return e.m[i].OpenFds()
}

func TestConcurrentFollowStress(t *testing.T) {
	bad, leaks := 0, 0
	for round := 0; round < 50; round++ {
		e := newEnv(t, 2, DefaultOptions())
		e.create(xdr.RootGFID, "warm")
		name := namesOn(e, xdr.RootGFID, 0, 1, "m")[0]
		g := e.create(xdr.RootGFID, name)
		f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
		e.must(err, "open")
		e.migrate(name, g, "")
		const n = 8
		errs := make(chan error, n)
		for k := 0; k < n; k++ {
			go func() { _, _, _, err := e.d.Write(e.ctx, f, uint64(k), []byte("x"), nil); errs <- err }()
		}
		for k := 0; k < n; k++ {
			if err := <-errs; err != nil {
				bad++
				if bad < 3 {
					t.Logf("write: %v", err)
				}
			}
		}
		e.d.Release(e.ctx, f)
		if e.m[1].OpenFds() != 0 {
			leaks++
		}
	}
	t.Logf("failed writes %d, rounds leaking an fd %d", bad, leaks)
	if bad+leaks > 0 {
		t.Fail()
	}
}

// A native client orders protect_namespace by hashed subvolume name
// first (dht_order_rename_lock). brickfs must hold no lock a native
// rename of the same pair would take first.
func TestRenameLockOrderAsNative(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	x := namesOn(e, xdr.RootGFID, 1, 1, "a")[0] // hashes to v-replicate-1
	y := namesOn(e, xdr.RootGFID, 0, 1, "b")[0] // hashes to v-replicate-0
	e.create(xdr.RootGFID, x)
	native := fop.WithCaller(e.ctx, &fop.Caller{LkOwner: []byte("native!!")})
	// native rename x->y: v-replicate-0 < v-replicate-1, so y's namespace first.
	e.must(fop.ErrOnly(e.m[0].Entrylk(native, xdr.RootGFID, y, domEntrySync, fop.EntrylkLock, entrylkWrite, nil)), "native y")
	base := e.m[0].Waiters()
	done := make(chan error, 1)
	go func() { _, _, err := e.d.Rename(e.ctx, xdr.RootGFID, x, xdr.RootGFID, y, nil); done <- err }()
	for deadline := time.Now().Add(3 * time.Second); e.m[0].Waiters() == base; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("brickfs never waited on y")
		}
	}
	// native's next lock: x on v-replicate-1
	_, err := e.m[1].Entrylk(native, xdr.RootGFID, x, domEntrySync, fop.EntrylkLockNB, entrylkWrite, nil)
	t.Logf("native's second lock (x@1) non-blocking: %v", err)
	if err != nil {
		t.Errorf("brickfs holds x@v-replicate-1 while waiting for y@v-replicate-0: a native rename holding y waits for x forever")
	}
	e.must(fop.ErrOnly(e.m[1].Entrylk(native, xdr.RootGFID, x, domEntrySync, fop.EntrylkUnlock, entrylkWrite, nil)), "unlock")
	e.must(fop.ErrOnly(e.m[0].Entrylk(native, xdr.RootGFID, y, domEntrySync, fop.EntrylkUnlock, entrylkWrite, nil)), "unlock")
	<-done
}

// O_CREAT without O_EXCL over a stale linkto (its data gone).
func TestCreateOverStaleLinkto(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	a := namesOn(e, xdr.RootGFID, 0, 1, "a")[0]
	e.must(e.d.linkto(e.ctx, 0, 1, xdr.RootGFID, a, e.gfid(), xdr.Iatt{}, nil), "stale linkto")
	f, _, _, err := e.d.Create(e.ctx, xdr.RootGFID, a, uint32(syscall.O_RDWR), 0o644, 0, e.gfid(), nil)
	t.Logf("create: %v", err)
	if err != nil {
		t.Errorf("open(O_CREAT) over a stale linkto failed: %v", err)
	} else {
		e.d.Release(e.ctx, f)
	}
}

// A read-only fd opened before a migration reads the linkto.
func TestReadFollowsMigration(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	name := namesOn(e, xdr.RootGFID, 0, 1, "m")[0]
	g := e.create(xdr.RootGFID, name)
	w, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, w, 0, []byte("content"), nil)
	e.must(err, "write")
	e.d.Release(e.ctx, w)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDONLY), nil)
	e.must(err, "open ro")
	e.migrate(name, g, "content")
	b, _, err := e.d.Read(e.ctx, f, 0, 64, nil)
	st, _, _ := e.d.Fstat(e.ctx, f, nil)
	if string(b) != "content" || err != nil {
		t.Errorf("read through a pre-migration fd: %q %v", b, err)
	}
	if st.Size != 7 || st.Mode&07777 != 0o644 {
		t.Errorf("fstat through a pre-migration fd: size %d mode %o", st.Size, st.Mode&07777)
	}
	e.d.Release(e.ctx, f)
}

// Rename of a dir over an existing empty dir fails on a non-hashed
// subvolume: the rollback renames src back, but dst's copies that the
// renames replaced are gone.
func TestRenameDirRollbackKeepsDst(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	src, dst := e.gfid(), e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, "s", 0o755, 0, src, nil)
	e.must(err, "mkdir s")
	_, _, err = e.d.Mkdir(e.ctx, xdr.RootGFID, "t", 0o755, 0, dst, nil)
	e.must(err, "mkdir t")
	dh := e.hashedSub(xdr.RootGFID, "t")
	e.m[1-dh].Refuse("RENAME", syscall.EIO)
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, "s", xdr.RootGFID, "t", nil)
	if err == nil {
		t.Fatal("the rename succeeded though a subvolume refused it")
	}
	e.m[1-dh].Refuse("RENAME", 0)
	for i, m := range e.m {
		st, _, err1 := m.Lookup(e.ctx, xdr.RootGFID, "t", xdr.GFID{}, nil)
		st2, _, err2 := m.Lookup(e.ctx, xdr.RootGFID, "s", xdr.GFID{}, nil)
		t.Logf("sub %d: t %v %v; s %v %v", i, st.GFID, err1, st2.GFID, err2)
		if err1 != nil || st.GFID != dst {
			t.Errorf("sub %d: the replaced directory t is gone after a failed rename", i)
		}
		if err2 != nil || st2.GFID != src {
			t.Errorf("sub %d: s is not back after a failed rename", i)
		}
	}
}

// shard's block I/O goes through anonymous fds, never released.
func TestAnonFdFollowsMigration(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	name := namesOn(e, xdr.RootGFID, 0, 1, "m")[0]
	g := e.create(xdr.RootGFID, name)
	f := fop.AnonFd(g, uint32(syscall.O_RDWR))
	_, _, _, err := e.d.Write(e.ctx, f, 0, []byte("before"), nil)
	e.must(err, "write")
	e.migrate(name, g, "before")
	_, _, _, err = e.d.Write(e.ctx, f, 6, []byte(" after"), nil)
	e.must(err, "write after the migration")
	if b, _ := e.m[1].Data(g); string(b) != "before after" {
		t.Errorf("the migrated copy holds %q", b)
	}
	// the block is removed (shard truncate); a later write through the cached anon fd
	_, err = e.d.Unlink(e.ctx, xdr.RootGFID, name, nil)
	e.must(err, "unlink")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("ghost"), nil)
	t.Logf("write through the anon fd after unlink: %v (want ESTALE)", err)
	if e.m[1].OpenFds() != 0 || err == nil {
		t.Errorf("anon fd holds a real open (%d) and writes reach an unlinked file (%v)", e.m[1].OpenFds(), err)
	}
}

// The mds copy is the one carrying the mds key, wherever the name hashes
// now: after a directory rename to a name hashing elsewhere, a chmod
// needs the original copy, as native clients think.
func TestMDSCopyFollowsTheKey(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	a := namesOn(e, xdr.RootGFID, 0, 1, "da")[0]
	b := namesOn(e, xdr.RootGFID, 1, 1, "db")[0]
	g := e.gfid()
	_, _, err := e.d.Mkdir(e.ctx, xdr.RootGFID, a, 0o755, 0, g, nil)
	e.must(err, "mkdir")
	_, _, err = e.d.Rename(e.ctx, xdr.RootGFID, a, xdr.RootGFID, b, nil)
	e.must(err, "rename")
	if _, ok := e.m[0].Xattr(g, xattrMDS); !ok {
		t.Fatal("the mds key is not on the copy mkdir made first")
	}
	e.d.forget(g)
	_, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, b, xdr.GFID{}, nil)
	e.must(err, "lookup")
	e.m[0].SetDown(true)
	if _, _, _, err := e.d.Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o700}, fop.SetAttrMode, nil); err == nil {
		t.Errorf("chmod succeeded with the mds copy down")
	}
	e.m[0].SetDown(false)
}

// fstat alone through an fd opened before a migration follows the file.
func TestFstatFollowsMigration(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	name := namesOn(e, xdr.RootGFID, 0, 1, "m")[0]
	g := e.create(xdr.RootGFID, name)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDONLY), nil)
	e.must(err, "open")
	defer e.d.Release(e.ctx, f)
	e.migrate(name, g, "content")
	st, _, err := e.d.Fstat(e.ctx, f, nil)
	if err != nil || st.Size != 7 || st.Mode&07777 != 0o644 {
		t.Errorf("fstat through a pre-migration fd: size %d mode %o %v", st.Size, st.Mode&07777, err)
	}
}

// An anonymous fd (shard's block I/O) whose copy was migrated away and
// removed finds the file where it is now.
func TestAnonFdFollowsRemovedSource(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	e.create(xdr.RootGFID, "warm")
	name := namesOn(e, xdr.RootGFID, 1, 1, "m")[0]
	g := e.create(xdr.RootGFID, name)
	f := fop.AnonFd(g, uint32(syscall.O_RDWR))
	_, _, _, err := e.d.Write(e.ctx, f, 0, []byte("data"), nil)
	e.must(err, "write")
	// Moved to subvolume 0 (a linkto stays where the name hashes, on 1,
	// after the data copy there is removed).
	nf, _, _, err := e.m[0].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	e.must(err, "copy")
	e.m[0].Write(e.ctx, nf, 0, []byte("data"), nil)
	e.m[0].Release(e.ctx, nf)
	_, err = e.m[1].Unlink(e.ctx, xdr.RootGFID, name, nil)
	e.must(err, "remove the source")
	got, _, err := e.d.Read(e.ctx, f, 0, 4, nil)
	if err != nil || string(got) != "data" {
		t.Errorf("read through the anonymous fd: %q %v", got, err)
	}
	_, _, _, err = e.d.Write(e.ctx, f, 4, []byte("more"), nil)
	e.must(err, "write through the anonymous fd")
	if b, _ := e.m[0].Data(g); string(b) != "datamore" {
		t.Errorf("the moved file holds %q", b)
	}
}

// migrate does what the rebalance daemon does to file g, named name in
// the root, when it moves it from subvolume 0 to 1: the data copied to a
// new file there, the old copy emptied and made a linkto file pointing
// to it (migration phase 2).
func (e *env) migrate(name string, g xdr.GFID, data string) {
	e.t.Helper()
	nf, _, _, err := e.m[1].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	e.must(err, "copy")
	if data != "" {
		_, _, _, err = e.m[1].Write(e.ctx, nf, 0, []byte(data), nil)
		e.must(err, "copy data")
	}
	e.must(e.m[1].Release(e.ctx, nf), "release the copy")
	_, _, _, err = e.m[0].Truncate(e.ctx, g, 0, nil)
	e.must(err, "truncate the source")
	e.must(fop.ErrOnly(e.m[0].Setxattr(e.ctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-1")), 0, nil)), "linkto xattr")
	_, _, _, err = e.m[0].Setattr(e.ctx, g, &xdr.Iatt{Mode: syscall.S_ISVTX}, fop.SetAttrMode, nil)
	e.must(err, "linkto mode")
}
