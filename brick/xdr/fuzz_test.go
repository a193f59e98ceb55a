package xdr

import (
	"bytes"
	"testing"
)

// addSeeds seeds f with every golden body and every suffix of it that starts
// on a 4-byte boundary, so each decoder meets its real struct somewhere.
func addSeeds(f *testing.F) {
	for _, b := range goldenBodies(f) {
		for off := 0; off < len(b); off += 4 {
			f.Add(b[off:])
		}
	}
}

func sameDict(a, b Dict) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i].Value, b[i].Value
		if a[i].Key != b[i].Key || x.Type != y.Type || x.Int != y.Int ||
			!bytes.Equal(x.Bytes, y.Bytes) || (x.Float != y.Float && x.Float == x.Float) {
			return false
		}
	}
	return true
}

func FuzzDict(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		got := d.Dict()
		if d.Err() != nil {
			if got != nil {
				t.Fatalf("failed decode returned %d pairs", len(got))
			}
			return
		}
		if d.Offset() > len(in) || d.Offset() < 12 {
			t.Fatalf("consumed %d of %d", d.Offset(), len(in))
		}
		// Whatever decodes must encode, with an exact xdr_size, and decode
		// back to the same pairs.
		e := NewEncoder(len(in))
		if err := e.Dict(got); err != nil {
			t.Fatalf("decoded dict does not encode: %v", err)
		}
		d2 := NewDecoder(e.B)
		again := d2.Dict()
		if d2.Err() != nil || d2.Len() != 0 || !sameDict(got, again) {
			t.Fatalf("round trip: err %v left %d\n%+v\n%+v", d2.Err(), d2.Len(), got, again)
		}
		if got != nil {
			if size := int(uint32(e.B[0])<<24 | uint32(e.B[1])<<16 | uint32(e.B[2])<<8 | uint32(e.B[3])); size != len(e.B)-12 {
				t.Fatalf("xdr_size %d for %d bytes of pairs", size, len(e.B)-12)
			}
		}
	})
}

func FuzzUnmarshalOldDict(f *testing.F) {
	for _, b := range goldenBodies(f) {
		d := NewDecoder(b)
		for d.Len() > 4 {
			// Every opaque<> in the golden bodies is a candidate old dict.
			if blob := NewDecoder(d.Remaining()).Opaque(1 << 20); len(blob) > 0 {
				f.Add(blob)
			}
			d.Uint32()
		}
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		od, err := UnmarshalOldDict(in)
		if err != nil {
			return
		}
		out := od.Marshal()
		if len(od) > 0 && !bytes.HasPrefix(in, out) {
			t.Fatalf("re-marshal is not the input:\n in %x\nout %x", in, out)
		}
		again, err := UnmarshalOldDict(out)
		if err != nil || len(again) != len(od) {
			t.Fatalf("round trip: %v", err)
		}
		for i := range od {
			if od[i].Key != again[i].Key || !bytes.Equal(od[i].Value, again[i].Value) {
				t.Fatalf("pair %d differs", i)
			}
		}
	})
}

func FuzzIatt(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		a := d.Iatt()
		if d.Err() != nil {
			if a != (Iatt{}) || len(in) >= IattSize {
				t.Fatalf("err %v with %d bytes", d.Err(), len(in))
			}
			return
		}
		e := NewEncoder(IattSize)
		e.Iatt(&a)
		if d.Offset() != IattSize || !bytes.Equal(e.B, in[:IattSize]) {
			t.Fatal("iatt does not round trip")
		}
	})
}

func FuzzFlock(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		fl := d.Flock()
		if d.Err() != nil {
			return
		}
		if len(fl.Owner) > MaxLkOwner || d.Offset() != 32+Pad(len(fl.Owner)) {
			t.Fatalf("owner %d bytes, consumed %d", len(fl.Owner), d.Offset())
		}
		e := NewEncoder(64)
		e.Flock(&fl)
		d2 := NewDecoder(e.B)
		fl2 := d2.Flock()
		if d2.Err() != nil || d2.Len() != 0 || fl2.Type != fl.Type || fl2.Whence != fl.Whence ||
			fl2.Start != fl.Start || fl2.Len != fl.Len || fl2.Pid != fl.Pid || !bytes.Equal(fl2.Owner, fl.Owner) {
			t.Fatal("flock does not round trip")
		}
		if len(in) >= 28 && !bytes.Equal(e.B[:28], in[:28]) {
			t.Fatal("flock fixed part differs")
		}
	})
}

func FuzzStatfs(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		d := NewDecoder(in)
		st := d.Statfs()
		if (d.Err() == nil) != (len(in) >= 88) {
			t.Fatalf("err %v with %d bytes", d.Err(), len(in))
		}
		if d.Err() == nil && (d.Offset() != 88 || st.Bsize != NewDecoder(in).Uint64()) {
			t.Fatal("statfs consumed wrongly")
		}
	})
}

// Benchmarks use the native LOOKUP xdata (5 pairs) and a real root iatt.

func lookupXdata() Dict {
	return Dict{
		{"trusted.glusterfs.mdata", Int(1)},
		{"glusterfs.content", Uint(65536)},
		{"security.ima", Int(0)},
		{"security.capability", Int(0)},
		{"gfid-req", UUID(RootGFID)},
	}
}

func BenchmarkDictEncode(b *testing.B) {
	x := lookupXdata()
	e := NewEncoder(256)
	b.ReportAllocs()
	for b.Loop() {
		e.B = e.B[:0]
		if err := e.Dict(x); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(e.B)))
}

func BenchmarkDictDecode(b *testing.B) {
	e := NewEncoder(256)
	_ = e.Dict(lookupXdata())
	in := e.B
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(in)
		if x := d.Dict(); len(x) != 5 {
			b.Fatal(d.Err())
		}
	}
}

func BenchmarkIattDecode(b *testing.B) {
	e := NewEncoder(IattSize)
	e.Iatt(&rootIattWant)
	in := e.B
	b.SetBytes(IattSize)
	b.ReportAllocs()
	for b.Loop() {
		d := NewDecoder(in)
		if a := d.Iatt(); a.Ino != 1 {
			b.Fatal(d.Err())
		}
	}
}
