package dht

import (
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// cloneEnv makes a source with data on subvolume 0 and an empty
// destination, created through the layer (so it knows the name), on
// subvolume 1, both open.
func cloneEnv(t *testing.T) (e *env, in, out *fop.Fd, dstName string, dst xdr.GFID) {
	e = newEnv(t, 2, DefaultOptions())
	_, src := e.createOn(0)
	dstName, _ = e.createOn(1)
	in, _, err := e.d.Open(e.ctx, src, uint32(syscall.O_RDWR), nil)
	e.must(err, "open source")
	_, _, _, err = e.d.Write(e.ctx, in, 0, []byte("golden image"), nil)
	e.must(err, "write source")
	st, _, err := e.d.Lookup(e.ctx, xdr.RootGFID, dstName, xdr.GFID{}, nil)
	e.must(err, "lookup destination")
	out, _, err = e.d.Open(e.ctx, st.GFID, uint32(syscall.O_WRONLY), nil)
	e.must(err, "open destination")
	return e, in, out, dstName, st.GFID
}

// A copy into an empty file on another subvolume moves the file beside
// its source first, as the rebalance daemon would: data file on the
// source's subvolume, linkto file under the name where it hashes, and the
// copy goes to that one subvolume (where the bricks can reflink).
func TestCopyMovesEmptyDestinationBesideSource(t *testing.T) {
	e, in, out, name, g := cloneEnv(t)
	e.must(fop.ErrOnly(e.m[1].Setxattr(e.ctx, g, xdr.Dict{}.With("user.kept", xdr.Str("yes")).
		With("trusted.glusterfs.shard.block-size", xdr.Str("bs")).With("trusted.afr.v-client-0", xdr.Str("afr")), 0, nil)), "xattrs")
	// qemu-img writes the first 4 KiB of a new image (alignment probe).
	first := []byte(strings.Repeat("q", 4096))
	_, _, _, err := e.d.Write(e.ctx, out, 0, first, nil)
	e.must(err, "write the first block")
	_, _, _, err = e.d.Ftruncate(e.ctx, out, 8192, nil)
	e.must(err, "size the destination")
	copies := e.m[0].Calls("COPY_FILE_RANGE")
	n, post, _, err := e.d.CopyFileRange(e.ctx, in, 0, out, 0, 12, 0, nil)
	if err != nil || n != 12 {
		t.Fatalf("copy: %d, %v; want 12 bytes copied", n, err)
	}
	if e.m[0].Calls("COPY_FILE_RANGE") != copies+1 {
		t.Errorf("the copy did not go to the source's subvolume as one COPY_FILE_RANGE")
	}
	if post.Size != 8192 || post.Mode&07777 != 0o644 {
		t.Errorf("copy answered size %d mode %o", post.Size, post.Mode)
	}
	data, links := e.where(xdr.RootGFID, name)
	if !slices.Equal(data, []int{0}) || !slices.Equal(links, []int{1}) {
		t.Fatalf("after the copy the data is on %v and linkto files on %v; want data on [0], the linkto on [1]", data, links)
	}
	want := append(append([]byte("golden image"), first[12:]...), make([]byte, 4096)...)
	if b, _ := e.m[0].Data(g); string(b) != string(want) {
		t.Errorf("data file holds %q...", b[:min(len(b), 16)])
	}
	if v, ok := e.m[1].Xattr(g, xattrLinkto); !ok || string(v) != "v-replicate-0" {
		t.Errorf("linkto file names %q", v)
	}
	if _, ok := e.m[0].Xattr(g, xattrLinkto); ok {
		t.Errorf("the moved file keeps a linkto xattr")
	}
	for k, want := range map[string]string{"user.kept": "yes", "trusted.glusterfs.shard.block-size": "bs"} {
		if v, ok := e.m[0].Xattr(g, k); !ok || string(v) != want {
			t.Errorf("%s not carried: %q", k, v)
		}
	}
	if _, ok := e.m[0].Xattr(g, "trusted.afr.v-client-0"); ok {
		t.Errorf("the other replica set's afr xattr was carried")
	}
	if st, _, _ := e.m[1].Stat(e.ctx, g, nil); st.Size != 0 || st.Mode&07777 != syscall.S_ISVTX {
		t.Errorf("linkto file: size %d mode %o", st.Size, st.Mode&07777)
	}
	// The fd follows: a write through it lands in the data file.
	_, _, _, err = e.d.Write(e.ctx, out, 0, []byte("G"), nil)
	e.must(err, "write after the move")
	if b, _ := e.m[0].Data(g); string(b[:12]) != "Golden image" {
		t.Errorf("write after the move: data file holds %q", b[:12])
	}
	e.must(e.d.Release(e.ctx, out), "release")
	e.must(e.d.Release(e.ctx, in), "release")
	if n := e.m[1].OpenFds(); n != 0 {
		t.Errorf("%d fds left on the old subvolume", n)
	}
	// A fresh mount finds it by name.
	d2, err := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), e.d.log)
	e.must(err, "second layer")
	st, _, err := d2.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	if err != nil || st.GFID != g || st.Size != 8192 {
		t.Errorf("lookup through a fresh layer: %v size %d gfid %s", err, st.Size, st.GFID)
	}
	if e.m[0].Locks() != 0 || e.m[1].Locks() != 0 {
		t.Errorf("locks left held")
	}
}

// A destination with more data than a move copies, or with a second
// name, stays where it is and the copy is the kernel's (EXDEV); nothing of
// a move is left.
func TestCopyLeavesDestinationInPlace(t *testing.T) {
	for _, tc := range []string{"data", "link"} {
		t.Run(tc, func(t *testing.T) {
			e, in, out, name, g := cloneEnv(t)
			switch tc {
			case "data":
				_, _, _, err := e.d.Write(e.ctx, out, 0, make([]byte, maxMovedData+1), nil)
				e.must(err, "write destination")
			case "link":
				_, _, err := e.m[1].Link(e.ctx, g, xdr.RootGFID, name+".2", nil)
				e.must(err, "link")
			}
			_, _, _, err := e.d.CopyFileRange(e.ctx, in, 0, out, 0, 12, 0, nil)
			if fop.Errno(err) != syscall.EXDEV {
				t.Fatalf("copy: %v; want EXDEV", err)
			}
			data, links := e.where(xdr.RootGFID, name)
			if !slices.Equal(data, []int{1}) || len(links) != 0 {
				t.Errorf("data on %v, linkto files on %v; want the file left on [1]", data, links)
			}
			st, _, err := e.m[1].Stat(e.ctx, g, nil)
			if err != nil || st.Mode&07777 != 0o644 {
				t.Errorf("destination mode %o (%v): migration marks left", st.Mode&07777, err)
			}
			if _, ok := e.m[1].Xattr(g, xattrLinkto); ok {
				t.Errorf("destination keeps a linkto xattr")
			}
			if e.m[0].Locks() != 0 || e.m[1].Locks() != 0 {
				t.Errorf("locks left held")
			}
		})
	}
}

// duringMove runs a copy from cloneEnv's source into its destination and,
// while the move is in phase 1 (its look for data on the old copy held),
// runs meddle; it returns the copy's error.
func duringMove(t *testing.T, e *env, in, out *fop.Fd, meddle func()) error {
	t.Helper()
	return duringMoveAt(t, e, in, out, 1, "SEEK", meddle)
}

// duringMoveAt is duringMove with the move held at fop on subvolume sub
// (STAT on 0: its last look, after the xattrs were copied).
func duringMoveAt(t *testing.T, e *env, in, out *fop.Fd, sub int, fopName string, meddle func()) error {
	t.Helper()
	before := e.m[sub].Calls(fopName)
	release := e.m[sub].Hang(fopName)
	done := make(chan error, 1)
	go func() { _, _, _, err := e.d.CopyFileRange(e.ctx, in, 0, out, 0, 12, 0, nil); done <- err }()
	waitCalled(t, e.m[sub], fopName, before)
	if st, _, err := e.m[1].Stat(e.ctx, out.GFID, nil); err != nil || !phase1(st) {
		t.Fatalf("the destination is not in migration phase 1 during the move: %o, %v", st.Mode, err)
	}
	meddle()
	release()
	return <-done
}

// abandoned checks that the destination stayed on subvolume 1 with
// nothing of the move left: no phase-1 marks or linkto xattr on it, no
// copy on subvolume 0, no locks.
func abandoned(t *testing.T, e *env, name string, g xdr.GFID, mode uint32) {
	t.Helper()
	if st, _, err := e.m[1].Stat(e.ctx, g, nil); err != nil || st.Mode&07777 != mode {
		t.Errorf("destination after the abandoned move: mode %o (%v), want %o", st.Mode&07777, err, mode)
	}
	if _, ok := e.m[1].Xattr(g, xattrLinkto); ok {
		t.Errorf("the destination keeps a linkto xattr")
	}
	if slices.Contains(e.m[0].Names(xdr.RootGFID), name) {
		t.Errorf("the new copy on subvolume 0 was left")
	}
	if e.m[0].Locks() != 0 || e.m[1].Locks() != 0 {
		t.Errorf("locks left held")
	}
}

// Whatever another fd or client does to the destination while it moves,
// nothing is lost: a name removed or added, a mode changed abandon the
// move (the copy is then the kernel's); a truncate is repeated on the new
// copy, and the move goes on.
func TestMoveMeddled(t *testing.T) {
	t.Run("unlink", func(t *testing.T) {
		e, in, out, name, _ := cloneEnv(t)
		err := duringMove(t, e, in, out, func() {
			_, err := e.d.Unlink(e.ctx, xdr.RootGFID, name, nil)
			e.must(err, "unlink")
		})
		if fop.Errno(err) != syscall.EXDEV {
			t.Errorf("copy: %v, want EXDEV", err)
		}
		if data, links := e.where(xdr.RootGFID, name); len(data)+len(links) != 0 {
			t.Errorf("the name removed during the move is back: data on %v, linkto files on %v", data, links)
		}
		if e.m[0].Locks() != 0 || e.m[1].Locks() != 0 {
			t.Errorf("locks left held")
		}
	})
	t.Run("link", func(t *testing.T) {
		e, in, out, name, g := cloneEnv(t)
		err := duringMove(t, e, in, out, func() {
			_, _, err := e.d.Link(e.ctx, g, xdr.RootGFID, name+".hl", nil)
			e.must(err, "link")
		})
		if fop.Errno(err) != syscall.EXDEV {
			t.Errorf("copy: %v, want EXDEV", err)
		}
		abandoned(t, e, name, g, 0o644)
	})
	t.Run("chmod and write", func(t *testing.T) {
		e, in, out, name, g := cloneEnv(t)
		_, _, _, err := e.d.Ftruncate(e.ctx, out, 8192, nil)
		e.must(err, "size") // the write below does not change the size
		app, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
		e.must(err, "app fd")
		err = duringMove(t, e, in, out, func() {
			_, _, _, err := e.d.Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil)
			e.must(err, "chmod")
			_, _, _, err = e.d.Write(e.ctx, app, 100, []byte("XYZ"), nil)
			e.must(err, "write")
		})
		if fop.Errno(err) != syscall.EXDEV {
			t.Errorf("copy: %v, want EXDEV", err)
		}
		abandoned(t, e, name, g, 0o600)
		if b, _ := e.m[1].Data(g); len(b) < 103 || string(b[100:103]) != "XYZ" {
			t.Errorf("the write made during the move is lost")
		}
	})
	t.Run("truncate", func(t *testing.T) {
		e, in, out, name, g := cloneEnv(t)
		_, _, _, err := e.d.Ftruncate(e.ctx, out, 8192, nil)
		e.must(err, "size")
		app, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
		e.must(err, "app fd")
		err = duringMove(t, e, in, out, func() {
			_, _, _, err := e.d.Ftruncate(e.ctx, app, 0, nil)
			e.must(err, "truncate to 0")
		})
		if err != nil {
			t.Fatalf("copy: %v", err)
		}
		if data, _ := e.where(xdr.RootGFID, name); !slices.Equal(data, []int{0}) {
			t.Fatalf("data on %v, want moved to [0]", data)
		}
		if b, _ := e.m[0].Data(g); string(b) != "golden image" {
			t.Errorf("a truncate to 0 then a 12-byte copy left %d bytes %q", len(b), b[:min(len(b), 16)])
		}
	})
}

// A destination another client has open is not moved (that client may not
// follow a migration it does not look for); nothing is marked.
func TestMoveRefusedWhenOpenElsewhere(t *testing.T) {
	e, in, out, name, g := cloneEnv(t)
	d2, err := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), e.d.log)
	e.must(err, "second layer")
	_, _, err = d2.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	e.must(err, "lookup on the second layer")
	other, _, err := d2.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open on the second layer")
	marks := e.m[1].Calls("SETATTR")
	if _, _, _, err := e.d.CopyFileRange(e.ctx, in, 0, out, 0, 12, 0, nil); fop.Errno(err) != syscall.EXDEV {
		t.Errorf("copy: %v, want EXDEV", err)
	}
	if e.m[1].Calls("SETATTR") != marks {
		t.Errorf("the destination was marked though another client has it open")
	}
	abandoned(t, e, name, g, 0o644)
	e.must(d2.Release(e.ctx, other), "release")
}

// After the move every fd of the file on this mount reaches the data:
// the application's own fd (not the copy's) syncs and updates xattrs on
// the new copy, not the linkto file; two copies into the file at once
// both go to the bricks.
func TestMoveOtherFdsFollow(t *testing.T) {
	e, in, out, _, g := cloneEnv(t)
	app, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "app fd")
	done := make(chan error, 2)
	for _, off := range []uint64{0, 6} {
		go func() { _, _, _, err := e.d.CopyFileRange(e.ctx, in, off, out, off, 6, 0, nil); done <- err }()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("copy: %v", err)
		}
	}
	f0, f1 := e.m[0].Calls("FSYNC"), e.m[1].Calls("FSYNC")
	_, err = e.d.Fsync(e.ctx, app, false, nil)
	e.must(err, "fsync")
	if e.m[0].Calls("FSYNC") != f0+1 || e.m[1].Calls("FSYNC") != f1 {
		t.Errorf("fsync through the application's fd reached the linkto file")
	}
	_, _, err = e.d.Fxattrop(e.ctx, app, fop.XattropAddArray64, xdr.Dict{}.With("trusted.x.size", xdr.Ptr(make([]byte, 8))), nil)
	e.must(err, "fxattrop")
	if _, ok := e.m[1].Xattr(g, "trusted.x.size"); ok {
		t.Errorf("fxattrop through the application's fd reached the linkto file")
	}
	if b, _ := e.m[0].Data(g); string(b) != "golden image" {
		t.Errorf("data file holds %q", b)
	}
	e.must(e.d.Release(e.ctx, app), "release")
}

// An xattr set during the move after its xattrs were copied (this layer
// does not repeat xattr changes on the new copy) abandons it: the value
// is kept.
func TestMoveXattrDuringMove(t *testing.T) {
	e, in, out, name, g := cloneEnv(t)
	err := duringMoveAt(t, e, in, out, 0, "STAT", func() {
		e.must(fop.ErrOnly(e.d.Setxattr(e.ctx, g, xdr.Dict{}.With("user.set-during", xdr.Str("v")), 0, nil)), "setxattr")
	})
	if fop.Errno(err) != syscall.EXDEV {
		t.Errorf("copy: %v, want EXDEV", err)
	}
	abandoned(t, e, name, g, 0o644)
	if v, ok := e.m[1].Xattr(g, "user.set-during"); !ok || string(v) != "v" {
		t.Errorf("the xattr set during the move is lost: %q", v)
	}
}

// A second mount that knew the file where it was before the move: its
// stat and chmod by gfid find the file's data, not the linkto file, and
// the linkto file keeps its mode.
func TestMoveSeenByAnotherMount(t *testing.T) {
	e, in, out, name, g := cloneEnv(t)
	d2, err := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), e.d.log)
	e.must(err, "second layer")
	_, _, err = d2.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil)
	e.must(err, "lookup on the second layer")
	if _, _, _, err := e.d.CopyFileRange(e.ctx, in, 0, out, 0, 12, 0, nil); err != nil {
		t.Fatalf("copy: %v", err)
	}
	st, _, err := d2.Stat(e.ctx, g, nil)
	if err != nil || st.Size != 12 || st.Mode&07777 != 0o644 {
		t.Errorf("stat through the second layer: size %d mode %o (%v), want 12 and 644", st.Size, st.Mode&07777, err)
	}
	_, _, _, err = d2.Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o640}, fop.SetAttrMode, nil)
	e.must(err, "chmod through the second layer")
	if st, _, _ := e.m[0].Stat(e.ctx, g, nil); st.Mode&07777 != 0o640 {
		t.Errorf("the data file's mode is %o, want 640", st.Mode&07777)
	}
	if st, _, _ := e.m[1].Stat(e.ctx, g, nil); st.Mode&07777 != syscall.S_ISVTX {
		t.Errorf("the linkto file's mode is %o, want 1000", st.Mode&07777)
	}
	d3, err := New("v-dht", []fop.Subvolume{e.m[0], e.m[1]}, DefaultOptions(), e.d.log)
	e.must(err, "third layer")
	if st, _, err := d3.Lookup(e.ctx, xdr.RootGFID, name, xdr.GFID{}, nil); err != nil || st.Size != 12 {
		t.Errorf("a fresh layer finds size %d (%v), want 12", st.Size, err)
	}
}
