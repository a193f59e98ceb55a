package xdr

import (
	"bytes"
	"encoding/hex"
	"github.com/brickfs/brickfs/brick/internal/golden"
	"testing"
)

// record loads a golden RPC record (brick/testdata/wire).
func record(tb testing.TB, name string) []byte { return golden.Record(tb, name) }

// body returns the procedure part of a golden record: after the 24-byte
// accepted-reply header, or after a call header with its credential.
func body(tb testing.TB, name string) []byte {
	tb.Helper()
	rec := record(tb, name)
	d := NewDecoder(rec)
	_ = d.Uint32()
	if d.Uint32() == 1 { // REPLY
		if st, vf, vl, as := d.Uint32(), d.Uint32(), d.Uint32(), d.Uint32(); st|vf|vl|as != 0 {
			tb.Fatalf("%s: not a plain accepted reply", name)
		}
	} else {
		for i := 0; i < 4; i++ {
			_ = d.Uint32()
		}
		_ = d.Uint32()
		_ = d.Opaque(400)
		_ = d.Uint32()
		_ = d.Opaque(400)
	}
	if d.Err() != nil {
		tb.Fatalf("%s: %v", name, d.Err())
	}
	return d.Remaining()
}

func mustGFID(tb testing.TB, s string) GFID {
	tb.Helper()
	g, err := ParseGFID(s)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// encodeDict re-encodes d alone.
func encodeDict(tb testing.TB, d Dict) []byte {
	tb.Helper()
	e := NewEncoder(64)
	if err := e.Dict(d); err != nil {
		tb.Fatal(err)
	}
	return e.B
}

// TestGoldenLookupRootCall decodes the native client's nameless LOOKUP of the
// root and re-encodes its xdata byte for byte.
func TestGoldenLookupRootCall(t *testing.T) {
	b := body(t, "fop-lookup-x9-call.hex")
	d := NewDecoder(b)
	gfid, par, flags, name := d.GFID(), d.GFID(), d.Uint32(), d.String(4096)
	xstart := d.Offset()
	x := d.Dict()
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if d.Len() != 0 {
		t.Fatalf("%d bytes left over", d.Len())
	}
	if gfid != RootGFID || !par.IsZero() || flags != 0 || name != "" {
		t.Fatalf("args = %v %v %d %q", gfid, par, flags, name)
	}
	want := Dict{
		{"trusted.glusterfs.mdata", Int(1)},
		{"glusterfs.content", Uint(65536)},
		{"security.ima", Int(0)},
		{"security.capability", Int(0)},
		{"gfid-req", UUID(RootGFID)},
	}
	if len(x) != len(want) {
		t.Fatalf("xdata has %d pairs, want %d: %+v", len(x), len(want), x)
	}
	for i := range want {
		if x[i].Key != want[i].Key || x[i].Value.Type != want[i].Value.Type ||
			x[i].Value.Int != want[i].Value.Int || !bytes.Equal(x[i].Value.Bytes, want[i].Value.Bytes) {
			t.Errorf("pair %d = %+v, want %+v", i, x[i], want[i])
		}
	}
	// Our encoder must produce the native bytes, xdr_size included.
	if got := encodeDict(t, want); !bytes.Equal(got, b[xstart:]) {
		t.Fatalf("encoded xdata differs from native:\n got %x\nwant %x", got, b[xstart:])
	}
	// And the whole argument struct.
	e := NewEncoder(256)
	e.GFID(RootGFID)
	e.GFID(GFID{})
	e.Uint32(0)
	e.String("")
	_ = e.Dict(want)
	if !bytes.Equal(e.B, b) {
		t.Fatalf("encoded LOOKUP args differ from native:\n got %x\nwant %x", e.B, b)
	}
}

var rootIattWant = Iatt{
	GFID: RootGFID, Flags: 0x17ff, Ino: 1, Dev: 65024, Size: 4096, Blocks: 8,
	Atime: 1795613158, Mtime: 1795613160, Ctime: 1795613160,
	MtimeNsec: 930250851, CtimeNsec: 930250851,
	Nlink: 3, Blksize: 4096, Mode: 040755,
}

func TestGoldenLookupRootReply(t *testing.T) {
	b := body(t, "fop-lookup-x9-reply.hex")
	d := NewDecoder(b)
	ret, errno := d.Int32(), d.Int32()
	xstart := d.Offset()
	x := d.Dict()
	xend := d.Offset()
	st := d.Iatt()
	post := d.Iatt()
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	if d.Len() != 0 {
		t.Fatalf("%d bytes left over", d.Len())
	}
	if ret != 0 || errno != 0 {
		t.Fatalf("op_ret %d op_errno %d", ret, errno)
	}
	md, ok := x.Bytes("trusted.glusterfs.mdata")
	if !ok || len(x) != 1 || len(md) != 57 || md[0] != 1 {
		t.Fatalf("xdata = %+v", x)
	}
	if v, _ := x.Get("trusted.glusterfs.mdata"); v.Type != TypePtr {
		t.Fatalf("mdata type %d, want PTR", v.Type)
	}
	// Atime and the ctime/atime nsecs vary; check the stable fields exactly.
	got := st
	got.Atime, got.AtimeNsec = rootIattWant.Atime, rootIattWant.AtimeNsec
	if got != rootIattWant {
		t.Errorf("stat =\n %+v\nwant\n %+v", st, rootIattWant)
	}
	if post != (Iatt{}) {
		t.Errorf("postparent of root = %+v, want zero", post)
	}
	// Round trip: the iatts and the dict re-encode to the same bytes.
	e := NewEncoder(512)
	e.Int32(ret)
	e.Int32(errno)
	_ = e.Dict(x)
	if !bytes.Equal(e.B[8:], b[xstart:xend]) {
		t.Fatalf("xdata re-encodes differently:\n got %x\nwant %x", e.B[8:], b[xstart:xend])
	}
	e.Iatt(&st)
	e.Iatt(&post)
	if !bytes.Equal(e.B, b) {
		t.Fatalf("reply re-encodes differently")
	}
}

func TestGoldenStatfsReply(t *testing.T) {
	d := NewDecoder(body(t, "fop-statfs-x8-reply.hex"))
	ret, _ := d.Int32(), d.Int32()
	if x := d.Dict(); x != nil {
		t.Fatalf("xdata = %+v, want NULL dict", x)
	}
	st := d.Statfs()
	if d.Err() != nil || d.Len() != 0 || ret != 0 {
		t.Fatalf("err %v, left %d, ret %d", d.Err(), d.Len(), ret)
	}
	want := Statfs{Bsize: 4096, Frsize: 4096, Blocks: 66053021, Bfree: 62324505, Bavail: 20807330,
		Files: 16777216, Ffree: 16371024, Favail: 16371024, Fsid: 16863511693488116406, Flag: 4096, Namemax: 255}
	if st != want {
		t.Fatalf("statfs = %+v\nwant %+v", st, want)
	}
}

func TestGoldenLk(t *testing.T) {
	owner, _ := hex.DecodeString("775d80e0e57ea479")
	want := Flock{Type: 1, Whence: 0, Start: 0, Len: 100, Pid: 10736, Owner: owner}

	// Call: gfid, fd, cmd, type, flock, xdata.
	cb := body(t, "fop2-lk-x30-call.hex")
	d := NewDecoder(cb)
	gfid, fd, cmd, typ := d.GFID(), d.Int64(), d.Uint32(), d.Uint32()
	fstart := d.Offset()
	fl := d.Flock()
	fend := d.Offset()
	x := d.Dict()
	if d.Err() != nil || d.Len() != 0 {
		t.Fatalf("call: err %v left %d", d.Err(), d.Len())
	}
	if gfid != mustGFID(t, "bb144184-ee9a-4241-8eab-473547273cdb") || fd != 0 || cmd != 2 || typ != 1 || x != nil {
		t.Fatalf("call args %v %d %d %d %v", gfid, fd, cmd, typ, x)
	}
	if fl.Type != want.Type || fl.Start != want.Start || fl.Len != want.Len || fl.Pid != want.Pid || !bytes.Equal(fl.Owner, owner) {
		t.Fatalf("flock = %+v, want %+v", fl, want)
	}
	e := NewEncoder(64)
	e.Flock(&want)
	if !bytes.Equal(e.B, cb[fstart:fend]) {
		t.Fatalf("flock encodes as %x, native %x", e.B, cb[fstart:fend])
	}

	// Reply: op_ret, op_errno, xdata, flock.
	d = NewDecoder(body(t, "fop2-lk-x30-reply.hex"))
	ret, _ := d.Int32(), d.Int32()
	_ = d.Dict()
	fl = d.Flock()
	if d.Err() != nil || d.Len() != 0 || ret != 0 {
		t.Fatalf("reply: err %v left %d ret %d", d.Err(), d.Len(), ret)
	}
	if fl.Len != 100 || fl.Pid != 10736 || !bytes.Equal(fl.Owner, owner) {
		t.Fatalf("reply flock = %+v", fl)
	}
}

func TestGoldenCreateCallXdata(t *testing.T) {
	b := body(t, "fop-create-x19-call.hex")
	d := NewDecoder(b)
	par, flags, mode, umask, name := d.GFID(), d.Uint32(), d.Uint32(), d.Uint32(), d.String(4096)
	xstart := d.Offset()
	x := d.Dict()
	if d.Err() != nil || d.Len() != 0 {
		t.Fatalf("err %v left %d", d.Err(), d.Len())
	}
	if par != RootGFID || flags != 01101 || mode != 0100644 || umask != 0 || name != "bt-file.txt" {
		t.Fatalf("args %v %o %o %o %q", par, flags, mode, umask, name)
	}
	g := mustGFID(t, "b2ea8283-d9f7-4f9a-9098-c0cd81e49bf6")
	v, ok := x.Get("gfid-req")
	if !ok || v.Type != TypeGFUUID || !bytes.Equal(v.Bytes, g[:]) {
		t.Fatalf("xdata = %+v", x)
	}
	if got := encodeDict(t, Dict{{"gfid-req", UUID(g)}}); !bytes.Equal(got, b[xstart:]) {
		t.Fatalf("gfid-req dict:\n got %x\nwant %x", got, b[xstart:])
	}
}

func TestGoldenCreateReply(t *testing.T) {
	d := NewDecoder(body(t, "fop-create-x19-reply.hex"))
	ret, _ := d.Int32(), d.Int32()
	x := d.Dict()
	st := d.Iatt()
	fd := d.Int64()
	pre, post := d.Iatt(), d.Iatt()
	if d.Err() != nil || d.Len() != 0 || ret != 0 {
		t.Fatalf("err %v left %d ret %d", d.Err(), d.Len(), ret)
	}
	g := mustGFID(t, "b2ea8283-d9f7-4f9a-9098-c0cd81e49bf6")
	if st.GFID != g || st.Mode != 0100644 || st.Nlink != 1 || st.Size != 0 || st.Ino != g.Ino() {
		t.Fatalf("stat = %+v", st)
	}
	if fd != 0 || pre.GFID != RootGFID || post.GFID != RootGFID {
		t.Fatalf("fd %d pre %v post %v", fd, pre.GFID, post.GFID)
	}
	if st.Mtime != 1795613193 || st.MtimeNsec != 203347979 {
		t.Fatalf("mtime %d.%d, want the cred ctime 1795613193.203347979", st.Mtime, st.MtimeNsec)
	}
	if v, ok := x.Get("gfid-req"); !ok || !bytes.Equal(v.Bytes, g[:]) {
		t.Fatalf("reply xdata = %+v", x)
	}
}

func TestGoldenSetxattr(t *testing.T) {
	b := body(t, "fop-setxattr-x35-call.hex")
	d := NewDecoder(b)
	gfid, flags := d.GFID(), d.Uint32()
	dstart := d.Offset()
	dict := d.Dict()
	dend := d.Offset()
	x := d.Dict()
	if d.Err() != nil || d.Len() != 0 {
		t.Fatalf("err %v left %d", d.Err(), d.Len())
	}
	if gfid != mustGFID(t, "b2ea8283-d9f7-4f9a-9098-c0cd81e49bf6") || flags != 0 || x != nil {
		t.Fatalf("args %v %d %v", gfid, flags, x)
	}
	if got := encodeDict(t, Dict{{"user.bt", Ptr([]byte("abc"))}}); !bytes.Equal(got, b[dstart:dend]) {
		t.Fatalf("xattr dict:\n got %x\nwant %x", got, b[dstart:dend])
	}
	if v, _ := dict.Bytes("user.bt"); string(v) != "abc" {
		t.Fatalf("user.bt = %q", v)
	}

	// The reply's xdata carries IATT-typed values.
	rb := body(t, "fop-setxattr-x35-reply.hex")
	d = NewDecoder(rb)
	ret, _ := d.Int32(), d.Int32()
	rx := d.Dict()
	if d.Err() != nil || d.Len() != 0 || ret != 0 {
		t.Fatalf("reply err %v left %d ret %d", d.Err(), d.Len(), ret)
	}
	keys := []string{"virt-gf-poststat", "virt-gf-prestat", "dht-get-iatt-in-xattr"}
	if len(rx) != len(keys) {
		t.Fatalf("reply xdata = %+v", rx)
	}
	for i, k := range keys {
		if rx[i].Key != k || rx[i].Value.Type != TypeIatt || len(rx[i].Value.Bytes) != IattSize {
			t.Fatalf("pair %d = %s type %d len %d", i, rx[i].Key, rx[i].Value.Type, len(rx[i].Value.Bytes))
		}
		st := NewDecoder(rx[i].Value.Bytes).Iatt()
		if st.GFID != gfid || st.Size != 6 {
			t.Fatalf("%s iatt = %+v", k, st)
		}
	}
	if got := encodeDict(t, rx); !bytes.Equal(got, rb[8:]) {
		t.Fatalf("IATT dict re-encodes differently")
	}
}

func TestGoldenGetxattrReply(t *testing.T) {
	d := NewDecoder(body(t, "fop-getxattr-x36-reply.hex"))
	ret, _ := d.Int32(), d.Int32()
	_ = d.Dict()
	dict := d.Dict()
	pre, post := d.Iatt(), d.Iatt()
	if d.Err() != nil || d.Len() != 0 {
		t.Fatalf("err %v left %d", d.Err(), d.Len())
	}
	if v, ok := dict.Bytes("user.bt"); ret != 3 || !ok || string(v) != "abc" {
		t.Fatalf("ret %d dict %+v", ret, dict)
	}
	if pre != (Iatt{}) || post != (Iatt{}) {
		t.Fatalf("pre/post not zero")
	}
}

// TestGoldenOldDicts checks the old binary dict of the GETSPEC xdata and the
// SETVOLUME reply against the native bytes, both ways.
func TestGoldenOldDicts(t *testing.T) {
	// GETSPEC call: flags, key, opaque xdata.
	b := body(t, "glusterd-getspec-call.hex")
	d := NewDecoder(b)
	flags, key := d.Uint32(), d.String(4096)
	ostart := d.Offset()
	blob := d.Opaque(1 << 20)
	if d.Err() != nil || d.Len() != 0 || flags != 1 || key != "/one" {
		t.Fatalf("err %v left %d flags %d key %q", d.Err(), d.Len(), flags, key)
	}
	od, err := UnmarshalOldDict(blob)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := od.Get("max-op-version"); v != "100000" || len(od) != 2 {
		t.Fatalf("getspec xdata = %+v", od)
	}
	mine := OldDict{}.Set("max-op-version", "100000").Set("min-op-version", "1")
	if !bytes.Equal(mine.Marshal(), blob) {
		t.Fatalf("old dict:\n got %x\nwant %x", mine.Marshal(), blob)
	}
	e := NewEncoder(64)
	e.Opaque(mine.Marshal())
	if !bytes.Equal(e.B, b[ostart:]) {
		t.Fatalf("opaque old dict:\n got %x\nwant %x", e.B, b[ostart:])
	}
	if len(blob) != 59 {
		t.Fatalf("blob of %d bytes, reference §6.1 says 59", len(blob))
	}

	// SETVOLUME reply: op_ret 0 with a stale op_errno 22, then the dict.
	d = NewDecoder(body(t, "setvolume-reply.hex"))
	ret, errno := d.Int32(), d.Int32()
	blob = d.Opaque(1 << 20)
	if d.Err() != nil || d.Len() != 0 || ret != 0 || errno != 22 {
		t.Fatalf("err %v left %d ret %d errno %d", d.Err(), d.Len(), ret, errno)
	}
	od, err = UnmarshalOldDict(blob)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{"transport-ptr", "140367382985256"}, {"clnt-lk-version", "0"},
		{"process-uuid", "3af5c13c-650c-47ac-b1ca-aad3a0863137"}, {"ERROR", "Success"},
		{"volume-id", "dc34408c-f3be-48b8-b562-bad26ae87c44"}, {"child_up", "1"},
	}
	if len(od) != len(want) {
		t.Fatalf("setvolume dict = %+v", od)
	}
	var re OldDict
	for i, kv := range want {
		if od[i].Key != kv[0] {
			t.Errorf("key %d = %q, want %q", i, od[i].Key, kv[0])
		}
		if v, _ := od.Get(kv[0]); v != kv[1] {
			t.Errorf("%s = %q, want %q", kv[0], v, kv[1])
		}
		re = re.Set(kv[0], kv[1])
	}
	if !bytes.Equal(re.Marshal(), blob) {
		t.Fatalf("setvolume dict re-marshals differently")
	}
}
