package dht

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// phase1 puts file g (name in the root, on subvolume 0) in migration
// phase 1 towards subvolume 1, as __dht_rebalance_create_dst_file and
// __dht_rebalance_open_src_file leave it, and returns the daemon's fd.
func (e *env) phase1(name string, g xdr.GFID, data string) *fop.Fd {
	dst, _, _, err := e.m[1].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), syscall.S_ISVTX, 0, g,
		xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-0")))
	e.must(err, "destination")
	_, _, _, err = e.m[1].Write(e.ctx, dst, 0, []byte(data), nil)
	e.must(err, "copy")
	e.must(fop.ErrOnly(e.m[0].Setxattr(e.ctx, g, xdr.Dict{}.With(xattrLinkto, xdr.Str("v-replicate-1")), 0, nil)), "source linkto")
	_, _, _, err = e.m[0].Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o644 | syscall.S_ISVTX | syscall.S_ISGID}, fop.SetAttrMode, nil)
	e.must(err, "source bits")
	return dst
}

// The migration ends (the source removed) between the source's write and
// the look at its linkto xattr: the write is made again on the file.
func TestMigrationEndsUnderMirror(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("aaaaaaaa"), nil)
	e.must(err, "write")
	dst := e.phase1(name, g, "aaaaaaaa")
	before := e.m[0].Calls("GETXATTR")
	release := e.m[0].Hang("GETXATTR")
	done := make(chan error)
	go func() { _, _, _, err := e.d.Write(e.ctx, f, 2, []byte("bb"), nil); done <- err }()
	waitCalled(t, e.m[0], "GETXATTR", before)
	// The daemon finishes: the destination is the file, the source gone.
	_, _, _, err = e.m[1].Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o644}, fop.SetAttrMode, nil)
	e.must(err, "dst mode")
	e.must(fop.ErrOnly(e.m[1].Removexattr(e.ctx, g, xattrLinkto, nil)), "dst linkto")
	e.must(e.m[1].Release(e.ctx, dst), "daemon closes")
	_, err = e.m[0].Unlink(e.ctx, xdr.RootGFID, name, nil)
	e.must(err, "unlink src")
	e.m[0].Refuse("GETXATTR", syscall.ENOENT) // posix: the gfid handle went to .glusterfs/unlink
	release()
	if err := <-done; err != nil {
		t.Fatalf("write: %v", err)
	}
	if b, _ := e.m[1].Data(g); string(b) != "aabbaaaa" {
		t.Errorf("dst holds %q", b)
	}
	e.must(e.d.Release(e.ctx, f), "release")
	if n := e.m[1].OpenFds(); n != 0 {
		t.Errorf("%d fds left on dst", n)
	}
}

// Many writers through one fd and anonymous fds in phase 1 while the
// migration ends: every write lands on the file (and -race is quiet).
func TestMigrationConcurrentPhase1(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, make([]byte, 64), nil)
	e.must(err, "write")
	dst := e.phase1(name, g, string(make([]byte, 64)))
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				var ff *fop.Fd = f
				if k%3 == 0 {
					ff = &fop.Fd{GFID: g, Anon: true}
				}
				if _, _, _, err := e.d.Write(e.ctx, ff, uint64(w*8), []byte(fmt.Sprintf("%08d", k)), nil); err != nil {
					errs <- err
				}
				if _, _, err := e.d.Read(e.ctx, ff, 0, 64, nil); err != nil {
					errs <- err
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	_, _, _, _ = e.m[1].Setattr(e.ctx, g, &xdr.Iatt{Mode: 0o644}, fop.SetAttrMode, nil)
	_ = fop.ErrOnly(e.m[1].Removexattr(e.ctx, g, xattrLinkto, nil))
	_ = e.m[1].Release(e.ctx, dst)
	_, _, _, _ = e.m[0].Setattr(e.ctx, g, &xdr.Iatt{Mode: syscall.S_ISVTX}, fop.SetAttrMode, nil)
	_, _, _, _ = e.m[0].Truncate(e.ctx, g, 0, nil)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("op: %v", err)
	}
	b, _ := e.m[1].Data(g)
	for w := range 8 {
		if got := string(b[w*8 : w*8+8]); got != "00000049" {
			t.Errorf("writer %d: dst holds %q", w, got)
		}
	}
	e.must(e.d.Release(e.ctx, f), "release")
}

// Truncate by gfid after the migration ended (source a linkto file, the
// table still naming it): the data file must be truncated.
func TestMigrationTruncatePhase2(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("aaaaaaaa"), nil)
	e.must(err, "write")
	e.migrate(name, g, "aaaaaaaa")
	_, _, _, err = e.d.Truncate(e.ctx, g, 2, nil)
	e.must(err, "truncate")
	if b, _ := e.m[1].Data(g); string(b) != "aa" {
		t.Errorf("data file holds %q after truncate", b)
	}
	e.must(e.d.Release(e.ctx, f), "release")
}

// copy_file_range into a file migrated away (source linkto, not removed).
func TestMigrationCopyFileRangePhase2(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	var g2 xdr.GFID
	for i := 0; ; i++ {
		n := fmt.Sprintf("src%d", i)
		gg := e.create(xdr.RootGFID, n)
		if d, _ := e.where(xdr.RootGFID, n); len(d) == 1 && d[0] == 0 {
			g2 = gg
			break
		}
	}
	in, _, err := e.d.Open(e.ctx, g2, uint32(syscall.O_RDWR), nil)
	e.must(err, "open in")
	_, _, _, err = e.d.Write(e.ctx, in, 0, []byte("zz"), nil)
	e.must(err, "write in")
	f, _, err := e.d.Open(e.ctx, g, uint32(syscall.O_RDWR), nil)
	e.must(err, "open")
	_, _, _, err = e.d.Write(e.ctx, f, 0, []byte("aaaaaaaa"), nil)
	e.must(err, "write")
	e.migrate(name, g, "aaaaaaaa")
	n, _, _, err := e.d.CopyFileRange(e.ctx, in, 0, f, 0, 2, 0, nil)
	if err == nil && n > 0 {
		if b, _ := e.m[1].Data(g); string(b) != "zzaaaaaa" {
			t.Errorf("copy acknowledged, data file holds %q", b)
		}
	} else if fop.Errno(err) != syscall.EXDEV {
		t.Errorf("copy into a file migrated away: %d, %v; want it done or EXDEV (the kernel copies)", n, err)
	}
}

// waitCalled waits until m was sent fop more than before times.
func waitCalled(t *testing.T, m *foptest.Mem, fop string, before int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); m.Calls(fop) <= before; {
		if time.Now().After(deadline) {
			t.Fatalf("no %s reached %s", fop, m.Name())
		}
		time.Sleep(time.Millisecond)
	}
}

// The daemon's bits never show in a create that opens the file (no
// O_EXCL) or in a hard link's reply.
func TestMigrationBitsStripped(t *testing.T) {
	e := newEnv(t, 2, DefaultOptions())
	name, g := e.createOn(0)
	e.phase1(name, g, "")
	f, st, _, err := e.d.Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), 0o644, 0, e.gfid(), nil)
	e.must(err, "create of an existing file")
	if st.Mode&07777 != 0o644 {
		t.Errorf("create reply mode %o", st.Mode&07777)
	}
	e.must(e.d.Release(e.ctx, f), "release")
	st, _, err = e.d.Link(e.ctx, g, xdr.RootGFID, "hardlink", nil)
	e.must(err, "link")
	if st.Mode&07777 != 0o644 {
		t.Errorf("link reply mode %o", st.Mode&07777)
	}
}

// A location cached for a subvolume that left (a lookup racing the
// change) is not used: the file is found where it is.
func TestWhereSkipsRemovedSubvolume(t *testing.T) {
	e := newEnv(t, 3, DefaultOptions())
	name, g := e.createOn(0)
	nf, _, _, err := e.m[1].Create(e.ctx, xdr.RootGFID, name, uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	e.must(err, "moved copy")
	e.must(e.m[1].Release(e.ctx, nf), "release")
	_, err = e.m[0].Unlink(e.ctx, xdr.RootGFID, name, nil)
	e.must(err, "old copy removed")
	_, _, err = e.d.Regraph([]fop.Subvolume{e.m[1], e.m[2]})
	e.must(err, "regraph")
	e.d.setFile(g, 0)
	stats := e.m[0].Calls("STAT")
	_, _, err = e.d.Stat(e.ctx, g, nil)
	e.must(err, "stat")
	if n := e.m[0].Calls("STAT") - stats; n != 0 {
		t.Errorf("stat went to the removed subvolume %d times", n)
	}
}
