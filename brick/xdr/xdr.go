// Package xdr is a hand-written XDR (RFC 4506) codec for the GlusterFS wire
// types: append-style encoders and bounds-checked decoders, no reflection.
//
// # Errors
//
// A Decoder never panics on malformed input. The first failure is sticky:
// every later read returns zero values and Err reports what went wrong, so a
// decoder for a struct reads every field and checks Err once at the end.
package xdr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrShort means the input ended before a field did.
var ErrShort = errors.New("xdr: input too short")

// MaxOpaque bounds any variable-length field a peer may announce. Records are
// already bounded by the transport; this keeps a bogus length from asking for
// more than the record can hold.
const MaxOpaque = 1 << 30

// Pad returns n rounded up to a multiple of 4.
func Pad(n int) int { return (n + 3) &^ 3 }

// Encoder appends XDR values to a byte slice.
type Encoder struct {
	B []byte
}

// NewEncoder returns an Encoder whose buffer has capacity for size bytes.
func NewEncoder(size int) *Encoder { return &Encoder{B: make([]byte, 0, size)} }

// Uint32 appends an unsigned int.
func (e *Encoder) Uint32(v uint32) { e.B = binary.BigEndian.AppendUint32(e.B, v) }

// Int32 appends an int.
func (e *Encoder) Int32(v int32) { e.Uint32(uint32(v)) }

// Uint64 appends an unsigned hyper.
func (e *Encoder) Uint64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }

// Int64 appends a hyper.
func (e *Encoder) Int64(v int64) { e.Uint64(uint64(v)) }

// Float64 appends a double.
func (e *Encoder) Float64(v float64) { e.Uint64(math.Float64bits(v)) }

// Bool appends a bool.
func (e *Encoder) Bool(v bool) {
	if v {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
}

// Fixed appends fixed-length opaque data, padded to 4.
func (e *Encoder) Fixed(b []byte) {
	e.B = append(e.B, b...)
	for i := len(b); i%4 != 0; i++ {
		e.B = append(e.B, 0)
	}
}

// Opaque appends variable-length opaque data: length, bytes, padding.
func (e *Encoder) Opaque(b []byte) {
	e.Uint32(uint32(len(b)))
	e.Fixed(b)
}

// String appends an XDR string (no NUL on the wire).
func (e *Encoder) String(s string) {
	e.Uint32(uint32(len(s)))
	e.B = append(e.B, s...)
	for i := len(s); i%4 != 0; i++ {
		e.B = append(e.B, 0)
	}
}

// Raw appends bytes with no length and no padding (READ/WRITE payloads).
func (e *Encoder) Raw(b []byte) { e.B = append(e.B, b...) }

// Decoder reads XDR values from a byte slice.
type Decoder struct {
	b   []byte
	off int
	err error
}

// NewDecoder returns a Decoder over b.
func NewDecoder(b []byte) *Decoder { return &Decoder{b: b} }

// Err returns the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

// Offset is the number of bytes consumed.
func (d *Decoder) Offset() int { return d.off }

// Remaining returns the bytes not yet consumed (without copying).
func (d *Decoder) Remaining() []byte {
	if d.err != nil {
		return nil
	}
	return d.b[d.off:]
}

// Len is the number of bytes not yet consumed.
func (d *Decoder) Len() int { return len(d.b) - d.off }

// Fail records err as the decoder's error if none is set yet.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *Decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.err = fmt.Errorf("%w: need %d bytes at offset %d, have %d", ErrShort, n, d.off, len(d.b)-d.off)
		return nil
	}
	p := d.b[d.off : d.off+n]
	d.off += n
	return p
}

// Uint32 reads an unsigned int.
func (d *Decoder) Uint32() uint32 {
	p := d.take(4)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint32(p)
}

// Int32 reads an int.
func (d *Decoder) Int32() int32 { return int32(d.Uint32()) }

// Uint64 reads an unsigned hyper.
func (d *Decoder) Uint64() uint64 {
	p := d.take(8)
	if p == nil {
		return 0
	}
	return binary.BigEndian.Uint64(p)
}

// Int64 reads a hyper.
func (d *Decoder) Int64() int64 { return int64(d.Uint64()) }

// Float64 reads a double.
func (d *Decoder) Float64() float64 { return math.Float64frombits(d.Uint64()) }

// Bool reads a bool; any value other than 0 or 1 is an error.
func (d *Decoder) Bool() bool {
	v := d.Uint32()
	if v > 1 {
		d.Fail(fmt.Errorf("xdr: bool value %d", v))
	}
	return v == 1
}

// Fixed reads n bytes of fixed opaque data plus padding. The result aliases
// the input.
func (d *Decoder) Fixed(n int) []byte {
	p := d.take(n)
	d.take(Pad(n) - n)
	if d.err != nil {
		return nil
	}
	return p
}

// Opaque reads variable-length opaque data of at most max bytes. The result
// aliases the input; copy it to keep it past the input's life.
func (d *Decoder) Opaque(max int) []byte {
	n := d.Uint32()
	if d.err != nil {
		return nil
	}
	if int64(n) > int64(max) {
		d.Fail(fmt.Errorf("xdr: opaque length %d exceeds limit %d", n, max))
		return nil
	}
	return d.Fixed(int(n))
}

// String reads a string of at most max bytes.
func (d *Decoder) String(max int) string { return string(d.Opaque(max)) }

// Raw reads n bytes with no padding.
func (d *Decoder) Raw(n int) []byte { return d.take(n) }

// Count reads an array length and checks that count elements of at least
// minSize bytes each could fit in the rest of the input.
func (d *Decoder) Count(minSize int) int {
	n := d.Uint32()
	if d.err != nil {
		return 0
	}
	if minSize < 1 {
		minSize = 1
	}
	if int64(n)*int64(minSize) > int64(d.Len()) {
		d.Fail(fmt.Errorf("%w: array of %d elements does not fit in %d bytes", ErrShort, n, d.Len()))
		return 0
	}
	return int(n)
}
