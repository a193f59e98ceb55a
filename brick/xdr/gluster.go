package xdr

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// GFID is the 16-byte identity of an inode in a GlusterFS volume.
type GFID [16]byte

// RootGFID is 00000000-0000-0000-0000-000000000001.
var RootGFID = GFID{15: 1}

// IsZero reports whether g is the null gfid ("not given").
func (g GFID) IsZero() bool { return g == GFID{} }

// Ino is the inode number the brick reports for g: its last 8 bytes, big endian.
func (g GFID) Ino() uint64 { return binary.BigEndian.Uint64(g[8:]) }

func (g GFID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], g[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], g[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], g[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], g[8:10])
	b[23] = '-'
	hex.Encode(b[24:], g[10:])
	return string(b[:])
}

// ParseGFID parses the 36-character text form of a UUID.
func ParseGFID(s string) (GFID, error) {
	var g GFID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return g, fmt.Errorf("gfid %q: not a UUID", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(g[:], []byte(h)); err != nil {
		return g, fmt.Errorf("gfid %q: %v", s, err)
	}
	return g, nil
}

// GFID appends a gfid (opaque[16]).
func (e *Encoder) GFID(g GFID) { e.B = append(e.B, g[:]...) }

// GFID reads a gfid.
func (d *Decoder) GFID() GFID {
	var g GFID
	copy(g[:], d.Fixed(16))
	return g
}

// Iatt mirrors struct gfx_iattx (rpc/xdr/src/glusterfs4-xdr.x), 148 bytes on
// the wire.
type Iatt struct {
	GFID                                    GFID
	Flags                                   uint64
	Ino, Dev, Rdev, Size, Blocks            uint64
	Attributes, AttributesMask              uint64
	Atime, Mtime, Ctime, Btime              int64
	AtimeNsec, MtimeNsec, CtimeNsec, Btime2 uint32
	Nlink, UID, GID, Blksize, Mode          uint32
}

// IattSize is the encoded size of an Iatt.
const IattSize = 148

// Iatt appends a gfx_iattx.
func (e *Encoder) Iatt(a *Iatt) {
	e.GFID(a.GFID)
	e.Uint64(a.Flags)
	e.Uint64(a.Ino)
	e.Uint64(a.Dev)
	e.Uint64(a.Rdev)
	e.Uint64(a.Size)
	e.Uint64(a.Blocks)
	e.Uint64(a.Attributes)
	e.Uint64(a.AttributesMask)
	e.Int64(a.Atime)
	e.Int64(a.Mtime)
	e.Int64(a.Ctime)
	e.Int64(a.Btime)
	e.Uint32(a.AtimeNsec)
	e.Uint32(a.MtimeNsec)
	e.Uint32(a.CtimeNsec)
	e.Uint32(a.Btime2)
	e.Uint32(a.Nlink)
	e.Uint32(a.UID)
	e.Uint32(a.GID)
	e.Uint32(a.Blksize)
	e.Uint32(a.Mode)
}

// Iatt reads a gfx_iattx.
func (d *Decoder) Iatt() Iatt {
	var a Iatt
	p := d.take(IattSize)
	if p == nil {
		return a
	}
	copy(a.GFID[:], p[0:16])
	be := binary.BigEndian
	a.Flags = be.Uint64(p[16:])
	a.Ino = be.Uint64(p[24:])
	a.Dev = be.Uint64(p[32:])
	a.Rdev = be.Uint64(p[40:])
	a.Size = be.Uint64(p[48:])
	a.Blocks = be.Uint64(p[56:])
	a.Attributes = be.Uint64(p[64:])
	a.AttributesMask = be.Uint64(p[72:])
	a.Atime = int64(be.Uint64(p[80:]))
	a.Mtime = int64(be.Uint64(p[88:]))
	a.Ctime = int64(be.Uint64(p[96:]))
	a.Btime = int64(be.Uint64(p[104:]))
	a.AtimeNsec = be.Uint32(p[112:])
	a.MtimeNsec = be.Uint32(p[116:])
	a.CtimeNsec = be.Uint32(p[120:])
	a.Btime2 = be.Uint32(p[124:])
	a.Nlink = be.Uint32(p[128:])
	a.UID = be.Uint32(p[132:])
	a.GID = be.Uint32(p[136:])
	a.Blksize = be.Uint32(p[140:])
	a.Mode = be.Uint32(p[144:])
	return a
}

// Statfs mirrors gf_statfs (rpc/xdr/src/glusterfs3-xdr.x): 11 unsigned hypers.
type Statfs struct {
	Bsize, Frsize, Blocks, Bfree, Bavail, Files, Ffree, Favail, Fsid, Flag, Namemax uint64
}

// Statfs reads a gf_statfs.
func (d *Decoder) Statfs() Statfs {
	return Statfs{d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64(),
		d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64(), d.Uint64()}
}

// Flock mirrors gf_proto_flock (rpc/xdr/src/glusterfs3-xdr.x).
type Flock struct {
	Type, Whence uint32
	Start, Len   uint64
	Pid          uint32
	Owner        []byte
}

// MaxLkOwner is GF_MAX_LOCK_OWNER_LEN.
const MaxLkOwner = 1024

// Flock appends a gf_proto_flock.
func (e *Encoder) Flock(f *Flock) {
	e.Uint32(f.Type)
	e.Uint32(f.Whence)
	e.Uint64(f.Start)
	e.Uint64(f.Len)
	e.Uint32(f.Pid)
	e.Opaque(f.Owner)
}

// Flock reads a gf_proto_flock.
func (d *Decoder) Flock() Flock {
	f := Flock{Type: d.Uint32(), Whence: d.Uint32(), Start: d.Uint64(), Len: d.Uint64(), Pid: d.Uint32()}
	if o := d.Opaque(MaxLkOwner); len(o) > 0 {
		f.Owner = append([]byte(nil), o...)
	}
	return f
}

// ValueType is gf_dict_data_type_t (libglusterfs/src/glusterfs/glusterfs-fops.h).
type ValueType int32

// gfx_value arms.
const (
	TypeStrOld ValueType = 1
	TypeInt    ValueType = 2
	TypeUint   ValueType = 3
	TypeDouble ValueType = 4
	TypeStr    ValueType = 5
	TypePtr    ValueType = 6
	TypeGFUUID ValueType = 7
	TypeIatt   ValueType = 8
	TypeMdata  ValueType = 9
)

// Value mirrors gfx_value. Bytes holds the opaque arms (STR_OLD, STR, PTR),
// the 16 bytes of GFUUID, the 148 bytes of IATT and the 36 bytes of MDATA;
// Int holds INT and UINT; Float holds DOUBLE.
type Value struct {
	Type  ValueType
	Bytes []byte
	Int   int64
	Float float64
}

// Pair is one key and value of a dict.
type Pair struct {
	Key   string
	Value Value
}

// Dict mirrors gfx_dict (rpc/xdr/src/glusterfs4-xdr.x). A nil Dict is sent as
// the NULL dict (count -1); a non-nil empty Dict as an empty dict (count 0).
type Dict []Pair

// Clone returns a copy of d that shares no bytes with it (a decoded dict's
// values are slices of the record it came in).
func (d Dict) Clone() Dict {
	if d == nil {
		return nil
	}
	out := make(Dict, len(d))
	for i, p := range d {
		out[i] = p
		if p.Value.Bytes != nil {
			out[i].Value.Bytes = append([]byte{}, p.Value.Bytes...)
		}
	}
	return out
}

// MaxDictPairs bounds the pairs a peer may announce in one dict.
const MaxDictPairs = 1 << 16

// Get returns the value stored under key.
func (d Dict) Get(key string) (Value, bool) {
	for _, p := range d {
		if p.Key == key {
			return p.Value, true
		}
	}
	return Value{}, false
}

// Bytes returns the raw bytes stored under key (a string value loses its NUL).
func (d Dict) Bytes(key string) ([]byte, bool) {
	v, ok := d.Get(key)
	if !ok {
		return nil, false
	}
	b := v.Bytes
	if (v.Type == TypeStr || v.Type == TypeStrOld) && len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b, true
}

// Uint returns an integer value stored under key, also parsing decimal strings.
func (d Dict) Uint(key string) (uint64, bool) {
	v, ok := d.Get(key)
	if !ok {
		return 0, false
	}
	switch v.Type {
	case TypeInt, TypeUint:
		return uint64(v.Int), true
	case TypeStr, TypeStrOld:
		b, _ := d.Bytes(key)
		n, err := strconv.ParseUint(string(b), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// With returns d with key set to v, replacing an earlier value of key.
func (d Dict) With(key string, v Value) Dict {
	for i := range d {
		if d[i].Key == key {
			d[i].Value = v
			return d
		}
	}
	if d == nil {
		d = Dict{}
	}
	return append(d, Pair{key, v})
}

// Ptr is a PTR value holding b.
func Ptr(b []byte) Value { return Value{Type: TypePtr, Bytes: b} }

// Str is a STR value holding s with its NUL, as the native client sends it.
func Str(s string) Value { return Value{Type: TypeStr, Bytes: append([]byte(s), 0)} }

// Int is an INT value.
func Int(n int64) Value { return Value{Type: TypeInt, Int: n} }

// Uint is a UINT value.
func Uint(n uint64) Value { return Value{Type: TypeUint, Int: int64(n)} }

// UUID is a GFUUID value.
func UUID(g GFID) Value { return Value{Type: TypeGFUUID, Bytes: append([]byte(nil), g[:]...)} }

func (e *Encoder) value(v *Value) error {
	e.Int32(int32(v.Type))
	switch v.Type {
	case TypeStrOld, TypeStr, TypePtr:
		e.Opaque(v.Bytes)
	case TypeInt, TypeUint:
		e.Int64(v.Int)
	case TypeDouble:
		e.Float64(v.Float)
	case TypeGFUUID:
		if len(v.Bytes) != 16 {
			return fmt.Errorf("xdr: GFUUID value of %d bytes", len(v.Bytes))
		}
		e.Raw(v.Bytes)
	case TypeIatt:
		if len(v.Bytes) != IattSize {
			return fmt.Errorf("xdr: IATT value of %d bytes", len(v.Bytes))
		}
		e.Raw(v.Bytes)
	case TypeMdata:
		if len(v.Bytes) != 36 {
			return fmt.Errorf("xdr: MDATA value of %d bytes", len(v.Bytes))
		}
		e.Raw(v.Bytes)
	default:
		// Type 0 or unknown makes the server refuse the whole request.
		return fmt.Errorf("xdr: dict value type %d cannot be sent", v.Type)
	}
	return nil
}

// Dict appends a gfx_dict, computing xdr_size exactly: a brick locates WRITE
// data by it (server4_0_writev_vecsizer).
func (e *Encoder) Dict(d Dict) error {
	if d == nil {
		e.Uint32(0)
		e.Int32(-1)
		e.Uint32(0)
		return nil
	}
	hdr := len(e.B)
	e.Uint32(0) // xdr_size, patched below
	e.Int32(int32(len(d)))
	e.Uint32(uint32(len(d)))
	start := len(e.B)
	for i := range d {
		key := append([]byte(d[i].Key), 0)
		e.Opaque(key)
		if err := e.value(&d[i].Value); err != nil {
			e.B = e.B[:hdr]
			return err
		}
	}
	binary.BigEndian.PutUint32(e.B[hdr:], uint32(len(e.B)-start))
	return nil
}

// MaxKey bounds a dict key.
const MaxKey = 4096

// Dict reads a gfx_dict. A NULL dict decodes as nil. Keys lose their NUL;
// values alias the input.
func (d *Decoder) Dict() Dict {
	_ = d.Uint32() // xdr_size: informative only on receipt
	count := d.Int32()
	n := d.Count(8)
	if d.err != nil {
		return nil
	}
	if count == -1 && n == 0 {
		return nil
	}
	if n > MaxDictPairs {
		d.Fail(fmt.Errorf("xdr: dict of %d pairs", n))
		return nil
	}
	out := make(Dict, 0, n)
	for i := 0; i < n; i++ {
		k := d.Opaque(MaxKey)
		if len(k) > 0 && k[len(k)-1] == 0 {
			k = k[:len(k)-1]
		}
		var v Value
		v.Type = ValueType(d.Int32())
		switch v.Type {
		case TypeStrOld, TypeStr, TypePtr:
			v.Bytes = d.Opaque(MaxOpaque)
		case TypeInt, TypeUint:
			v.Int = d.Int64()
		case TypeDouble:
			v.Float = d.Float64()
		case TypeGFUUID:
			v.Bytes = d.Raw(16)
		case TypeIatt:
			v.Bytes = d.Raw(IattSize)
		case TypeMdata:
			v.Bytes = d.Raw(36)
		default:
			d.Fail(fmt.Errorf("xdr: dict value type %d", v.Type))
		}
		if d.err != nil {
			return nil
		}
		out = append(out, Pair{string(k), v})
	}
	if count != int32(n) {
		d.Fail(fmt.Errorf("xdr: dict count %d but %d pairs", count, n))
		return nil
	}
	return out
}

// OldDict is the pre-4.0 binary dict (libglusterfs/src/dict.c
// dict_serialize), used by SETVOLUME, GETSPEC xdata and some callbacks. It is
// carried in an opaque<> and unaligned inside. Values are raw bytes; string
// values include their trailing NUL.
type OldDict []OldPair

// OldPair is one key and value of an OldDict.
type OldPair struct {
	Key   string
	Value []byte
}

// Set appends key with a string value (NUL added), replacing an earlier one.
func (o OldDict) Set(key, val string) OldDict {
	v := append([]byte(val), 0)
	for i := range o {
		if o[i].Key == key {
			o[i].Value = v
			return o
		}
	}
	return append(o, OldPair{key, v})
}

// Get returns the string stored under key without its NUL.
func (o OldDict) Get(key string) (string, bool) {
	for _, p := range o {
		if p.Key == key {
			v := p.Value
			if len(v) > 0 && v[len(v)-1] == 0 {
				v = v[:len(v)-1]
			}
			return string(v), true
		}
	}
	return "", false
}

// Marshal serializes o. An empty dict is an empty blob, as the native client sends it.
func (o OldDict) Marshal() []byte {
	if len(o) == 0 {
		return nil
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(len(o)))
	for _, p := range o {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Key)))
		b = binary.BigEndian.AppendUint32(b, uint32(len(p.Value)))
		b = append(b, p.Key...)
		b = append(b, 0)
		b = append(b, p.Value...)
	}
	return b
}

var errOldDict = errors.New("xdr: malformed old-style dict")

// UnmarshalOldDict parses an old binary dict. Values are copied.
func UnmarshalOldDict(b []byte) (OldDict, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) < 4 {
		return nil, errOldDict
	}
	be := binary.BigEndian
	n := be.Uint32(b)
	b = b[4:]
	if uint64(n)*9 > uint64(len(b)) {
		return nil, fmt.Errorf("%w: %d pairs in %d bytes", errOldDict, n, len(b))
	}
	out := make(OldDict, 0, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < 8 {
			return nil, errOldDict
		}
		kl, vl := uint64(be.Uint32(b)), uint64(be.Uint32(b[4:]))
		b = b[8:]
		if kl+1+vl > uint64(len(b)) || b[kl] != 0 {
			return nil, errOldDict
		}
		out = append(out, OldPair{string(b[:kl]), append([]byte(nil), b[kl+1:kl+1+vl]...)})
		b = b[kl+1+vl:]
	}
	return out, nil
}
