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
	f, st, _, err := v.Create(ctx, RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0o022, GFID(1), nil)
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
	_, _, _, err = v.Create(ctx, RootGFID, "f", uint32(syscall.O_RDWR|syscall.O_EXCL), 0o644, 0, GFID(2), nil)
	want(err, syscall.EEXIST, "create O_EXCL over an existing name")

	// Data.
	data := bytes.Repeat([]byte("brickfs!"), 1024)
	pre, wpost, _, err := v.Write(ctx, f, 100, data, nil)
	must(err, "write")
	if pre.Size != 0 || wpost.Size != uint64(100+len(data)) || wpost.Blocks < pre.Blocks {
		t.Errorf("write's attributes before and after: size %d -> %d, blocks %d -> %d; want 0 -> %d",
			pre.Size, wpost.Size, pre.Blocks, wpost.Blocks, 100+len(data))
	}
	got, _, err := v.Read(ctx, f, 100, uint32(len(data)), nil)
	must(err, "read")
	if !bytes.Equal(got, data) {
		t.Errorf("read back %d bytes, want the %d written", len(got), len(data))
	}
	if got, _, err := v.Read(ctx, f, 0, 100, nil); err != nil || !bytes.Equal(got, make([]byte, 100)) {
		t.Errorf("read of the gap before the write: %v %v, want zeros", got, err)
	}
	if st, _, err := v.Fstat(ctx, f, nil); err != nil || st.Size != uint64(100+len(data)) {
		t.Errorf("fstat: size %d, %v; want %d", st.Size, err, 100+len(data))
	}
	_, _, _, err = v.Ftruncate(ctx, f, 50, nil)
	must(err, "ftruncate")
	if st, _, err := v.Stat(ctx, GFID(1), nil); err != nil || st.Size != 50 {
		t.Errorf("stat after truncate to 50: size %d, %v", st.Size, err)
	}
	must(fop.ErrOnlyPrePost(v.Zerofill(ctx, f, 40, 20, nil)), "zerofill across EOF")
	if st, _, err := v.Stat(ctx, GFID(1), nil); err != nil || st.Size != 60 {
		t.Errorf("zerofill [40, 60) of a 50-byte file: size %d, %v; want 60 (ZEROFILL extends)", st.Size, err)
	}
	must(fop.ErrOnly(v.Fsync(ctx, f, false, nil)), "fsync")
	must(fop.ErrOnly(v.Flush(ctx, f, nil)), "flush")
	must(v.Release(ctx, f), "release")

	// Metadata and xattrs.
	_, post, _, err := v.Setattr(ctx, GFID(1), &xdr.Iatt{Mode: 0o600}, fop.SetAttrMode, nil)
	must(err, "setattr mode")
	if post.Mode != syscall.S_IFREG|0o600 {
		t.Errorf("setattr: mode %o, want 100600", post.Mode)
	}
	must(fop.ErrOnly(v.Setxattr(ctx, GFID(1), xdr.Dict{{Key: "user.k", Value: xdr.Ptr([]byte("v1"))}}, 0, nil)), "setxattr")
	d, _, err := v.Getxattr(ctx, GFID(1), "user.k", nil)
	if b, ok := d.Bytes("user.k"); err != nil || !ok || string(b) != "v1" {
		t.Errorf("getxattr user.k: %q %v", b, err)
	}
	_, _, err = v.Getxattr(ctx, GFID(1), "user.missing", nil)
	want(err, syscall.ENODATA, "getxattr of a missing key")
	must(fop.ErrOnly(v.Removexattr(ctx, GFID(1), "user.k", nil)), "removexattr")
	_, _, err = v.Getxattr(ctx, GFID(1), "user.k", nil)
	want(err, syscall.ENODATA, "getxattr after removexattr")

	// Directories, links, renames.
	_, _, err = v.Mkdir(ctx, RootGFID, "d", 0o755, 0, GFID(3), nil)
	must(err, "mkdir d")
	_, _, err = v.Symlink(ctx, GFID(3), "s", "../f", 0, GFID(4), nil)
	must(err, "symlink d/s")
	if tgt, _, err := v.Readlink(ctx, GFID(4), nil); err != nil || tgt != "../f" {
		t.Errorf("readlink: %q %v", tgt, err)
	}
	st, _, err = v.Link(ctx, GFID(1), GFID(3), "hard", nil)
	must(err, "link d/hard")
	if st.Nlink != 2 {
		t.Errorf("link: nlink %d, want 2", st.Nlink)
	}
	want(fop.ErrOnly(v.Rmdir(ctx, RootGFID, "d", 0, nil)), syscall.ENOTEMPTY, "rmdir of a directory with entries")
	_, _, err = v.Rename(ctx, RootGFID, "f", GFID(3), "g", nil)
	must(err, "rename f to d/g")
	_, _, err = v.Lookup(ctx, RootGFID, "f", xdr.GFID{}, nil)
	want(err, syscall.ENOENT, "lookup of the renamed-away name")
	if st, _, err := v.Lookup(ctx, GFID(3), "g", xdr.GFID{}, nil); err != nil || st.GFID != GFID(1) {
		t.Errorf("lookup d/g: %v %v", st.GFID, err)
	}
	// rename(2)'s refusals, as a posix brick gives them.
	_, _, err = v.Mkdir(ctx, GFID(3), "sub", 0o755, 0, GFID(9), nil)
	must(err, "mkdir d/sub")
	_, _, err = v.Rename(ctx, GFID(3), "g", GFID(3), "sub", nil)
	want(err, syscall.EISDIR, "rename of a file over a directory")
	_, _, err = v.Rename(ctx, GFID(3), "sub", GFID(3), "g", nil)
	want(err, syscall.ENOTDIR, "rename of a directory over a file")
	_, _, err = v.Rename(ctx, RootGFID, "d", GFID(9), "loop", nil)
	want(err, syscall.EINVAL, "rename of a directory into itself")
	must(fop.ErrOnly(v.Rmdir(ctx, GFID(3), "sub", 0, nil)), "rmdir d/sub")
	dir, _, err := v.Opendir(ctx, GFID(3), nil)
	must(err, "opendir d")
	var names []string
	for off, eof := uint64(0), false; !eof; {
		ents, e, _, err := v.Readdirp(ctx, dir, off, 4096, nil)
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
		must(fop.ErrOnly(v.Unlink(ctx, GFID(3), n, nil)), "unlink d/"+n)
	}
	want(fop.ErrOnly(v.Unlink(ctx, GFID(3), "g", nil)), syscall.ENOENT, "unlink of a missing name")
	must(fop.ErrOnly(v.Rmdir(ctx, RootGFID, "d", 0, nil)), "rmdir d")
	if _, _, err = v.Stat(ctx, GFID(1), nil); errno(err) != syscall.ENOENT && errno(err) != syscall.ESTALE {
		t.Errorf("stat of a file whose last name is gone: %v, want ENOENT or ESTALE", err)
	}

	// The rest of the table.
	st, _, err = v.Mknod(ctx, RootGFID, "fifo", syscall.S_IFIFO|0o640, 0, 0, GFID(5), nil)
	if err != nil || st.Mode != syscall.S_IFIFO|0o640 {
		t.Errorf("mknod fifo: mode %o, %v", st.Mode, err)
	}
	must(fop.ErrOnly(v.Unlink(ctx, RootGFID, "fifo", nil)), "unlink fifo")
	must(fop.ErrOnly(v.Access(ctx, RootGFID, 7, nil)), "access")
	if sf, _, err := v.Statfs(ctx, RootGFID, nil); err != nil || sf.Bsize == 0 || sf.Blocks == 0 {
		t.Errorf("statfs: %+v, %v", sf, err)
	}
	g, _, _, err := v.Create(ctx, RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, GFID(6), nil)
	must(err, "create g")
	_, _, _, err = v.Write(ctx, g, 0, bytes.Repeat([]byte{0xab}, 8192), nil)
	must(err, "write g")
	must(fop.ErrOnlyPrePost(v.Fallocate(ctx, g, 1, 8192, 4096, nil)), "fallocate KEEP_SIZE past EOF")
	if st, _, err := v.Fstat(ctx, g, nil); err != nil || st.Size != 8192 {
		t.Errorf("fallocate KEEP_SIZE: size %d, %v; want 8192", st.Size, err)
	}
	fpre, fpost, _, err := v.Fallocate(ctx, g, 0, 8192, 4096, nil)
	must(err, "fallocate past EOF")
	if fpre.Size != 8192 || fpost.Size != 12288 {
		t.Errorf("fallocate's attributes before and after: size %d -> %d, want 8192 -> 12288", fpre.Size, fpost.Size)
	}
	if st, _, err := v.Fstat(ctx, g, nil); err != nil || st.Size != 12288 {
		t.Errorf("fallocate: size %d, %v; want 12288", st.Size, err)
	}
	must(fop.ErrOnlyPrePost(v.Discard(ctx, g, 0, 4096, nil)), "discard")
	if got, _, err := v.Read(ctx, g, 0, 8192, nil); err != nil || !bytes.Equal(got[:4096], make([]byte, 4096)) || got[4096] != 0xab {
		t.Errorf("after discard [0, 4096): %v", err)
	}
	if st, _, err := v.Fstat(ctx, g, nil); err != nil || st.Size != 12288 {
		t.Errorf("discard changed the size: %d, %v", st.Size, err)
	}
	if o, _, err := v.Seek(ctx, g, 4096, fop.SeekData, nil); err != nil || o < 4096 || o > 8192 {
		t.Errorf("SEEK_DATA from 4096: %d, %v", o, err)
	}
	_, _, err = v.Seek(ctx, g, 1<<20, fop.SeekData, nil)
	want(err, syscall.ENXIO, "SEEK_DATA past EOF")
	_, _, _, err = v.Truncate(ctx, GFID(6), 100, nil)
	must(err, "truncate g")
	_, post, _, err = v.Fsetattr(ctx, g, &xdr.Iatt{Mode: 0o640}, fop.SetAttrMode, nil)
	if err != nil || post.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("fsetattr: mode %o, %v", post.Mode, err)
	}
	if st, _, err := v.Stat(ctx, GFID(6), nil); err != nil || st.Size != 100 || st.Mode != syscall.S_IFREG|0o640 {
		t.Errorf("stat g: size %d mode %o, %v; want 100 100640", st.Size, st.Mode, err)
	}
	if _, _, err := v.Lk(ctx, g, fop.LkSet, xdr.Flock{Type: fop.LkWrite, Len: 10}, nil); err != nil {
		t.Errorf("lk: %v", err)
	}
	if _, _, err := v.Lk(ctx, g, fop.LkSet, xdr.Flock{Type: fop.LkUnlock, Len: 10}, nil); err != nil {
		t.Errorf("unlock: %v", err)
	}
	must(v.Release(ctx, g), "release g")
	root, _, err := v.Opendir(ctx, RootGFID, nil)
	must(err, "opendir /")
	must(fop.ErrOnly(v.Fsyncdir(ctx, root, false, nil)), "fsyncdir")
	must(v.Release(ctx, root), "releasedir /")
	must(fop.ErrOnly(v.Unlink(ctx, RootGFID, "g", nil)), "unlink g")

	parentFops(t, v, must, want)
}

// parentFops checks the fops a parent layer drives through a node: inode
// and entry locks in the parent's domains, xattrop, copy_file_range.
func parentFops(t *testing.T, v fop.Fops, must func(error, string), want func(error, syscall.Errno, string)) {
	t.Helper()
	bg := context.Background()
	a := fop.WithCaller(bg, &fop.Caller{Pid: 1, LkOwner: []byte("owner-a!")})
	b := fop.WithCaller(bg, &fop.Caller{Pid: 2, LkOwner: []byte("owner-b!")})
	const dom = "contract.test"
	f, _, _, err := v.Create(bg, RootGFID, "locks", uint32(syscall.O_RDWR), 0o644, 0, GFID(7), nil)
	must(err, "create locks")
	wr := func(start, n uint64) xdr.Flock { return xdr.Flock{Type: fop.LkWrite, Start: start, Len: n} }
	un := func(start, n uint64) xdr.Flock { return xdr.Flock{Type: fop.LkUnlock, Start: start, Len: n} }

	// Inode locks: ranges conflict between owners, not within one, and
	// an unlock drops only the range it names.
	must(fop.ErrOnly(v.Inodelk(a, GFID(7), dom, fop.LkSet, wr(0, 10), nil)), "inodelk a [0,10)")
	must(fop.ErrOnly(v.Inodelk(a, GFID(7), dom, fop.LkSet, wr(100, 10), nil)), "inodelk a [100,110)")
	want(fop.ErrOnly(v.Inodelk(b, GFID(7), dom, fop.LkSet, wr(5, 10), nil)), syscall.EAGAIN, "inodelk b over a's range")
	must(fop.ErrOnly(v.Inodelk(b, GFID(7), "contract.other", fop.LkSet, wr(5, 10), nil)), "inodelk b in another domain")
	must(fop.ErrOnly(v.Inodelk(b, GFID(7), "contract.other", fop.LkSet, un(5, 10), nil)), "unlock b in another domain")
	must(fop.ErrOnly(v.Inodelk(b, GFID(7), dom, fop.LkSet, wr(20, 10), nil)), "inodelk b [20,30)")
	must(fop.ErrOnly(v.Inodelk(a, GFID(7), dom, fop.LkSet, un(0, 10), nil)), "unlock a [0,10)")
	want(fop.ErrOnly(v.Finodelk(b, f, dom, fop.LkSet, wr(100, 1), nil)), syscall.EAGAIN, "finodelk b over a's other range, still held")
	must(fop.ErrOnly(v.Finodelk(b, f, dom, fop.LkSet, wr(0, 10), nil)), "finodelk b [0,10) after a's unlock")
	must(fop.ErrOnly(v.Finodelk(b, f, dom, fop.LkSet, un(0, 10), nil)), "finodelk unlock b [0,10)")
	must(fop.ErrOnly(v.Inodelk(b, GFID(7), dom, fop.LkSet, un(20, 10), nil)), "unlock b [20,30)")
	must(fop.ErrOnly(v.Inodelk(a, GFID(7), dom, fop.LkSet, un(100, 10), nil)), "unlock a [100,110)")
	must(fop.ErrOnly(v.Inodelk(b, GFID(7), dom, fop.LkSet, wr(0, 0), nil)), "inodelk b on the whole file once free")
	must(fop.ErrOnly(v.Inodelk(b, GFID(7), dom, fop.LkSet, un(0, 0), nil)), "unlock b whole file")

	// Entry locks: one name, or the whole directory with "".
	must(fop.ErrOnly(v.Entrylk(a, RootGFID, "n", dom, fop.EntrylkLockNB, fop.LkWrite, nil)), "entrylk a n")
	want(fop.ErrOnly(v.Entrylk(b, RootGFID, "n", dom, fop.EntrylkLockNB, fop.LkWrite, nil)), syscall.EAGAIN, "entrylk b on a's name")
	must(fop.ErrOnly(v.Entrylk(b, RootGFID, "m", dom, fop.EntrylkLockNB, fop.LkWrite, nil)), "entrylk b on another name")
	want(fop.ErrOnly(v.Entrylk(a, RootGFID, "", dom, fop.EntrylkLockNB, fop.LkWrite, nil)), syscall.EAGAIN, "entrylk a on the directory while b holds a name")
	must(fop.ErrOnly(v.Entrylk(b, RootGFID, "m", dom, fop.EntrylkUnlock, fop.LkWrite, nil)), "entry unlock b m")
	must(fop.ErrOnly(v.Entrylk(a, RootGFID, "n", dom, fop.EntrylkUnlock, fop.LkWrite, nil)), "entry unlock a n")
	must(fop.ErrOnly(v.Entrylk(b, RootGFID, "n", dom, fop.EntrylkLock, fop.LkWrite, nil)), "blocking entrylk b on the freed name")
	must(fop.ErrOnly(v.Entrylk(b, RootGFID, "n", dom, fop.EntrylkUnlock, fop.LkWrite, nil)), "entry unlock b n")

	// Xattrop: 64-bit adds (shard's file size), through the inode and
	// through an fd; an all-zero add only reads.
	size := func(n int64) xdr.Dict {
		b := make([]byte, 8)
		for i := 0; i < 8; i++ {
			b[i] = byte(uint64(n) >> (56 - 8*i))
		}
		return xdr.Dict{{Key: "trusted.contract.size", Value: xdr.Ptr(b)}}
	}
	read := func(d xdr.Dict) int64 {
		b, _ := d.Bytes("trusted.contract.size")
		var n uint64
		for _, c := range b {
			n = n<<8 | uint64(c)
		}
		return int64(n)
	}
	out, _, err := v.Xattrop(bg, GFID(7), fop.XattropAddArray64, size(5000), nil)
	if must(err, "xattrop +5000"); read(out) != 5000 {
		t.Errorf("xattrop +5000 on a missing key: %d", read(out))
	}
	out, _, err = v.Fxattrop(bg, f, fop.XattropAddArray64, size(-1000), nil)
	if must(err, "fxattrop -1000"); read(out) != 4000 {
		t.Errorf("fxattrop -1000: %d, want 4000", read(out))
	}
	out, _, err = v.Xattrop(bg, GFID(7), fop.XattropAddArray64, size(0), nil)
	if must(err, "xattrop +0"); read(out) != 4000 {
		t.Errorf("xattrop +0 reads %d, want 4000", read(out))
	}
	zero := xdr.Dict{{Key: "trusted.contract.none", Value: xdr.Ptr(make([]byte, 8))}}
	must(fop.ErrOnly2(v.Xattrop(bg, GFID(7), fop.XattropAddArray64, zero, nil)), "xattrop +0 on a missing key")
	_, _, err = v.Getxattr(bg, GFID(7), "trusted.contract.none", nil)
	want(err, syscall.ENODATA, "getxattr of a key only an all-zero xattrop named")

	// copy_file_range between two open files.
	data := bytes.Repeat([]byte("clone me"), 1024)
	_, _, _, err = v.Write(bg, f, 0, data, nil)
	must(err, "write the source")
	dst, _, _, err := v.Create(bg, RootGFID, "copy", uint32(syscall.O_RDWR), 0o644, 0, GFID(8), nil)
	must(err, "create copy")
	n, post, _, err := v.CopyFileRange(bg, f, 0, dst, 100, uint64(len(data)), 0, nil)
	if fop.Errno(err) == syscall.EXDEV {
		// A layer whose two files live on different subvolumes may
		// decline; the kernel (or the caller) then copies the bytes.
		t.Logf("copy_file_range between the two files: EXDEV, the caller copies")
	} else if err != nil || n != uint64(len(data)) || post.Size != uint64(100+len(data)) {
		t.Errorf("copy_file_range: %d bytes, size after %d, %v; want %d bytes, size %d", n, post.Size, err, len(data), 100+len(data))
	}
	ro, _, err2 := v.Open(bg, GFID(8), uint32(syscall.O_RDONLY), nil)
	must(err2, "open copy read-only")
	if fop.Errno(err) != syscall.EXDEV {
		if got, _, err := v.Read(bg, dst, 100, uint32(len(data)), nil); err != nil || !bytes.Equal(got, data) {
			t.Errorf("read of the copy: %d bytes, %v", len(got), err)
		}
		n, _, _, err = v.CopyFileRange(bg, f, uint64(len(data))-8, dst, 0, 4096, 0, nil)
		if err != nil || n != 8 {
			t.Errorf("copy_file_range across the source's EOF: %d bytes, %v; want 8", n, err)
		}
		_, _, _, err = v.CopyFileRange(bg, f, 0, ro, 0, 10, 0, nil)
		want(err, syscall.EBADF, "copy_file_range into a read-only fd")
	}
	for _, fd := range []*fop.Fd{ro, dst, f} {
		must(v.Release(bg, fd), "release")
	}
	must(fop.ErrOnly(v.Unlink(bg, RootGFID, "copy", nil)), "unlink copy")
	must(fop.ErrOnly(v.Unlink(bg, RootGFID, "locks", nil)), "unlink locks")
}
