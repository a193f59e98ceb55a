package fuse

import (
	"syscall"
	"testing"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

func TestFuseRdev(t *testing.T) {
	for _, c := range []struct {
		major, minor uint64
	}{{1, 3}, {8, 17}, {259, 1}, {4095, 1 << 19}} {
		got := fuseRdev(c.major<<32 | c.minor)
		// new_encode_dev, as glibc's makedev for 32-bit values.
		want := uint32(c.minor&0xff | c.major<<8 | (c.minor&^0xff)<<12)
		if got != want {
			t.Errorf("%d:%d -> %#x, want %#x", c.major, c.minor, got, want)
		}
	}
}

func TestToErrno(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{&fop.OpError{Errno: syscall.ENOENT}, syscall.ENOENT},
		{&fop.OpError{Errno: syscall.ENOSYS}, syscall.EIO}, // never ENOSYS: the kernel would stop asking
		{&fop.OpError{Errno: 0}, syscall.EIO},
		{syscall.EROFS, syscall.EROFS},
	} {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("%v -> %v, want %v", c.err, got, c.want)
		}
	}
}

func TestFillAttrAndIno(t *testing.T) {
	g, _ := xdr.ParseGFID("68e4ba95-0000-0000-92ce-e07f658841c8")
	a := xdr.Iatt{GFID: g, Size: 10, Mode: 0100644, Nlink: 2, UID: 7, GID: 8, Mtime: 5, MtimeNsec: 6, Blksize: 4096}
	var out gofuse.Attr
	fillAttr(&a, &out)
	if out.Ino != 0x92cee07f658841c8 || out.Size != 10 || out.Mode != 0100644 || out.Nlink != 2 || out.Uid != 7 || out.Gid != 8 || out.Mtime != 5 || out.Mtimensec != 6 {
		t.Fatalf("attr %+v", out)
	}
	if out.Blksize != 131072 {
		t.Errorf("st_blksize %d, want the native client's 131072", out.Blksize)
	}
	if inoOf(xdr.RootGFID) != 1 {
		t.Fatal("root ino")
	}
}

func TestHidden(t *testing.T) {
	f := New(nil, Options{VolumeID: "44a27f08-cb7e-471a-aed7-a6ca87483ec5"})
	if !f.hidden(xdr.RootGFID, ".glusterfs-anonymous-inode-44a27f08-cb7e-471a-aed7-a6ca87483ec5") {
		t.Error("anonymous-inode dir shown")
	}
	if f.hidden(xdr.RootGFID, ".glusterfs-anonymous-inode-other") {
		t.Error("a user's name hidden")
	}
	if f.hidden(xdr.GFID{1}, ".glusterfs-anonymous-inode-44a27f08-cb7e-471a-aed7-a6ca87483ec5") {
		t.Error("hidden outside the root")
	}
}

func TestFlock(t *testing.T) {
	fl := toFlock(&gofuse.FileLock{Start: 10, End: 1<<63 - 1, Typ: syscall.F_WRLCK})
	if fl.Len != 0 || fl.Start != 10 || fl.Type != 1 {
		t.Fatalf("to end of file: %+v", fl)
	}
	fl = toFlock(&gofuse.FileLock{Start: 10, End: 19, Typ: syscall.F_RDLCK})
	var back gofuse.FileLock
	fromFlock(&fl, &back)
	if fl.Len != 10 || back.Start != 10 || back.End != 19 {
		t.Fatalf("range: %+v %+v", fl, back)
	}
}
