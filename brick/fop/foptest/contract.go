package foptest

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// GFID returns a test gfid numbered n.
func GFID(n byte) xdr.GFID { return xdr.GFID{0: 0xc0, 6: 0x40, 8: 0x80, 15: n} }

// Contract runs the fop contract every brick and every layer of the graph
// must meet, as a posix brick does, on v: a fresh volume whose root is
// RootGFID.
func Contract(t *testing.T, v fop.Fops) {
	ctx := context.Background()
	errno := func(err error) syscall.Errno {
		var oe *fop.OpError
		if err == nil {
			return 0
		}
		if errors.As(err, &oe) {
			return oe.Errno
		}
		return syscall.EIO
	}
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	want := func(err error, en syscall.Errno, what string) {
		t.Helper()
		if errno(err) != en {
			t.Errorf("%s: %v, want %v", what, err, en)
		}
	}

	// Names and files.
	f, st, err := v.Create(ctx, RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0o022, GFID(1), nil)
	must(err, "create f")
	if st.GFID != GFID(1) || st.Mode != syscall.S_IFREG|0o644 {
		t.Errorf("create f: gfid %v mode %o, want %v 100644", st.GFID, st.Mode, GFID(1))
	}
	st, _, err = v.Lookup(ctx, RootGFID, "f", xdr.GFID{}, nil)
	must(err, "lookup f")
	if st.GFID != GFID(1) {
		t.Errorf("lookup f: gfid %v", st.GFID)
	}
	_, _, err = v.Lookup(ctx, RootGFID, "missing", xdr.GFID{}, nil)
	want(err, syscall.ENOENT, "lookup of a missing name")
	_, _, err = v.Lookup(ctx, RootGFID, strings.Repeat("n", 256), xdr.GFID{}, nil)
	want(err, syscall.ENAMETOOLONG, "lookup of a 256-byte name")
	_, _, err = v.Create(ctx, RootGFID, "f", uint32(syscall.O_RDWR|syscall.O_EXCL), 0o644, 0, GFID(2), nil)
	want(err, syscall.EEXIST, "create O_EXCL over an existing name")

	// Data.
	data := bytes.Repeat([]byte("brickfs!"), 1024)
	_, err = v.Write(ctx, f, 100, data, nil)
	must(err, "write")
	got, err := v.Read(ctx, f, 100, uint32(len(data)))
	must(err, "read")
	if !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, want the %d written", len(got), len(data))
	}
	if got, err := v.Read(ctx, f, 0, 100); err != nil || !bytes.Equal(got, make([]byte, 100)) {
		t.Errorf("read of the gap before the write: %v %v, want zeros", got, err)
	}
	if st, err := v.Fstat(ctx, f); err != nil || st.Size != uint64(100+len(data)) {
		t.Errorf("fstat: size %d, %v; want %d", st.Size, err, 100+len(data))
	}
	_, _, err = v.Ftruncate(ctx, f, 50)
	must(err, "ftruncate")
	if st, err := v.Stat(ctx, GFID(1)); err != nil || st.Size != 50 {
		t.Errorf("stat after truncate to 50: size %d, %v", st.Size, err)
	}
	must(v.Zerofill(ctx, f, 40, 20), "zerofill across EOF")
	if st, err := v.Stat(ctx, GFID(1)); err != nil || st.Size != 60 {
		t.Errorf("zerofill [40, 60) of a 50-byte file: size %d, %v; want 60 (ZEROFILL extends)", st.Size, err)
	}
	must(v.Fsync(ctx, f, false), "fsync")
	must(v.Flush(ctx, f), "flush")
	must(v.Release(ctx, f), "release")

	// Metadata and xattrs.
	_, post, err := v.Setattr(ctx, GFID(1), &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode)
	must(err, "setattr mode")
	if post.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("setattr: mode %o, want 100600", post.Mode)
	}
	must(v.Setxattr(ctx, GFID(1), xdr.Dict{{Key: "user.k", Value: xdr.Ptr([]byte("v1"))}}, 0), "setxattr")
	d, err := v.Getxattr(ctx, GFID(1), "user.k")
	if b, ok := d.Bytes("user.k"); err != nil || !ok || string(b) != "v1" {
		t.Errorf("getxattr user.k: %q %v", b, err)
	}
	_, err = v.Getxattr(ctx, GFID(1), "user.missing")
	want(err, syscall.ENODATA, "getxattr of a missing key")
	must(v.Removexattr(ctx, GFID(1), "user.k"), "removexattr")
	_, err = v.Getxattr(ctx, GFID(1), "user.k")
	want(err, syscall.ENODATA, "getxattr after removexattr")

	// Directories, links, renames.
	_, err = v.Mkdir(ctx, RootGFID, "d", 0o755, 0, GFID(3), nil)
	must(err, "mkdir d")
	_, err = v.Symlink(ctx, GFID(3), "s", "../f", 0, GFID(4), nil)
	must(err, "symlink d/s")
	if tgt, err := v.Readlink(ctx, GFID(4)); err != nil || tgt != "../f" {
		t.Errorf("readlink: %q %v", tgt, err)
	}
	st, err = v.Link(ctx, GFID(1), GFID(3), "hard")
	must(err, "link d/hard")
	if st.Nlink != 2 {
		t.Errorf("link: nlink %d, want 2", st.Nlink)
	}
	want(v.Rmdir(ctx, RootGFID, "d"), syscall.ENOTEMPTY, "rmdir of a directory with entries")
	_, err = v.Rename(ctx, RootGFID, "f", GFID(3), "g")
	must(err, "rename f to d/g")
	_, _, err = v.Lookup(ctx, RootGFID, "f", xdr.GFID{}, nil)
	want(err, syscall.ENOENT, "lookup of the renamed-away name")
	if st, _, err := v.Lookup(ctx, GFID(3), "g", xdr.GFID{}, nil); err != nil || st.GFID != GFID(1) {
		t.Errorf("lookup d/g: %v %v", st.GFID, err)
	}
	dir, err := v.Opendir(ctx, GFID(3))
	must(err, "opendir d")
	var names []string
	for off, eof := uint64(0), false; !eof; {
		ents, e, err := v.Readdirp(ctx, dir, off, 4096)
		must(err, "readdirp d")
		for _, ent := range ents {
			names = append(names, ent.Name)
			off = ent.Off
		}
		eof = e || len(ents) == 0
	}
	must(v.Release(ctx, dir), "releasedir")
	sort.Strings(names) // the order is the backing filesystem's
	if strings.Join(names, " ") != ". .. g hard s" {
		t.Errorf("readdirp d: %v, want . .. g hard s", names)
	}
	for _, n := range []string{"g", "hard", "s"} {
		must(v.Unlink(ctx, GFID(3), n), "unlink d/"+n)
	}
	want(v.Unlink(ctx, GFID(3), "g"), syscall.ENOENT, "unlink of a missing name")
	must(v.Rmdir(ctx, RootGFID, "d"), "rmdir d")
	if _, err = v.Stat(ctx, GFID(1)); errno(err) != syscall.ENOENT && errno(err) != syscall.ESTALE {
		t.Errorf("stat of a file whose last name is gone: %v, want ENOENT or ESTALE", err)
	}

	// The rest of the table.
	st, err = v.Mknod(ctx, RootGFID, "fifo", syscall.S_IFIFO|0o640, 0, 0, GFID(5), nil)
	if err != nil || st.Mode != syscall.S_IFIFO|0o640 {
		t.Errorf("mknod fifo: mode %o, %v", st.Mode, err)
	}
	must(v.Unlink(ctx, RootGFID, "fifo"), "unlink fifo")
	must(v.Access(ctx, RootGFID, 7), "access")
	if sf, err := v.Statfs(ctx, RootGFID); err != nil || sf.Bsize == 0 || sf.Blocks == 0 {
		t.Errorf("statfs: %+v, %v", sf, err)
	}
	g, _, err := v.Create(ctx, RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, GFID(6), nil)
	must(err, "create g")
	_, err = v.Write(ctx, g, 0, bytes.Repeat([]byte{0xab}, 8192), nil)
	must(err, "write g")
	must(v.Fallocate(ctx, g, 1, 8192, 4096), "fallocate KEEP_SIZE past EOF")
	if st, err := v.Fstat(ctx, g); err != nil || st.Size != 8192 {
		t.Errorf("fallocate KEEP_SIZE: size %d, %v; want 8192", st.Size, err)
	}
	must(v.Fallocate(ctx, g, 0, 8192, 4096), "fallocate past EOF")
	if st, err := v.Fstat(ctx, g); err != nil || st.Size != 12288 {
		t.Errorf("fallocate: size %d, %v; want 12288", st.Size, err)
	}
	must(v.Discard(ctx, g, 0, 4096), "discard")
	if got, err := v.Read(ctx, g, 0, 8192); err != nil || !bytes.Equal(got[:4096], make([]byte, 4096)) || got[4096] != 0xab {
		t.Errorf("after discard [0, 4096): %v", err)
	}
	if st, err := v.Fstat(ctx, g); err != nil || st.Size != 12288 {
		t.Errorf("discard changed the size: %d, %v", st.Size, err)
	}
	if o, err := v.Seek(ctx, g, 4096, fop.SeekData); err != nil || o < 4096 || o > 8192 {
		t.Errorf("SEEK_DATA from 4096: %d, %v", o, err)
	}
	_, err = v.Seek(ctx, g, 1<<20, fop.SeekData)
	want(err, syscall.ENXIO, "SEEK_DATA past EOF")
	_, _, err = v.Truncate(ctx, GFID(6), 100)
	must(err, "truncate g")
	_, post, err = v.Fsetattr(ctx, g, &xdr.Iatt{Mode: 0o640}, fop.SetAttrMode)
	if err != nil || post.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("fsetattr: mode %o, %v", post.Mode, err)
	}
	if st, err := v.Stat(ctx, GFID(6)); err != nil || st.Size != 100 || st.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("stat g: size %d mode %o, %v; want 100 100640", st.Size, st.Mode, err)
	}
	if _, err := v.Lk(ctx, g, fop.LkSet, xdr.Flock{Type: fop.LkWrite, Len: 10}); err != nil {
		t.Errorf("lk: %v", err)
	}
	if _, err := v.Lk(ctx, g, fop.LkSet, xdr.Flock{Type: fop.LkUnlock, Len: 10}); err != nil {
		t.Errorf("unlock: %v", err)
	}
	must(v.Release(ctx, g), "release g")
	root, err := v.Opendir(ctx, RootGFID)
	must(err, "opendir /")
	must(v.Fsyncdir(ctx, root, false), "fsyncdir")
	must(v.Release(ctx, root), "releasedir /")
	must(v.Unlink(ctx, RootGFID, "g"), "unlink g")
}
