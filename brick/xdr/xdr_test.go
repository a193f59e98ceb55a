package xdr

import (
	"bytes"
	"errors"
	"github.com/brickfs/brickfs/brick/internal/golden"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func unhex(tb testing.TB, s string) []byte { return golden.Unhex(tb, s) }

func TestEncodePrimitives(t *testing.T) {
	tests := []struct {
		name string
		enc  func(e *Encoder)
		want string
	}{
		{"uint32", func(e *Encoder) { e.Uint32(0x01020304) }, "01020304"},
		{"int32 -1", func(e *Encoder) { e.Int32(-1) }, "ffffffff"},
		{"uint64", func(e *Encoder) { e.Uint64(0x0102030405060708) }, "0102030405060708"},
		{"int64 -2 (anon fd)", func(e *Encoder) { e.Int64(-2) }, "fffffffffffffffe"},
		{"double 1.5", func(e *Encoder) { e.Float64(1.5) }, "3ff8000000000000"},
		{"bool", func(e *Encoder) { e.Bool(true); e.Bool(false) }, "00000001 00000000"},
		{"fixed 3", func(e *Encoder) { e.Fixed([]byte{1, 2, 3}) }, "01020300"},
		{"opaque 5", func(e *Encoder) { e.Opaque([]byte("abcde")) }, "00000005 6162636465 000000"},
		{"opaque empty", func(e *Encoder) { e.Opaque(nil) }, "00000000"},
		{"string 4", func(e *Encoder) { e.String("abcd") }, "00000004 61626364"},
		{"string empty", func(e *Encoder) { e.String("") }, "00000000"},
		{"raw unpadded", func(e *Encoder) { e.Raw([]byte{9, 9, 9}) }, "090909"},
		{"gfid", func(e *Encoder) { e.GFID(RootGFID) }, "00000000000000000000000000000001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEncoder(0)
			tc.enc(e)
			if want := unhex(t, tc.want); !bytes.Equal(e.B, want) {
				t.Fatalf("got %x, want %x", e.B, want)
			}
		})
	}
}

func TestDictWire(t *testing.T) {
	g := GFID{0xb2, 0xea, 0x82, 0x83, 0xd9, 0xf7, 0x4f, 0x9a, 0x90, 0x98, 0xc0, 0xcd, 0x81, 0xe4, 0x9b, 0xf6}
	tests := []struct {
		name string
		d    Dict
		want string
	}{
		// Reference §6.2: NULL = 00000000 ffffffff 00000000, empty = three zeros.
		{"NULL", nil, "00000000 ffffffff 00000000"},
		{"empty", Dict{}, "00000000 00000000 00000000"},
		{"gfid-req", Dict{{"gfid-req", UUID(g)}},
			"00000024 00000001 00000001 00000009 676669642d72657100000000 00000007 b2ea8283d9f74f9a9098c0cd81e49bf6"},
		{"ptr abc", Dict{{"user.bt", Ptr([]byte("abc"))}},
			"00000018 00000001 00000001 00000008 757365722e627400 00000006 00000003 61626300"},
		{"str with NUL", Dict{{"k", Str("v")}},
			"00000014 00000001 00000001 00000002 6b000000 00000005 00000002 76000000"},
		{"uint", Dict{{"k", Uint(65536)}}, "00000014 00000001 00000001 00000002 6b000000 00000003 0000000000010000"},
		{"int -1", Dict{{"k", Int(-1)}}, "00000014 00000001 00000001 00000002 6b000000 00000002 ffffffffffffffff"},
		{"double", Dict{{"k", Value{Type: TypeDouble, Float: 2}}}, "00000014 00000001 00000001 00000002 6b000000 00000004 4000000000000000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEncoder(0)
			if err := e.Dict(tc.d); err != nil {
				t.Fatal(err)
			}
			want := unhex(t, tc.want)
			if !bytes.Equal(e.B, want) {
				t.Fatalf("got  %x\nwant %x", e.B, want)
			}
			d := NewDecoder(e.B)
			got := d.Dict()
			if d.Err() != nil || d.Len() != 0 {
				t.Fatalf("decode: err %v left %d", d.Err(), d.Len())
			}
			if (got == nil) != (tc.d == nil) || len(got) != len(tc.d) {
				t.Fatalf("decoded %#v, want %#v", got, tc.d)
			}
			for i := range got {
				if got[i].Key != tc.d[i].Key || got[i].Value.Type != tc.d[i].Value.Type ||
					!bytes.Equal(got[i].Value.Bytes, tc.d[i].Value.Bytes) ||
					got[i].Value.Int != tc.d[i].Value.Int || got[i].Value.Float != tc.d[i].Value.Float {
					t.Fatalf("pair %d = %+v, want %+v", i, got[i], tc.d[i])
				}
			}
		})
	}
}

func TestDictEncodeRejects(t *testing.T) {
	for _, v := range []Value{
		{Type: 0},
		{Type: 42},
		{Type: TypeGFUUID, Bytes: make([]byte, 15)},
		{Type: TypeIatt, Bytes: make([]byte, 100)},
		{Type: TypeMdata, Bytes: make([]byte, 35)},
	} {
		e := NewEncoder(0)
		e.Uint32(7)
		if err := e.Dict(Dict{{"ok", Int(1)}, {"bad", v}}); err == nil {
			t.Errorf("type %d len %d: no error", v.Type, len(v.Bytes))
		}
		if !bytes.Equal(e.B, []byte{0, 0, 0, 7}) {
			t.Errorf("type %d: failed encode left %x in the buffer", v.Type, e.B)
		}
	}
}

func TestDictDecodeErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"short header", "00000000 ffffffff"},
		{"count mismatch", "00000014 00000002 00000001 00000002 6b000000 00000002 0000000000000001"},
		{"NULL count with pairs", "00000014 ffffffff 00000001 00000002 6b000000 00000002 0000000000000001"},
		{"type 0", "00000014 00000001 00000001 00000002 6b000000 00000000 0000000000000001"},
		{"pairs do not fit", "00000000 7fffffff 7fffffff"},
		{"truncated value", "00000014 00000001 00000001 00000002 6b000000 00000002 00000000"},
		{"opaque over input", "00000014 00000001 00000001 00000002 6b000000 00000006 ffffffff"},
	}
	for _, tc := range tests {
		d := NewDecoder(unhex(t, tc.in))
		if got := d.Dict(); d.Err() == nil {
			t.Errorf("%s: no error, got %+v", tc.name, got)
		}
		// Sticky: later reads are zero and keep the error.
		if v := d.Uint32(); v != 0 || d.Err() == nil || d.Remaining() != nil {
			t.Errorf("%s: error not sticky", tc.name)
		}
	}
}

func TestDictHelpers(t *testing.T) {
	d := Dict{}.With("a", Str("12")).With("b", Uint(7)).With("c", Ptr([]byte{0, 1}))
	d = d.With("a", Str("34"))
	if len(d) != 3 {
		t.Fatalf("With did not replace: %+v", d)
	}
	if n, ok := d.Uint("a"); !ok || n != 34 {
		t.Fatalf("Uint(a) = %d %v", n, ok)
	}
	if n, ok := d.Uint("b"); !ok || n != 7 {
		t.Fatalf("Uint(b) = %d %v", n, ok)
	}
	if _, ok := d.Uint("c"); ok {
		t.Fatal("Uint of a PTR succeeded")
	}
	if b, _ := d.Bytes("a"); string(b) != "34" {
		t.Fatalf("Bytes(a) = %q", b)
	}
	if b, _ := d.Bytes("c"); !bytes.Equal(b, []byte{0, 1}) {
		t.Fatalf("Bytes(c) = %x: a PTR must keep its trailing bytes", b)
	}
	if _, ok := d.Get("zz"); ok {
		t.Fatal("Get of a missing key succeeded")
	}
	var nilDict Dict
	if nd := nilDict.With("x", Int(1)); len(nd) != 1 {
		t.Fatal("With on nil")
	}
}

func TestDecoderBounds(t *testing.T) {
	d := NewDecoder([]byte{0, 0, 0, 2})
	if d.Bool(); d.Err() == nil {
		t.Fatal("bool 2 accepted")
	}
	d = NewDecoder(unhex(t, "00000005 61626364"))
	if d.Opaque(100); !errors.Is(d.Err(), ErrShort) {
		t.Fatalf("short opaque: %v", d.Err())
	}
	d = NewDecoder(unhex(t, "00000005 6162636465000000"))
	if d.Opaque(4); d.Err() == nil {
		t.Fatal("opaque over its limit accepted")
	}
	d = NewDecoder(unhex(t, "ffffffff"))
	if d.Opaque(math.MaxInt); d.Err() == nil {
		t.Fatal("4 GiB opaque accepted")
	}
	d = NewDecoder(unhex(t, "00000003 0000"))
	if n := d.Count(1); n != 0 || d.Err() == nil {
		t.Fatal("count larger than input accepted")
	}
	d = NewDecoder(unhex(t, "00000002 00000000"))
	if n := d.Count(4); n != 0 || d.Err() == nil {
		t.Fatal("count*minSize larger than input accepted")
	}
	d = NewDecoder(make([]byte, 147))
	if d.Iatt(); d.Err() == nil {
		t.Fatal("147-byte iatt accepted")
	}
	d = NewDecoder(unhex(t, "61626364 656667"))
	if p := d.Raw(7); string(p) != "abcdefg" || d.Len() != 0 {
		t.Fatal("raw")
	}
}

func TestIattRoundTrip(t *testing.T) {
	a := Iatt{GFID: RootGFID, Flags: 1, Ino: 2, Dev: 3, Rdev: 4, Size: 5, Blocks: 6, Attributes: 7,
		AttributesMask: 8, Atime: -9, Mtime: 10, Ctime: 11, Btime: 12, AtimeNsec: 13, MtimeNsec: 14,
		CtimeNsec: 15, Btime2: 16, Nlink: 17, UID: 18, GID: 19, Blksize: 20, Mode: 21}
	e := NewEncoder(0)
	e.Iatt(&a)
	if len(e.B) != IattSize {
		t.Fatalf("iatt is %d bytes", len(e.B))
	}
	d := NewDecoder(e.B)
	if got := d.Iatt(); got != a || d.Len() != 0 {
		t.Fatalf("got %+v", got)
	}
}

func TestGFIDText(t *testing.T) {
	s := "b2ea8283-d9f7-4f9a-9098-c0cd81e49bf6"
	g, err := ParseGFID(s)
	if err != nil || g.String() != s {
		t.Fatalf("%v %v", g, err)
	}
	if g.Ino() != 0x9098c0cd81e49bf6 {
		t.Fatalf("ino %x", g.Ino())
	}
	for _, bad := range []string{"", "b2ea8283d9f74f9a9098c0cd81e49bf6", "b2ea8283-d9f7-4f9a-9098-c0cd81e49bfz", "b2ea8283-d9f7-4f9a-9098_c0cd81e49bf6"} {
		if _, err := ParseGFID(bad); err == nil {
			t.Errorf("ParseGFID(%q) succeeded", bad)
		}
	}
	if RootGFID.String() != "00000000-0000-0000-0000-000000000001" || !(GFID{}).IsZero() {
		t.Fatal("root")
	}
}

func TestOldDict(t *testing.T) {
	if b := (OldDict{}).Marshal(); b != nil {
		t.Fatalf("empty old dict marshals to %x, want an empty blob", b)
	}
	if d, err := UnmarshalOldDict(nil); d != nil || err != nil {
		t.Fatal("empty blob")
	}
	good := OldDict{}.Set("k", "v").Set("key2", "").Marshal()
	if want := unhex(t, "00000002 00000001 00000002 6b00 7600 00000004 00000001 6b65793200 00"); !bytes.Equal(good, want) {
		t.Fatalf("got %x\nwant %x", good, want)
	}
	d, err := UnmarshalOldDict(good)
	if err != nil || len(d) != 2 {
		t.Fatal(err)
	}
	if v, ok := d.Get("key2"); !ok || v != "" {
		t.Fatalf("key2 = %q %v", v, ok)
	}
	for _, bad := range []string{
		"000001",
		"00000001",
		"00000001 00000001 00000002 6b01 7600", // key not NUL-terminated
		"00000001 00000001 00000009 6b00 7600", // value past the end
		"ffffffff 00000001 00000002 6b00 7600", // count cannot fit
		"00000002 00000001 00000002 6b00 7600", // second pair missing
	} {
		if d, err := UnmarshalOldDict(unhex(t, bad)); err == nil {
			t.Errorf("%s: accepted as %+v", bad, d)
		}
	}
}

// goldenBodies returns the procedure bodies of every golden record, for fuzz seeds.
func goldenBodies(tb testing.TB) [][]byte {
	var out [][]byte
	for _, n := range golden.Names(tb, "*.hex") {
		out = append(out, body(tb, n))
	}
	return out
}

func TestGoldenFilesPresent(t *testing.T) {
	if n := len(goldenBodies(t)); n < 10 {
		t.Fatalf("only %d golden records", n)
	}
	if _, err := os.Stat(filepath.Join(golden.Dir(), "README.md")); err != nil {
		t.Fatal(err)
	}
}
