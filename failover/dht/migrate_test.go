package dht

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// A file the rebalance daemon is copying (migration phase 1: the source
// has the sticky and set-group-id bits and a linkto xattr naming the
// destination) takes its changes on the source and on the destination,
// marked so the daemon's older writes fail; the daemon's bits never show;
// once the copy is done (phase 2) the fd follows the file and the
// destination fd used in phase 1 is released.
func TestMigrationPhase1(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("aaaaaaaa"), nil)
	e.must(err, "write")

	// Phase 1, as __dht_rebalance_create_dst_file and
	// __dht_rebalance_open_src_file leave it.
	dst, _, _, err := e.m[1].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), syscall.S_ISVTX, 0, g,
		xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-0")))
	e.must(err, "destination")
	_, _, _, err = e.m[1].Write(e.ctx, dst, 0, []byte("aaaaaaaa"), nil)
	e.must(err, "copy")
	e.must(fop.ErrOnly(e.m[0].Setxattr(e.ctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-1")), 0, nil)), "source linkto")
	_, _, _, err = e.m[0].Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o644 | syscall.S_ISVTX | syscall.S_ISGID}, fop.SetAttrMode, nil)
	e.must(err, "source bits")

	_, post, _, err := e.d.Write(e.ctx, f, 2, []byte("bb"), nil)
	e.must(err, "write in phase 1")
	if post.Mode&07777 != 0o644 {
		t.Errorf("write reply mode %o, want 644 (the daemon's bits stripped)", post.Mode&07777)
	}
	anon := &fop.Fd{GFID: g, Anon: true}
	_, _, _, err = e.d.Write(e.ctx, anon, 5, []byte("c"), nil)
	e.must(err, "anonymous write in phase 1")
	for i, m := range e.m {
		if b, _ := m.Data(g); string(b) != "aabbacaa" {
			t.Errorf("copy on %d holds %q, want both changes", i, b)
		}
	}
	if _, ok := e.m[1].Xattr(g, xattrProtectWrites); !ok {
		t.Error("the destination was not marked against the daemon's older writes")
	}
	_, _, _, err = e.d.Ftruncate(e.ctx, f, 6, nil)
	e.must(err, "ftruncate in phase 1")
	for i, m := range e.m {
		if b, _ := m.Data(g); string(b) != "aabbac" {
			t.Errorf("copy on %d holds %q after ftruncate", i, b)
		}
	}
	st, _, err := e.d.Fstat(e.ctx, f, nil)
	e.must(err, "fstat")
	if st.Mode&07777 != 0o644 {
		t.Errorf("fstat mode %o in phase 1", st.Mode&07777)
	}
	st, _, err = e.d.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	e.must(err, "lookup")
	if st.Mode&07777 != 0o644 {
		t.Errorf("lookup mode %o in phase 1", st.Mode&07777)
	}
	if n := e.m[1].OpenFds(); n != 2 {
		t.Errorf("destination has %d open fds in phase 1, want the daemon's and the mirror's", n)
	}

	// Phase 2: the destination is the file, the source a linkto file.
	_, _, _, err = e.m[1].Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o644}, fop.SetAttrMode, nil)
	e.must(err, "destination mode")
	e.must(fop.ErrOnly(e.m[1].Removexattr(e.ctx, g, xattrLinkto, nil)), "destination linkto")
	e.must(e.m[1].Release(e.ctx, dst), "daemon closes")
	_, _, _, err = e.m[0].Truncate(e.ctx, g, 0, nil)
	e.must(err, "source emptied")
	_, _, _, err = e.m[0].Setattr(e.ctx, g, &xdr.Iatt{Mode: syscall.S_ISVTX}, fop.SetAttrMode, nil)
	e.must(err, "source linkto mode")

	_, _, _, err = e.d.Write(e.ctx, f, 6, []byte("dd"), nil)
	e.must(err, "write after the migration")
	if b, _ := e.m[1].Data(g); string(b) != "aabbacdd" {
		t.Errorf("the file holds %q after the migration", b)
	}
	if n := e.m[1].OpenFds(); n != 1 {
		t.Errorf("destination has %d open fds after the fd followed, want 1", n)
	}
	e.must(e.d.Release(e.ctx, f), "release")
	if n := e.m[1].OpenFds(); n != 0 {
		t.Errorf("%d fds left open on the destination", n)
	}
}

// A file being migrated to a subvolume this mount does not know yet (the
// daemon runs on a newer volfile) fails the change after a wait, as
// dht_rebalance_inprogress_task does, instead of acknowledging a write
// that never reaches the new copy.
func TestMigrationPhase1UnknownDestination(t *testing.T) {
	dstWait = 200 * time.Millisecond
	defer func() { dstWait = 5 * time.Second }()
	e := newEnv(t, 2, DefaultOptions())
	g := e.create(xdr.RootGFID, "disk")
	data, _ := e.where(xdr.RootGFID, "disk")
	src := data[0]
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	e.must(fop.ErrOnly(e.m[src].Setxattr(e.ctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-7")), 0, nil)), "source linkto")
	_, _, _, err = e.m[src].Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o644 | syscall.S_ISVTX | syscall.S_ISGID}, fop.SetAttrMode, nil)
	e.must(err, "source bits")
	if _, _, _, err := e.d.Write(e.ctx, f, 0, []byte("x"), nil); fop.Errno(err) != syscall.EIO {
		t.Errorf("write to a file migrating to an unknown subvolume: %v, want EIO", err)
	}
	e.must(e.d.Release(e.ctx, f), "release")
}

// Once the daemon finished a migration and removed the old copy (it
// deletes the source linkto file), a change through an fd still on the
// old copy fails there with ENOENT: the fd follows the file and the change
// is made where the file is (dht_writev_cbk on dht_inode_missing).
func TestMigrationSourceRemoved(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("before"), nil)
	e.must(err, "write")
	e.migrate(name, g, "before")
	_, err = e.m[0].Unlink(e.ctx, xdr.RootGFID, name, nil)
	e.must(err, "the daemon removes the old copy")
	e.m[0].Refuse("WRITE", syscall.ENOENT) // as AFR answers: its pre-op finds no file
	_, _, _, err = e.d.Write(e.ctx, f, 6, []byte("after"), nil)
	e.must(err, "write after the old copy went")
	if b, _ := e.m[1].Data(g); string(b) != "beforeafter" {
		t.Errorf("the file holds %q", b)
	}
	e.must(e.d.Release(e.ctx, f), "release")
}

// createOn creates files in the root until one lands on subvolume sub,
// and returns its name and gfid.
func (e *env) createOn(sub int) (string, xdr.GFID) {
	e.t.Helper()
	for i := 0; ; i++ {
		n := fmt.Sprintf("f%d", i)
		g := e.create(xdr.RootGFID, n)
		if d, _ := e.where(xdr.RootGFID, n); slices.Equal(d, []int{sub}) {
			return n, g
		}
	}
}
