package brick

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Caller is who a fop runs as (fop.Caller).
type Caller = fop.Caller

// WithCaller returns ctx carrying who the fops run as (fop.WithCaller).
func WithCaller(ctx context.Context, c *Caller) context.Context { return fop.WithCaller(ctx, c) }

func callerOf(ctx context.Context) *Caller { return fop.CallerOf(ctx) }

func (c *Client) cred(ctx context.Context, flags uint32, stamp bool) sunrpc.Cred {
	var ct time.Time
	if stamp {
		ct = time.Now()
	}
	cl := callerOf(ctx)
	if cl == nil {
		return sunrpc.CredV3(0, 0, 0, nil, []byte{0, 0, 0, 0}, flags, ct)
	}
	owner := cl.LkOwner
	if len(owner) == 0 {
		owner = binary.LittleEndian.AppendUint32(nil, uint32(cl.Pid))
	}
	return sunrpc.CredV3(cl.Pid, cl.UID, cl.GID, cl.Groups, owner, flags, ct)
}

// AnonFd is GF_ANON_FD_NO: the brick opens the inode for that one call.
// Never send -1: a brick dereferences a NULL fd for it and crashes.
const AnonFd = -2

// Fd is an open file or directory (fop.Fd). It stays valid across
// reconnects: the first fop after a reconnect reopens it by gfid, as
// protocol/client does.
type Fd = fop.Fd

// remoteFd is a Client's context on an Fd it opened (its fd_ctx), under
// the Client itself as key.
type remoteFd struct {
	mu       sync.Mutex
	remote   int64  // GUARDED_BY(mu)
	gen      uint64 // GUARDED_BY(mu); connection generation remote belongs to
	released bool   // GUARDED_BY(mu)
}

// newFd makes the Fd of a file opened on this brick.
func (c *Client) newFd(gfid xdr.GFID, flags uint32, dir bool, rfd int64, gen uint64) *Fd {
	f := &Fd{GFID: gfid, Flags: flags, Dir: dir}
	f.SetCtx(c, &remoteFd{remote: rfd, gen: gen})
	return f
}

// remoteOf returns this Client's context on f: an Fd this brick never
// opened (another brick's, a layer's own) is refused, never reopened by
// gfid behind the caller's back, which would leak a brick fd.
func (c *Client) remoteOf(f *Fd, proc uint32) (*remoteFd, error) {
	if v, ok := f.Ctx(c); ok {
		return v.(*remoteFd), nil
	}
	return nil, &OpError{Brick: c.cfg.Name, Fop: FopName(proc), GFID: f.GFID, Errno: syscall.EBADF, Err: errors.New("fd was not opened on this brick")}
}

// wireFlags are the open flags as the brick gets them: without O_DIRECT
// when the volfile filters it (filter-O_DIRECT, network.remote-dio
// enable), as client_filter_o_direct strips it from CREATE, OPEN, READ
// and WRITE.
func (c *Client) wireFlags(flags uint32) uint32 {
	if c.cfg.FilterODirect {
		return flags &^ syscall.O_DIRECT
	}
	return flags
}

// reopenMask drops the flags that must not be replayed on reopen.
const reopenMask = ^uint32(syscall.O_CREAT | syscall.O_EXCL | syscall.O_TRUNC)

// resolve returns the connection and remote fd to use for f, reopening f on
// the current connection if it was opened on an earlier one.
func (c *Client) resolve(ctx context.Context, f *Fd, proc uint32) (*sunrpc.Conn, int64, error) {
	if f.Anon {
		conn, _, err := c.current()
		if err != nil {
			return nil, 0, c.opErr(proc, f.GFID, err)
		}
		return conn, AnonFd, nil
	}
	rf, err := c.remoteOf(f, proc)
	if err != nil {
		return nil, 0, err
	}
	conn, gen, err := c.current()
	if err != nil {
		return nil, 0, c.opErr(proc, f.GFID, err)
	}
	rf.mu.Lock()
	defer rf.mu.Unlock()
	if rf.released {
		return nil, 0, &OpError{Brick: c.cfg.Name, Fop: FopName(proc), GFID: f.GFID, Errno: syscall.EBADF, Err: errors.New("fd already released")}
	}
	if rf.gen == gen {
		return conn, rf.remote, nil
	}
	var rfd int64
	if f.Dir {
		rfd, _, err = c.openOn(ctx, conn, opOpendir, f.GFID, 0, nil)
	} else {
		rfd, _, err = c.openOn(ctx, conn, opOpen, f.GFID, f.Flags&reopenMask, nil)
	}
	if err != nil {
		return nil, 0, err
	}
	c.log.Info("reopened fd after reconnect", zap.Stringer("gfid", f.GFID))
	rf.remote, rf.gen = rfd, gen
	return conn, rfd, nil
}

func (c *Client) opErr(proc uint32, gfid xdr.GFID, err error) error {
	var oe *OpError
	if errors.As(err, &oe) {
		if oe.Fop == "" {
			e := *oe
			e.Fop, e.GFID = FopName(proc), gfid
			return &e
		}
		return err
	}
	en := syscall.EIO
	switch {
	case errors.Is(err, sunrpc.ErrDisconnected):
		en = syscall.ENOTCONN
	case errors.Is(err, context.DeadlineExceeded):
		en = syscall.ETIMEDOUT
	case errors.Is(err, context.Canceled):
		en = syscall.EINTR
	}
	var re *sunrpc.RPCError
	if errors.As(err, &re) {
		c.log.Error("brick rejected a request", zap.String("fop", FopName(proc)), zap.Error(err))
		if !re.Denied && re.Stat == sunrpc.ProcUnavail {
			en = syscall.ENOSYS // a brick without this fop (an older GlusterFS)
		}
	}
	return &OpError{Brick: c.cfg.Name, Fop: FopName(proc), GFID: gfid, Errno: en, Err: err}
}

// call sends one fop on conn and returns a decoder positioned after op_ret
// and op_errno. A negative op_ret becomes an *OpError; op_errno is ignored
// on success, where bricks often leave it non-zero.
func (c *Client) call(ctx context.Context, conn *sunrpc.Conn, proc uint32, gfid xdr.GFID, cred sunrpc.Cred, args, data []byte) (*xdr.Decoder, int32, error) {
	d, ret, _, _, err := c.callInto(ctx, conn, proc, gfid, cred, args, data, nil)
	return d, ret, err
}

// callInto is call that, with into, may read the data at the reply's end
// into into.Dest (see sunrpc.Conn.CallInto): direct is how many bytes went
// there, -1 none. A reply that came whole then keeps its pooled storage
// (see sunrpc.Conn.CallBuf), returned for the caller to release once it
// has copied the data out (the storage of a failed call is left to the
// collector); without into, a large record is copied out at once.
func (c *Client) callInto(ctx context.Context, conn *sunrpc.Conn, proc uint32, gfid xdr.GFID, cred sunrpc.Cred, args, data []byte, into *sunrpc.Into) (d *xdr.Decoder, ret int32, direct int, buf *sunrpc.Buf, err error) {
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, 0, -1, nil, c.opErr(proc, gfid, ctx.Err())
	}
	body, direct, buf, err := conn.CallInto(ctx, ProgFOP, VersFOP, proc, cred, args, data, into)
	<-c.slots
	c.stats.call(len(args)+len(data), len(body)+max(direct, 0), err)
	if err != nil {
		return nil, 0, -1, nil, c.opErr(proc, gfid, err)
	}
	if into == nil && buf != nil {
		// A large record the caller will not give back (a READDIRP, a
		// heal's or a copy's READ): copied out, so that its pooled
		// buffer, which may be one of the largest, goes back to the
		// free list instead of to the collector.
		body = bytes.Clone(body)
		buf.Release()
		buf = nil
	}
	d = xdr.NewDecoder(body)
	ret, errno := d.Int32(), d.Int32()
	if d.Err() != nil {
		return nil, 0, -1, nil, c.opErr(proc, gfid, fmt.Errorf("short reply: %w", d.Err()))
	}
	if ret < 0 {
		en := syscall.Errno(errno)
		if en == 0 {
			// A failure without an errno (seen on READLINK racing a
			// rename): use the brick's default for the fop.
			en = syscall.EIO
			if proc == opReadlink {
				en = syscall.EINVAL
			}
		}
		c.stats.errs.Add(1)
		return d, ret, -1, nil, &OpError{Brick: c.cfg.Name, Fop: FopName(proc), GFID: gfid, Errno: en}
	}
	return d, ret, direct, buf, nil
}

// do runs a gfid-based fop on the current connection.
func (c *Client) do(ctx context.Context, proc uint32, gfid xdr.GFID, args []byte, data []byte) (*xdr.Decoder, int32, error) {
	conn, _, err := c.current()
	if err != nil {
		return nil, 0, c.opErr(proc, gfid, err)
	}
	flags, stamp := utimeFlags(proc)
	return c.call(ctx, conn, proc, gfid, c.cred(ctx, flags, stamp), args, data)
}

// doFd runs an fd-based fop; build encodes the arguments given the remote fd.
func (c *Client) doFd(ctx context.Context, proc uint32, f *Fd, flags uint32, stamp bool, build func(e *xdr.Encoder, rfd int64) error, data []byte) (*xdr.Decoder, int32, error) {
	conn, rfd, err := c.resolve(ctx, f, proc)
	if err != nil {
		return nil, 0, err
	}
	e := xdr.NewEncoder(96)
	if err := build(e, rfd); err != nil {
		return nil, 0, c.opErr(proc, f.GFID, err)
	}
	return c.call(ctx, conn, proc, f.GFID, c.cred(ctx, flags, stamp), e.B, data)
}

func (c *Client) fdOp(ctx context.Context, proc uint32, f *Fd, build func(e *xdr.Encoder, rfd int64) error, data []byte) (*xdr.Decoder, int32, error) {
	flags, stamp := utimeFlags(proc)
	return c.doFd(ctx, proc, f, flags, stamp, build, data)
}

// finish checks that a reply decoded cleanly.
func (c *Client) finish(d *xdr.Decoder, proc uint32, gfid xdr.GFID) error {
	if d.Err() != nil {
		return c.opErr(proc, gfid, fmt.Errorf("malformed reply: %w", d.Err()))
	}
	return nil
}

func enc(n int) *xdr.Encoder { return xdr.NewEncoder(n) }

// some is xd, or an empty dict where the native client sends one rather
// than none (the two encode differently).
func some(xd xdr.Dict) xdr.Dict {
	if xd == nil {
		return xdr.Dict{}
	}
	return xd
}

// Lookup resolves name in parent (named lookup), or gfid itself when name is
// empty (nameless lookup). It returns the inode's iatt and the reply xdata.
func (c *Client) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(64 + len(name))
	e.GFID(gfid)
	e.GFID(parent)
	e.Uint32(0)
	e.String(name)
	if err := e.Dict(xd); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opLookup, gfid, err)
	}
	d, _, err := c.do(ctx, opLookup, gfid, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	rx := d.Dict()
	st := d.Iatt()
	_ = d.Iatt() // postparent
	return st, rx, c.finish(d, opLookup, gfid)
}

// Stat returns the iatt of gfid.
func (c *Client) Stat(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(32)
	e.GFID(gfid)
	if err := e.Dict(xd); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opStat, gfid, err)
	}
	d, _, err := c.do(ctx, opStat, gfid, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	rx := d.Dict()
	st := d.Iatt()
	return st, rx, c.finish(d, opStat, gfid)
}

// Fstat returns the iatt of an open file.
func (c *Client) Fstat(ctx context.Context, f *Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	d, _, err := c.fdOp(ctx, opFstat, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	rx := d.Dict()
	st := d.Iatt()
	return st, rx, c.finish(d, opFstat, f.GFID)
}

func (c *Client) read2iatt(d *xdr.Decoder, proc uint32, gfid xdr.GFID) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	rx = d.Dict()
	pre = d.Iatt()
	post = d.Iatt()
	return pre, post, rx, c.finish(d, proc, gfid)
}

// Setattr changes the attributes selected by valid (SetAttr* bits).
func (c *Client) Setattr(ctx context.Context, gfid xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	conn, _, err := c.current()
	if err != nil {
		return pre, post, nil, c.opErr(opSetattr, gfid, err)
	}
	e := enc(200)
	e.GFID(gfid)
	e.Iatt(attr)
	e.Uint32(valid)
	if err := e.Dict(some(xd)); err != nil {
		return pre, post, nil, c.opErr(opSetattr, gfid, err)
	}
	d, _, err := c.call(ctx, conn, opSetattr, gfid, c.cred(ctx, setattrFlags(valid), true), e.B, nil)
	if err != nil {
		return pre, post, nil, err
	}
	return c.read2iatt(d, opSetattr, gfid)
}

// Fsetattr is Setattr on an open file.
func (c *Client) Fsetattr(ctx context.Context, f *Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	d, _, err := c.doFd(ctx, opFsetattr, f, setattrFlags(valid), true, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Iatt(attr)
		e.Uint32(valid)
		return e.Dict(some(xd))
	}, nil)
	if err != nil {
		return pre, post, nil, err
	}
	return c.read2iatt(d, opFsetattr, f.GFID)
}

// Truncate sets the size of gfid.
func (c *Client) Truncate(ctx context.Context, gfid xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	e := enc(40)
	e.GFID(gfid)
	e.Uint64(size)
	if err := e.Dict(some(xd)); err != nil {
		return pre, post, nil, c.opErr(opTruncate, gfid, err)
	}
	d, _, err := c.do(ctx, opTruncate, gfid, e.B, nil)
	if err != nil {
		return pre, post, nil, err
	}
	return c.read2iatt(d, opTruncate, gfid)
}

// Ftruncate sets the size of an open file.
func (c *Client) Ftruncate(ctx context.Context, f *Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	d, _, err := c.fdOp(ctx, opFtruncate, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint64(size)
		return e.Dict(some(xd))
	}, nil)
	if err != nil {
		return pre, post, nil, err
	}
	return c.read2iatt(d, opFtruncate, f.GFID)
}

// dictOnly ends a reply that carries nothing but its xdata.
func (c *Client) dictOnly(d *xdr.Decoder, proc uint32, gfid xdr.GFID) (xdr.Dict, error) {
	rx := d.Dict()
	return rx, c.finish(d, proc, gfid)
}

// Access checks mask (R_OK, W_OK, X_OK) for the caller.
func (c *Client) Access(ctx context.Context, gfid xdr.GFID, mask uint32, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(32)
	e.GFID(gfid)
	e.Uint32(mask)
	if err := e.Dict(xd); err != nil {
		return nil, c.opErr(opAccess, gfid, err)
	}
	d, _, err := c.do(ctx, opAccess, gfid, e.B, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opAccess, gfid)
}

func (c *Client) openOn(ctx context.Context, conn *sunrpc.Conn, proc uint32, gfid xdr.GFID, flags uint32, xd xdr.Dict) (int64, xdr.Dict, error) {
	e := enc(36)
	e.GFID(gfid)
	if proc == opOpen {
		e.Uint32(c.wireFlags(flags))
	}
	if err := e.Dict(xd); err != nil {
		return 0, nil, c.opErr(proc, gfid, err)
	}
	fl, stamp := utimeFlags(proc)
	d, _, err := c.call(ctx, conn, proc, gfid, c.cred(ctx, fl, stamp), e.B, nil)
	if err != nil {
		return 0, nil, err
	}
	rx := d.Dict()
	rfd := d.Int64()
	return rfd, rx, c.finish(d, proc, gfid)
}

func (c *Client) open(ctx context.Context, proc uint32, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*Fd, xdr.Dict, error) {
	conn, gen, err := c.current()
	if err != nil {
		return nil, nil, c.opErr(proc, gfid, err)
	}
	rfd, rx, err := c.openOn(ctx, conn, proc, gfid, flags, xd)
	if err != nil {
		return nil, nil, err
	}
	return c.newFd(gfid, flags, proc == opOpendir, rfd, gen), rx, nil
}

// Open opens a file with GF_O_* flags (the Linux values).
func (c *Client) Open(ctx context.Context, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*Fd, xdr.Dict, error) {
	return c.open(ctx, opOpen, gfid, flags, xd)
}

// Opendir opens a directory.
func (c *Client) Opendir(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (*Fd, xdr.Dict, error) {
	return c.open(ctx, opOpendir, gfid, 0, xd)
}

// Release closes f on the brick. It is sent as an internal frame.
func (c *Client) Release(ctx context.Context, f *Fd) error {
	if f.Anon {
		return nil // nothing was opened
	}
	rf, err := c.remoteOf(f, opRelease)
	if err != nil {
		return err
	}
	rf.mu.Lock()
	if rf.released {
		rf.mu.Unlock()
		return nil
	}
	rf.released = true
	rfd, gen := rf.remote, rf.gen
	rf.mu.Unlock()
	conn, cur, err := c.current()
	if err != nil || cur != gen {
		return nil // the fd died with its connection
	}
	proc := uint32(opRelease)
	if f.Dir {
		proc = opReleasedir
	}
	e := enc(40)
	e.GFID(f.GFID)
	e.Int64(rfd)
	_ = e.Dict(xdr.Dict{})
	d, _, err := c.call(context.WithoutCancel(ctx), conn, proc, f.GFID, c.cred(context.Background(), 0, false), e.B, nil)
	if err != nil {
		return err
	}
	_ = d.Dict()
	return c.finish(d, proc, f.GFID)
}

// Dirent is one READDIRP entry (fop.Dirent).
type Dirent = fop.Dirent

// Readdirp reads directory entries with their attributes from offset, up to
// size bytes of reply. eof is set when the brick signals the end.
func (c *Client) Readdirp(ctx context.Context, f *Fd, offset uint64, size uint32, xd xdr.Dict) ([]Dirent, bool, xdr.Dict, error) {
	d, ret, err := c.fdOp(ctx, opReaddirp, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint64(offset)
		e.Uint32(size)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return nil, false, nil, err
	}
	ents, eof, rx, derr := DecodeReaddirp(d, ret)
	if derr != nil {
		return nil, false, nil, c.opErr(opReaddirp, f.GFID, derr)
	}
	return ents, eof, rx, nil
}

// DecodeReaddirp decodes the rest of a gfx_readdirp_rsp after op_ret and
// op_errno. The end of the directory shows as an entry with offset
// 0x7fffffffffffffff or an empty list.
func DecodeReaddirp(d *xdr.Decoder, ret int32) ([]Dirent, bool, xdr.Dict, error) {
	rx := d.Dict()
	var ents []Dirent
	// Trust op_ret for the capacity only as far as the reply could hold
	// that many entries (192 bytes is the smallest encoded entry).
	if ret > 0 && int(ret) <= d.Len()/192 {
		ents = make([]Dirent, 0, ret)
	}
	eof := false
	for d.Bool() {
		var de Dirent
		de.Ino = d.Uint64()
		de.Off = d.Uint64()
		_ = d.Uint32() // d_len
		de.Type = d.Uint32()
		de.Name = d.String(4096)
		de.Stat = d.Iatt()
		de.Xdata = d.Dict()
		if d.Err() != nil {
			break
		}
		if de.Off == 1<<63-1 {
			eof = true
		}
		ents = append(ents, de)
	}
	if d.Err() != nil {
		return nil, false, nil, fmt.Errorf("malformed readdirp reply: %w", d.Err())
	}
	if len(ents) == 0 {
		eof = true
	}
	return ents, eof, rx, nil
}

// entryXdata is a creation fop's xdata: the caller's keys, then gfid-req,
// in the native client's order.
func entryXdata(gfid xdr.GFID, xd xdr.Dict) xdr.Dict {
	return append(append(xdr.Dict{}, xd...), xdr.Pair{Key: "gfid-req", Value: xdr.UUID(gfid)})
}

func (c *Client) read3iatt(d *xdr.Decoder, proc uint32, gfid xdr.GFID) (xdr.Iatt, xdr.Dict, error) {
	rx := d.Dict()
	st := d.Iatt()
	_ = d.Iatt()
	_ = d.Iatt()
	return st, rx, c.finish(d, proc, gfid)
}

// Create creates and opens name in parent with the client-chosen gfid.
func (c *Client) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (*Fd, xdr.Iatt, xdr.Dict, error) {
	conn, gen, err := c.current()
	if err != nil {
		return nil, xdr.Iatt{}, nil, c.opErr(opCreate, parent, err)
	}
	e := enc(96 + len(name))
	e.GFID(parent)
	e.Uint32(c.wireFlags(flags))
	e.Uint32(mode)
	e.Uint32(umask)
	e.String(name)
	if err := e.Dict(entryXdata(gfid, xd)); err != nil {
		return nil, xdr.Iatt{}, nil, c.opErr(opCreate, parent, err)
	}
	fl, _ := utimeFlags(opCreate)
	d, _, err := c.call(ctx, conn, opCreate, parent, c.cred(ctx, fl, true), e.B, nil)
	if err != nil {
		return nil, xdr.Iatt{}, nil, err
	}
	rx := d.Dict()
	st := d.Iatt()
	rfd := d.Int64()
	_ = d.Iatt()
	_ = d.Iatt()
	if err := c.finish(d, opCreate, parent); err != nil {
		return nil, xdr.Iatt{}, nil, err
	}
	return c.newFd(st.GFID, flags&reopenMask, false, rfd, gen), st, rx, nil
}

// Mkdir creates a directory; xd carries e.g. the DHT layout.
func (c *Client) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(96 + len(name))
	e.GFID(parent)
	e.Uint32(mode)
	e.Uint32(umask)
	e.String(name)
	if err := e.Dict(entryXdata(gfid, xd)); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opMkdir, parent, err)
	}
	d, _, err := c.do(ctx, opMkdir, parent, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return c.read3iatt(d, opMkdir, parent)
}

// Mknod creates a device, FIFO, socket or regular file node.
func (c *Client) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(104 + len(name))
	e.GFID(parent)
	e.Uint64(rdev)
	e.Uint32(mode)
	e.Uint32(umask)
	e.String(name)
	if err := e.Dict(entryXdata(gfid, xd)); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opMknod, parent, err)
	}
	d, _, err := c.do(ctx, opMknod, parent, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return c.read3iatt(d, opMknod, parent)
}

// Symlink creates name in parent pointing at target.
func (c *Client) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, gfid xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(96 + len(name) + len(target))
	e.GFID(parent)
	e.String(name)
	e.Uint32(umask)
	e.String(target)
	if err := e.Dict(entryXdata(gfid, xd)); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opSymlink, parent, err)
	}
	d, _, err := c.do(ctx, opSymlink, parent, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return c.read3iatt(d, opSymlink, parent)
}

// Readlink returns a symlink's target.
func (c *Client) Readlink(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (string, xdr.Dict, error) {
	e := enc(32)
	e.GFID(gfid)
	e.Uint32(4096)
	if err := e.Dict(xd); err != nil {
		return "", nil, c.opErr(opReadlink, gfid, err)
	}
	d, _, err := c.do(ctx, opReadlink, gfid, e.B, nil)
	if err != nil {
		return "", nil, err
	}
	rx := d.Dict()
	_ = d.Iatt()
	path := d.String(4096)
	return path, rx, c.finish(d, opReadlink, gfid)
}

// Link makes newName in newParent a hard link to gfid.
func (c *Client) Link(ctx context.Context, gfid, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(64 + len(newName))
	e.GFID(gfid)
	e.GFID(newParent)
	e.String(newName)
	if err := e.Dict(some(xd)); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opLink, gfid, err)
	}
	d, _, err := c.do(ctx, opLink, gfid, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return c.read3iatt(d, opLink, gfid)
}

// Unlink removes name from parent.
func (c *Client) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(40 + len(name))
	e.GFID(parent)
	e.String(name)
	e.Uint32(0)
	if err := e.Dict(some(xd)); err != nil {
		return nil, c.opErr(opUnlink, parent, err)
	}
	d, _, err := c.do(ctx, opUnlink, parent, e.B, nil)
	if err != nil {
		return nil, err
	}
	_, _, rx, err := c.read2iatt(d, opUnlink, parent)
	return rx, err
}

// Rmdir removes the directory name from parent. flags fop.RmdirRecursive
// has the brick move a directory that is not empty, with its contents, to
// its landfill for removal, as self-heal does to delete a directory the
// good bricks no longer have (posix_rmdir).
func (c *Client) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(40 + len(name))
	e.GFID(parent)
	e.Int32(flags)
	e.String(name)
	if err := e.Dict(some(xd)); err != nil {
		return nil, c.opErr(opRmdir, parent, err)
	}
	d, _, err := c.do(ctx, opRmdir, parent, e.B, nil)
	if err != nil {
		return nil, err
	}
	_, _, rx, err := c.read2iatt(d, opRmdir, parent)
	return rx, err
}

// Rename moves oldName in oldParent to newName in newParent.
func (c *Client) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	e := enc(64 + len(oldName) + len(newName))
	e.GFID(oldParent)
	e.GFID(newParent)
	e.String(oldName)
	e.String(newName)
	if err := e.Dict(xd); err != nil {
		return xdr.Iatt{}, nil, c.opErr(opRename, oldParent, err)
	}
	d, _, err := c.do(ctx, opRename, oldParent, e.B, nil)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	rx := d.Dict()
	st := d.Iatt()
	for i := 0; i < 4; i++ {
		_ = d.Iatt()
	}
	return st, rx, c.finish(d, opRename, oldParent)
}

// Read reads up to size bytes at off. A short result means end of file.
//
// With a fop.ReadDest in ctx (fuse puts its reply buffer there) that it can
// take, the data is put in that buffer: a large reply's data is read
// straight into it from the connection, a smaller one is copied there. The
// returned slice is then a prefix of the buffer; otherwise it is the
// caller's own.
func (c *Client) Read(ctx context.Context, f *Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	conn, rfd, err := c.resolve(ctx, f, opRead)
	if err != nil {
		return nil, nil, err
	}
	e := xdr.NewEncoder(96)
	e.GFID(f.GFID)
	e.Int64(rfd)
	e.Uint64(off)
	e.Uint32(size)
	e.Uint32(c.wireFlags(f.Flags))
	if err := e.Dict(xd); err != nil {
		return nil, nil, c.opErr(opRead, f.GFID, err)
	}
	flags, stamp := utimeFlags(opRead)
	rd := fop.ReadDestOf(ctx)
	dest := rd.Take(int(size))
	var into *sunrpc.Into
	if dest != nil {
		// Given back once the call is over: the connection no longer
		// writes to it then, whatever the reply did.
		defer rd.Give()
		into = &sunrpc.Into{Dest: dest, Tail: readTail}
	}
	d, ret, direct, buf, err := c.callInto(ctx, conn, opRead, f.GFID, c.cred(ctx, flags, stamp), e.B, nil, into)
	if err != nil {
		return nil, nil, err
	}
	defer buf.Release() // nil unless pooled and dest != nil: the data is copied out below
	_ = d.Iatt()
	n := d.Uint32()
	rx := d.Dict()
	if d.Err() == nil && (int64(n) != int64(ret) || n > size) {
		d.Fail(fmt.Errorf("read reply says %d bytes, op_ret %d, asked %d", n, ret, size))
	}
	var data []byte
	if direct >= 0 {
		// The data went to dest: what is left of the record is the
		// result before it, exactly.
		if d.Err() == nil && (int64(direct) != int64(n) || len(d.Remaining()) != 0) {
			d.Fail(fmt.Errorf("read reply of %d bytes has %d bytes between its xdata and its data", n, len(d.Remaining())))
		}
		if d.Err() == nil { // n fits dest only once the checks above passed
			data = dest[:n:n]
		}
	} else {
		data = d.Raw(int(n))
	}
	if err := c.finish(d, opRead, f.GFID); err != nil {
		return nil, nil, err
	}
	if buf != nil && len(rx) > 0 {
		// The layers above may keep the reply's xdata: it must not
		// live in storage that is given back.
		rx = rx.Clone()
	}
	if dest != nil && direct < 0 {
		// Capped, so that a layer appending to it (shard pads a short
		// read) copies instead of writing past it.
		data = dest[:copy(dest, data):n]
	}
	return data, rx, nil
}

// readTail says how many bytes at the end of a READ reply are its data,
// from the start of the result: op_ret, when the read succeeded.
func readTail(body []byte) (int, bool) {
	ret := int32(binary.BigEndian.Uint32(body))
	return int(ret), ret >= 0
}

// Write writes data at off and returns the file's attributes before and
// after it and the reply's xdata (AFR reads glusterfs.inodelk-count from
// it to see other clients waiting). The data is sent as it is, never
// copied.
func (c *Client) Write(ctx context.Context, f *Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	d, ret, ferr := c.fdOp(ctx, opWrite, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint64(off)
		e.Uint32(uint32(len(data)))
		e.Uint32(c.wireFlags(f.Flags))
		return e.Dict(xd)
	}, data)
	if ferr != nil {
		return pre, post, nil, ferr
	}
	rx = d.Dict()
	pre = d.Iatt()
	post = d.Iatt()
	if err := c.finish(d, opWrite, f.GFID); err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	if int(ret) != len(data) {
		err = &OpError{Brick: c.cfg.Name, Fop: "WRITE", GFID: f.GFID, Errno: syscall.EIO, Err: fmt.Errorf("short write: %d of %d bytes", ret, len(data))}
	}
	return pre, post, rx, err
}

// Flush is sent on every close(2) with the closing lock owner; the brick
// drops that owner's POSIX locks.
func (c *Client) Flush(ctx context.Context, f *Fd, xd xdr.Dict) (xdr.Dict, error) {
	d, _, err := c.fdOp(ctx, opFlush, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opFlush, f.GFID)
}

// Fsync flushes f to stable storage; datasync asks for fdatasync.
func (c *Client) Fsync(ctx context.Context, f *Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	var ds uint32
	if datasync {
		ds = 1
	}
	d, _, err := c.fdOp(ctx, opFsync, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint32(ds)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return nil, err
	}
	_, _, rx, err := c.read2iatt(d, opFsync, f.GFID)
	return rx, err
}

// Fsyncdir is Fsync on a directory.
func (c *Client) Fsyncdir(ctx context.Context, f *Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	var ds int32
	if datasync {
		ds = 1
	}
	d, _, err := c.fdOp(ctx, opFsyncdir, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Int32(ds)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opFsyncdir, f.GFID)
}

// Statfs returns the brick filesystem's statistics.
func (c *Client) Statfs(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error) {
	e := enc(32)
	e.GFID(gfid)
	if err := e.Dict(xd); err != nil {
		return xdr.Statfs{}, nil, c.opErr(opStatfs, gfid, err)
	}
	d, _, err := c.do(ctx, opStatfs, gfid, e.B, nil)
	if err != nil {
		return xdr.Statfs{}, nil, err
	}
	rx := d.Dict()
	st := d.Statfs()
	return st, rx, c.finish(d, opStatfs, gfid)
}

func (c *Client) readDictRsp(d *xdr.Decoder, proc uint32, gfid xdr.GFID) (xdr.Dict, xdr.Dict, error) {
	rx := d.Dict()
	out := d.Dict()
	_ = d.Iatt()
	_ = d.Iatt()
	return out, rx, c.finish(d, proc, gfid)
}

// Getxattr returns the xattr name of gfid, or all of them when name is "".
func (c *Client) Getxattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	e := enc(40 + len(name))
	e.GFID(gfid)
	if name != "" {
		e.Uint32(1)
	} else {
		e.Uint32(0)
	}
	e.String(name)
	if err := e.Dict(xd); err != nil {
		return nil, nil, c.opErr(opGetxattr, gfid, err)
	}
	d, _, err := c.do(ctx, opGetxattr, gfid, e.B, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.readDictRsp(d, opGetxattr, gfid)
}

// Setxattr sets the xattrs in dict (values PTR) with XATTR_CREATE/REPLACE flags.
func (c *Client) Setxattr(ctx context.Context, gfid xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(64)
	e.GFID(gfid)
	e.Uint32(flags)
	if err := e.Dict(dict); err != nil {
		return nil, c.opErr(opSetxattr, gfid, err)
	}
	if err := e.Dict(some(xd)); err != nil {
		return nil, c.opErr(opSetxattr, gfid, err)
	}
	d, _, err := c.do(ctx, opSetxattr, gfid, e.B, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opSetxattr, gfid)
}

// Removexattr removes the xattr name of gfid.
func (c *Client) Removexattr(ctx context.Context, gfid xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(40 + len(name))
	e.GFID(gfid)
	e.String(name)
	if err := e.Dict(xd); err != nil {
		return nil, c.opErr(opRemovexattr, gfid, err)
	}
	d, _, err := c.do(ctx, opRemovexattr, gfid, e.B, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opRemovexattr, gfid)
}

// Xattrop applies an xattrop (fop.Xattrop* flags) to gfid and returns the
// resulting values. xd carries e.g. the index translator's
// glusterfs.xattrop-entry-create name.
func (c *Client) Xattrop(ctx context.Context, gfid xdr.GFID, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	e := enc(64)
	e.GFID(gfid)
	e.Uint32(flags)
	if err := e.Dict(dict); err != nil {
		return nil, nil, c.opErr(opXattrop, gfid, err)
	}
	if err := e.Dict(xd); err != nil {
		return nil, nil, c.opErr(opXattrop, gfid, err)
	}
	d, _, err := c.do(ctx, opXattrop, gfid, e.B, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.readDictRsp(d, opXattrop, gfid)
}

// Fxattrop is Xattrop on an open file.
func (c *Client) Fxattrop(ctx context.Context, f *Fd, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	d, _, err := c.fdOp(ctx, opFxattrop, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint32(flags)
		if err := e.Dict(dict); err != nil {
			return err
		}
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return nil, nil, err
	}
	return c.readDictRsp(d, opFxattrop, f.GFID)
}

func (c *Client) rangeOp(ctx context.Context, proc uint32, f *Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	d, _, err := c.fdOp(ctx, proc, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		if proc == opFallocate {
			e.Uint32(mode)
		}
		e.Uint64(off)
		e.Uint64(length)
		return e.Dict(some(xd))
	}, nil)
	if err != nil {
		return pre, post, nil, err
	}
	return c.read2iatt(d, proc, f.GFID)
}

// Fallocate allocates (mode FALLOC_FL_* bits) the range.
func (c *Client) Fallocate(ctx context.Context, f *Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return c.rangeOp(ctx, opFallocate, f, mode, off, length, xd)
}

// Discard punches a hole in the range.
func (c *Client) Discard(ctx context.Context, f *Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return c.rangeOp(ctx, opDiscard, f, 0, off, length, xd)
}

// Zerofill writes zeroes over the range.
func (c *Client) Zerofill(ctx context.Context, f *Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return c.rangeOp(ctx, opZerofill, f, 0, off, length, xd)
}

// Seek whence values for SEEK.
const (
	SeekData = fop.SeekData
	SeekHole = fop.SeekHole
)

// Seek finds the next data or hole at or after off.
func (c *Client) Seek(ctx context.Context, f *Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	d, _, err := c.fdOp(ctx, opSeek, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint64(off)
		e.Int32(what)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return 0, nil, err
	}
	rx := d.Dict()
	o := d.Uint64()
	return o, rx, c.finish(d, opSeek, f.GFID)
}

// Lock commands and types (glusterfs-fops.h GF_LK_*).
const (
	LkGet  = fop.LkGet
	LkSet  = fop.LkSet
	LkSetW = fop.LkSetW

	LkRead   = fop.LkRead
	LkWrite  = fop.LkWrite
	LkUnlock = fop.LkUnlock
)

// Lk runs a POSIX lock command. The owner is the caller's LkOwner, sent in
// both the credential and the flock, as the native client does.
func (c *Client) Lk(ctx context.Context, f *Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error) {
	if cl := callerOf(ctx); cl != nil && len(cl.LkOwner) > 0 {
		fl.Owner = cl.LkOwner
	}
	d, _, err := c.fdOp(ctx, opLk, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint32(cmd)
		e.Uint32(fl.Type)
		e.Flock(&fl)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return xdr.Flock{}, nil, err
	}
	rx := d.Dict()
	out := d.Flock()
	return out, rx, c.finish(d, opLk, f.GFID)
}

// Inodelk takes or drops an inode lock in domain (cmd LkSet/LkSetW/LkGet).
func (c *Client) Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(96 + len(domain))
	e.GFID(gfid)
	e.Uint32(cmd)
	e.Uint32(fl.Type)
	e.Flock(&fl)
	e.String(domain)
	if err := e.Dict(xd); err != nil {
		return nil, c.opErr(opInodelk, gfid, err)
	}
	d, _, err := c.do(ctx, opInodelk, gfid, e.B, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opInodelk, gfid)
}

// Finodelk is Inodelk through an open file.
func (c *Client) Finodelk(ctx context.Context, f *Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	d, _, err := c.fdOp(ctx, opFinodelk, f, func(e *xdr.Encoder, rfd int64) error {
		e.GFID(f.GFID)
		e.Int64(rfd)
		e.Uint32(cmd)
		e.Uint32(fl.Type)
		e.Flock(&fl)
		e.String(domain)
		return e.Dict(xd)
	}, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opFinodelk, f.GFID)
}

// Entry lock commands (ENTRYLK_*).
const (
	EntrylkLock   = fop.EntrylkLock
	EntrylkUnlock = fop.EntrylkUnlock
	EntrylkLockNB = fop.EntrylkLockNB
)

// Entrylk takes or drops the lock on name in parent within domain.
func (c *Client) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	e := enc(64 + len(name) + len(domain))
	e.GFID(parent)
	e.Uint32(cmd)
	e.Uint32(typ)
	if name != "" {
		e.Uint64(1)
	} else {
		e.Uint64(0)
	}
	e.String(name)
	e.String(domain)
	if err := e.Dict(xd); err != nil {
		return nil, c.opErr(opEntrylk, parent, err)
	}
	d, _, err := c.do(ctx, opEntrylk, parent, e.B, nil)
	if err != nil {
		return nil, err
	}
	return c.dictOnly(d, opEntrylk, parent)
}

// maxCopyChunk bounds one COPY_FILE_RANGE request: the brick's kernel
// copies at most MAX_RW_COUNT (0x7ffff000) bytes per copy_file_range(2),
// and the wire's size field is 32 bits.
const maxCopyChunk = 1 << 31

// CopyFileRange has the brick copy size bytes from in at offIn to out at
// offOut with copy_file_range(2), which reflinks on XFS with reflink=1.
// Both fds must be open on this brick (out writable, not O_APPEND). It
// sends at most maxCopyChunk per request and loops on short counts; it
// returns how many bytes were copied (fewer than size only at the
// source's end of file) and out's attributes after.
func (c *Client) CopyFileRange(ctx context.Context, in *Fd, offIn uint64, out *Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	var done uint64
	var post xdr.Iatt
	var rx xdr.Dict
	for done < size {
		n := min(size-done, maxCopyChunk)
		got, p, r, err := c.copyOnce(ctx, in, offIn+done, out, offOut+done, uint32(n), flags, xd)
		if err != nil {
			return done, post, rx, err
		}
		if got > uint64(n) {
			return done, post, rx, &OpError{Brick: c.cfg.Name, Fop: "COPY_FILE_RANGE", GFID: out.GFID, Errno: syscall.EIO,
				Err: fmt.Errorf("brick says it copied %d bytes of %d", got, n)}
		}
		done, post, rx = done+got, p, r
		if got == 0 {
			break // the source's end of file
		}
	}
	return done, post, rx, nil
}

func (c *Client) copyOnce(ctx context.Context, in *Fd, offIn uint64, out *Fd, offOut uint64, n, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	// Resolve the source first (it may reopen after a reconnect), then the
	// destination on the same connection.
	conn, rfdIn, err := c.resolve(ctx, in, opCopyFileRange)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	conn2, rfdOut, err := c.resolve(ctx, out, opCopyFileRange)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	if conn2 != conn {
		return 0, xdr.Iatt{}, nil, c.opErr(opCopyFileRange, out.GFID, sunrpc.ErrDisconnected)
	}
	e := enc(96)
	e.GFID(in.GFID)
	e.GFID(out.GFID)
	e.Int64(rfdIn)
	e.Int64(rfdOut)
	e.Uint64(offIn)
	e.Uint64(offOut)
	e.Uint32(n)
	e.Uint32(flags)
	if err := e.Dict(xd); err != nil {
		return 0, xdr.Iatt{}, nil, c.opErr(opCopyFileRange, out.GFID, err)
	}
	fl, stamp := utimeFlags(opCopyFileRange)
	d, ret, err := c.call(ctx, conn, opCopyFileRange, out.GFID, c.cred(ctx, fl, stamp), e.B, nil)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	rx := d.Dict()
	_ = d.Iatt() // source after
	_ = d.Iatt() // destination before
	post := d.Iatt()
	return uint64(ret), post, rx, c.finish(d, opCopyFileRange, out.GFID)
}
