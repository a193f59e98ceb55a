package brick

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// goldenReplies returns the bodies of every golden reply record.
func goldenReplies(tb testing.TB) [][]byte {
	names, _ := filepath.Glob(filepath.Join("testdata", "wire", "*reply.hex"))
	var out [][]byte
	for _, n := range names {
		out = append(out, replyBody(tb, filepath.Base(n)))
	}
	if len(out) < 20 {
		tb.Fatalf("only %d golden replies", len(out))
	}
	return out
}

// minDirent is the smallest encoded gfx_dirplist entry: present flag, ino,
// off, d_len, d_type, empty name, iattx, NULL dict.
const minDirent = 4 + 8 + 8 + 4 + 4 + 4 + xdr.IattSize + 12

func FuzzDecodeReaddirp(f *testing.F) {
	for _, b := range goldenReplies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := xdr.NewDecoder(in)
		ret, _ := d.Int32(), d.Int32()
		ents, eof, _, err := DecodeReaddirp(d, ret)
		if err != nil {
			if ents != nil || eof {
				t.Fatal("error with results")
			}
			return
		}
		if len(ents)*minDirent > len(in) {
			t.Fatalf("%d entries from %d bytes", len(ents), len(in))
		}
		if len(ents) == 0 && !eof {
			t.Fatal("empty list without eof")
		}
	})
}

func FuzzDecodeDump(f *testing.F) {
	for _, b := range goldenReplies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ps, err := DecodeDump(in)
		if err != nil {
			return
		}
		n := 0
		for _, p := range ps {
			n += 4 + 4 + xdr.Pad(len(p.Name)) + 16
		}
		if 16+n+4 > len(in) {
			t.Fatalf("%d programs from %d bytes", len(ps), len(in))
		}
	})
}

func FuzzDecodePortByBrick(f *testing.F) {
	for _, b := range goldenReplies(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		port, err := DecodePortByBrick(in)
		if err != nil {
			return
		}
		if port <= 0 || port > 65535 || len(in) < 16 || int(binary.BigEndian.Uint32(in[12:])) != port {
			t.Fatalf("port %d from %x", port, in)
		}
	})
}

// TestReaddirpAllocationBound: a 24-byte READDIRP reply claiming op_ret
// 65535 must not make the client allocate room for 65535 entries.
func TestReaddirpAllocationBound(t *testing.T) {
	in := bricktest.CommonRsp(65535, 0)
	in[0], in[1], in[2], in[3] = 0, 0, 0xff, 0xff
	in = append(in, 0, 0, 0, 0) // empty list
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 10; i++ {
		d := xdr.NewDecoder(in)
		ret, _ := d.Int32(), d.Int32()
		if _, _, _, err := DecodeReaddirp(d, ret); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 10; per > 64<<10 {
		t.Fatalf("decoding a %d-byte READDIRP reply allocated %d bytes (op_ret is trusted to size the entry slice)", len(in), per)
	}
}

// fopRun is one Client method under FuzzFopReplies, with the smallest reply
// body its success requires.
type fopRun struct {
	name string
	min  int
	run  func(ctx context.Context, c *Client, fd *Fd) error
}

const (
	hdr   = 8 + 12 // op_ret, op_errno, NULL xdata
	iatts = xdr.IattSize
)

var g1 = xdr.GFID{1: 1, 15: 7}

var fopRuns = []fopRun{
	{"Lookup", hdr + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Lookup(ctx, xdr.RootGFID, "a", xdr.GFID{}, nil)
		return err
	}},
	{"Stat", hdr + iatts, func(ctx context.Context, c *Client, _ *Fd) error { _, _, err := c.Stat(ctx, g1, nil); return err }},
	{"Fstat", hdr + iatts, func(ctx context.Context, c *Client, f *Fd) error { _, _, err := c.Fstat(ctx, f, nil); return err }},
	{"Setattr", hdr + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, _, err := c.Setattr(ctx, g1, &xdr.Iatt{Mode: 0600}, SetAttrMode, nil)
		return err
	}},
	{"Fsetattr", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error {
		_, _, _, err := c.Fsetattr(ctx, f, &xdr.Iatt{}, SetAttrMtime, nil)
		return err
	}},
	{"Truncate", hdr + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, _, err := c.Truncate(ctx, g1, 5, nil)
		return err
	}},
	{"Ftruncate", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error {
		_, _, _, err := c.Ftruncate(ctx, f, 5, nil)
		return err
	}},
	{"Access", hdr, func(ctx context.Context, c *Client, _ *Fd) error { return fop.ErrOnly(c.Access(ctx, g1, 4, nil)) }},
	{"Open", hdr + 8, func(ctx context.Context, c *Client, _ *Fd) error {
		f, _, err := c.Open(ctx, g1, 2, nil)
		if err == nil {
			err = c.Release(ctx, f) // fuzzes RELEASE too
		}
		return err
	}},
	{"Opendir", hdr + 8, func(ctx context.Context, c *Client, _ *Fd) error {
		f, _, err := c.Opendir(ctx, g1, nil)
		if err == nil {
			err = c.Release(ctx, f) // RELEASEDIR
		}
		return err
	}},
	{"Readdirp", hdr + 4, func(ctx context.Context, c *Client, f *Fd) error {
		_, _, _, err := c.Readdirp(ctx, f, 0, 4096, nil)
		return err
	}},
	{"Create", hdr + 3*iatts + 8, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, _, err := c.Create(ctx, xdr.RootGFID, "c", 0102, 0100644, 0, g1, nil)
		return err
	}},
	{"Mkdir", hdr + 3*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Mkdir(ctx, xdr.RootGFID, "d", 0755, 0, g1, nil)
		return err
	}},
	{"Mknod", hdr + 3*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Mknod(ctx, xdr.RootGFID, "n", 010644, 0, 0, g1, nil)
		return err
	}},
	{"Symlink", hdr + 3*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Symlink(ctx, xdr.RootGFID, "s", "t", 0, g1, nil)
		return err
	}},
	{"Readlink", hdr + iatts + 4, func(ctx context.Context, c *Client, _ *Fd) error { _, _, err := c.Readlink(ctx, g1, nil); return err }},
	{"Link", hdr + 3*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Link(ctx, g1, xdr.RootGFID, "l", nil)
		return err
	}},
	{"Unlink", hdr + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		return fop.ErrOnly(c.Unlink(ctx, xdr.RootGFID, "u", nil))
	}},
	{"Rmdir", hdr + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		return fop.ErrOnly(c.Rmdir(ctx, xdr.RootGFID, "r", 0, nil))
	}},
	{"Rename", hdr + 5*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Rename(ctx, xdr.RootGFID, "a", xdr.RootGFID, "b", nil)
		return err
	}},
	{"Read", 8 + iatts + 4 + 12, nil}, // checked separately: data length
	{"Write", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error {
		_, _, _, err := c.Write(ctx, f, 0, []byte("0123456789"), nil)
		return err
	}},
	{"Flush", hdr, func(ctx context.Context, c *Client, f *Fd) error { return fop.ErrOnly(c.Flush(ctx, f, nil)) }},
	{"Fsync", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error { return fop.ErrOnly(c.Fsync(ctx, f, true, nil)) }},
	{"Fsyncdir", hdr, func(ctx context.Context, c *Client, f *Fd) error { return fop.ErrOnly(c.Fsyncdir(ctx, f, false, nil)) }},
	{"Statfs", hdr + 88, func(ctx context.Context, c *Client, _ *Fd) error { _, _, err := c.Statfs(ctx, g1, nil); return err }},
	{"Getxattr", hdr + 12 + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Getxattr(ctx, g1, "user.x", nil)
		return err
	}},
	{"Setxattr", hdr, func(ctx context.Context, c *Client, _ *Fd) error {
		return fop.ErrOnly(c.Setxattr(ctx, g1, xdr.Dict{{Key: "user.x", Value: xdr.Ptr([]byte("v"))}}, 0, nil))
	}},
	{"Removexattr", hdr, func(ctx context.Context, c *Client, _ *Fd) error {
		return fop.ErrOnly(c.Removexattr(ctx, g1, "user.x", nil))
	}},
	{"Xattrop", hdr + 12 + 2*iatts, func(ctx context.Context, c *Client, _ *Fd) error {
		_, _, err := c.Xattrop(ctx, g1, 0, xdr.Dict{{Key: "trusted.afr.dirty", Value: xdr.Ptr(make([]byte, 12))}}, nil)
		return err
	}},
	{"Fallocate", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error {
		return fop.ErrOnlyPrePost(c.Fallocate(ctx, f, 0, 0, 10, nil))
	}},
	{"Discard", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error {
		return fop.ErrOnlyPrePost(c.Discard(ctx, f, 0, 10, nil))
	}},
	{"Zerofill", hdr + 2*iatts, func(ctx context.Context, c *Client, f *Fd) error {
		return fop.ErrOnlyPrePost(c.Zerofill(ctx, f, 0, 10, nil))
	}},
	{"Seek", hdr + 8, func(ctx context.Context, c *Client, f *Fd) error {
		_, _, err := c.Seek(ctx, f, 0, SeekData, nil)
		return err
	}},
	{"Lk", hdr + 32, func(ctx context.Context, c *Client, f *Fd) error {
		_, _, err := c.Lk(ctx, f, LkGet, xdr.Flock{Type: LkWrite}, nil)
		return err
	}},
	{"Inodelk", hdr, func(ctx context.Context, c *Client, _ *Fd) error {
		return fop.ErrOnly(c.Inodelk(ctx, g1, "vol-replicate-0", LkSet, xdr.Flock{Type: LkWrite}, nil))
	}},
	{"Entrylk", hdr, func(ctx context.Context, c *Client, _ *Fd) error {
		return fop.ErrOnly(c.Entrylk(ctx, xdr.RootGFID, "e", "vol-replicate-0", EntrylkLockNB, LkWrite, nil))
	}},
}

// FuzzFopReplies answers every fop of a live Client with the fuzzed body, so
// every inline reply decoder in fops.go runs on it. No fop may panic, every
// error must be an *OpError naming the brick, and a success must have had at
// least the bytes its reply struct needs.
func FuzzFopReplies(f *testing.F) {
	for _, b := range goldenReplies(f) {
		f.Add(b)
	}
	fk := bricktest.New(f, bricktest.Options{})
	var body atomic.Pointer[[]byte]
	fuzzed := func(*bricktest.Call) bricktest.Reply { return bricktest.OK(*body.Load()) }
	c := startClient(f, fk, func(cfg *Config) { cfg.PingInterval = time.Hour })
	ctx := context.Background()
	file, _, err := c.Open(ctx, g1, 2, nil) // a real fd, opened before the fuzzing starts
	if err != nil {
		f.Fatal(err)
	}
	dir, _, err := c.Opendir(ctx, xdr.RootGFID, nil)
	if err != nil {
		f.Fatal(err)
	}
	fk.HandleAll(fuzzed)
	for _, p := range []uint32{opOpen, opOpendir, opRelease, opReleasedir, opFlush} {
		fk.Handle(p, fuzzed)
	}

	f.Fuzz(func(t *testing.T, in []byte) {
		in = append([]byte(nil), in...)
		body.Store(&in)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		check := func(name string, min int, err error) {
			if err != nil {
				var oe *OpError
				if !errors.As(err, &oe) || oe.Brick != "fake-client-0" {
					t.Fatalf("%s: error %v is not an *OpError of the brick", name, err)
				}
				if Errno(err) == 0 {
					t.Fatalf("%s: error %v has errno 0", name, err)
				}
				if strings.Contains(err.Error(), "connection lost") {
					t.Fatalf("%s: the connection broke: %v", name, err)
				}
				return
			}
			if len(in) < min {
				t.Fatalf("%s succeeded on %d bytes, its reply needs %d", name, len(in), min)
			}
		}
		for _, r := range fopRuns {
			if r.run == nil {
				continue
			}
			fd := file
			if r.name == "Readdirp" || r.name == "Fsyncdir" {
				fd = dir
			}
			check(r.name, r.min, r.run(ctx, c, fd))
		}
		data, _, err := c.Read(ctx, file, 0, 1<<20, nil)
		check("Read", 8+iatts+4+12+len(data), err)
		if err == nil {
			ret := int32(binary.BigEndian.Uint32(in))
			if int(ret) != len(data) || !bytes.Contains(in, data) {
				t.Fatalf("Read returned %d bytes for op_ret %d", len(data), ret)
			}
		}
	})
}
