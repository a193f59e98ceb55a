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
