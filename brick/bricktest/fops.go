package bricktest

import (
	"context"
	"sync"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Fop procedures ServeFops decodes (enum gf_fop_procnum).
const (
	procStat, procReadlink, procMknod, procMkdir, procUnlink   = 1, 2, 3, 4, 5
	procRmdir, procSymlink, procRename, procLink, procTruncate = 6, 7, 8, 9, 10
	procRead, procWrite, procStatfs, procFsync, procSetxattr   = 12, 13, 14, 16, 17
	procGetxattr, procRemovexattr, procFsyncdir, procAccess    = 18, 19, 21, 22
	procCreate, procFtruncate, procFstat, procLk, procLookup   = 23, 24, 25, 26, 27
	procInodelk, procFinodelk, procEntrylk, procXattrop        = 29, 30, 31, 33
	procFxattrop, procSetattr, procFsetattr, procReaddirp      = 34, 38, 39, 40
	procFallocate, procDiscard, procZerofill, procSeek         = 44, 45, 46, 48
	procCopyFileRange                                          = 56
)

// ServeFops has the fake answer every fop of the table by decoding the
// request, carrying it out on v (an in-memory brick) and encoding v's
// answer as a brick would: the brick client's wire code then meets the
// same contract as v itself. Caller identity and lock owners come from
// each call's credential; remote fds are numbers the fake hands out.
func (f *Fake) ServeFops(v fop.Fops) {
	s := &fopServer{v: v, fds: map[int64]*fop.Fd{}, next: 1}
	for proc, h := range map[uint32]func(*xdr.Decoder, context.Context) []byte{
		procStat: s.stat, procReadlink: s.readlink, procMknod: s.mknod, procMkdir: s.mkdir,
		procUnlink: s.unlink, procRmdir: s.rmdir, procSymlink: s.symlink, procRename: s.rename,
		procLink: s.link, procTruncate: s.truncate, ProcOpen: s.open, procRead: s.read,
		procWrite: s.write, procStatfs: s.statfs, ProcFlush: s.flush, procFsync: s.fsync,
		procSetxattr: s.setxattr, procGetxattr: s.getxattr, procRemovexattr: s.removexattr,
		ProcOpendir: s.opendir, procFsyncdir: s.fsyncdir, procAccess: s.access, procCreate: s.create,
		procFtruncate: s.ftruncate, procFstat: s.fstat, procLk: s.lk, procLookup: s.lookup,
		procInodelk: s.inodelk, procFinodelk: s.finodelk, procEntrylk: s.entrylk,
		procXattrop: s.xattrop, procFxattrop: s.fxattrop, procSetattr: s.setattr,
		procFsetattr: s.fsetattr, procReaddirp: s.readdirp, ProcRelease: s.release,
		ProcReleasedir: s.release, procFallocate: s.fallocate, procDiscard: s.discard,
		procZerofill: s.zerofill, procSeek: s.seek, procCopyFileRange: s.copyFileRange,
	} {
		f.Handle(proc, func(c *Call) Reply {
			d := xdr.NewDecoder(c.Args)
			body := h(d, callerCtx(c))
			if body == nil {
				return Reply{AcceptStat: GarbageArgs}
			}
			return OK(body)
		})
	}
}

type fopServer struct {
	v    fop.Fops
	mu   sync.Mutex
	fds  map[int64]*fop.Fd // GUARDED_BY(mu)
	next int64             // GUARDED_BY(mu)
}

// callerCtx reads an AUTH_GLUSTERFS_v3 credential into a fop.Caller.
func callerCtx(c *Call) context.Context {
	ctx := context.Background()
	if c.Flavor != 390040 {
		return ctx
	}
	d := xdr.NewDecoder(c.Cred)
	cl := &fop.Caller{Pid: d.Int32(), UID: d.Uint32(), GID: d.Uint32()}
	_ = d.Uint32() // flags
	_ = d.Uint32() // ctime ns
	_ = d.Uint64() // ctime s
	for n := d.Count(4); n > 0; n-- {
		cl.Groups = append(cl.Groups, d.Uint32())
	}
	cl.LkOwner = d.Opaque(xdr.MaxLkOwner)
	if d.Err() != nil {
		return ctx
	}
	return fop.WithCaller(ctx, cl)
}

func (s *fopServer) fd(g xdr.GFID, d *xdr.Decoder) *fop.Fd {
	n := d.Int64()
	if n == -2 {
		// GF_ANON_FD_NO: the inode by its gfid (the flags of a read or
		// write do not matter to the in-memory brick).
		return fop.AnonFd(g, 0)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.fds[n]; ok {
		return f
	}
	return &fop.Fd{} // unknown: the fops answer EBADF
}

func (s *fopServer) add(f *fop.Fd) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.next
	s.next++
	s.fds[n] = f
	return n
}

// rsp starts a reply: op_ret, op_errno, xdata. A failure carries nothing
// after them (the client reads no further).
func rsp(ret int32, err error, rx xdr.Dict) (*xdr.Encoder, bool) {
	e := xdr.NewEncoder(256)
	if err != nil {
		en := fop.Errno(err)
		if en == 0 {
			en = syscall.EIO
		}
		e.Int32(-1)
		e.Int32(int32(en))
		_ = e.Dict(nil)
		return e, false
	}
	e.Int32(ret)
	e.Int32(0)
	_ = e.Dict(rx)
	return e, true
}

func iatts(ret int32, err error, rx xdr.Dict, sts ...xdr.Iatt) []byte {
	e, ok := rsp(ret, err, rx)
	if ok {
		for i := range sts {
			e.Iatt(&sts[i])
		}
	}
	return e.B
}

func common(err error, rx xdr.Dict) []byte { e, _ := rsp(0, err, rx); return e.B }

// ok reports whether the request decoded; the handlers answer nil
// (GARBAGE_ARGS) otherwise.
func ok(d *xdr.Decoder) bool { return d.Err() == nil }

func (s *fopServer) stat(d *xdr.Decoder, ctx context.Context) []byte {
	g, xd := d.GFID(), d.Dict()
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Stat(ctx, g, xd)
	return iatts(0, err, rx, st)
}

func (s *fopServer) readlink(d *xdr.Decoder, ctx context.Context) []byte {
	g := d.GFID()
	_ = d.Uint32()
	xd := d.Dict()
	if !ok(d) {
		return nil
	}
	t, rx, err := s.v.Readlink(ctx, g, xd)
	e, good := rsp(int32(len(t)), err, rx)
	if good {
		e.Iatt(&xdr.Iatt{})
		e.String(t)
	}
	return e.B
}

// gfidReq splits the gfid-req a creation fop carries out of its xdata.
func gfidReq(xd xdr.Dict) (xdr.GFID, xdr.Dict) {
	var g xdr.GFID
	var rest xdr.Dict
	for _, p := range xd {
		if p.Key == "gfid-req" && len(p.Value.Bytes) == 16 {
			copy(g[:], p.Value.Bytes)
			continue
		}
		rest = append(rest, p)
	}
	return g, rest
}

func (s *fopServer) mknod(d *xdr.Decoder, ctx context.Context) []byte {
	parent, rdev, mode, umask, name := d.GFID(), d.Uint64(), d.Uint32(), d.Uint32(), d.String(4096)
	g, xd := gfidReq(d.Dict())
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Mknod(ctx, parent, name, mode, rdev, umask, g, xd)
	return iatts(0, err, rx, st, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) mkdir(d *xdr.Decoder, ctx context.Context) []byte {
	parent, mode, umask, name := d.GFID(), d.Uint32(), d.Uint32(), d.String(4096)
	g, xd := gfidReq(d.Dict())
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Mkdir(ctx, parent, name, mode, umask, g, xd)
	return iatts(0, err, rx, st, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) unlink(d *xdr.Decoder, ctx context.Context) []byte {
	parent, name := d.GFID(), d.String(4096)
	_ = d.Uint32()
	xd := d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Unlink(ctx, parent, name, xd)
	return iatts(0, err, rx, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) rmdir(d *xdr.Decoder, ctx context.Context) []byte {
	parent, flags, name, xd := d.GFID(), d.Int32(), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Rmdir(ctx, parent, name, flags, xd)
	return iatts(0, err, rx, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) symlink(d *xdr.Decoder, ctx context.Context) []byte {
	parent, name, umask, target := d.GFID(), d.String(4096), d.Uint32(), d.String(4096)
	g, xd := gfidReq(d.Dict())
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Symlink(ctx, parent, name, target, umask, g, xd)
	return iatts(0, err, rx, st, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) rename(d *xdr.Decoder, ctx context.Context) []byte {
	op, np, on, nn, xd := d.GFID(), d.GFID(), d.String(4096), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Rename(ctx, op, on, np, nn, xd)
	return iatts(0, err, rx, st, xdr.Iatt{}, xdr.Iatt{}, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) link(d *xdr.Decoder, ctx context.Context) []byte {
	g, np, nn, xd := d.GFID(), d.GFID(), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Link(ctx, g, np, nn, xd)
	return iatts(0, err, rx, st, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) truncate(d *xdr.Decoder, ctx context.Context) []byte {
	g, size, xd := d.GFID(), d.Uint64(), d.Dict()
	if !ok(d) {
		return nil
	}
	pre, post, rx, err := s.v.Truncate(ctx, g, size, xd)
	return iatts(0, err, rx, pre, post)
}

func (s *fopServer) opened(f *fop.Fd, rx xdr.Dict, err error) []byte {
	e, good := rsp(0, err, rx)
	if good {
		e.Int64(s.add(f))
	}
	return e.B
}

func (s *fopServer) open(d *xdr.Decoder, ctx context.Context) []byte {
	g, flags, xd := d.GFID(), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	f, rx, err := s.v.Open(ctx, g, flags, xd)
	return s.opened(f, rx, err)
}

func (s *fopServer) opendir(d *xdr.Decoder, ctx context.Context) []byte {
	g, xd := d.GFID(), d.Dict()
	if !ok(d) {
		return nil
	}
	f, rx, err := s.v.Opendir(ctx, g, xd)
	return s.opened(f, rx, err)
}

func (s *fopServer) release(d *xdr.Decoder, ctx context.Context) []byte {
	_ = d.GFID()
	n := d.Int64()
	if !ok(d) {
		return nil
	}
	s.mu.Lock()
	f, found := s.fds[n]
	delete(s.fds, n)
	s.mu.Unlock()
	if found {
		_ = s.v.Release(ctx, f)
	}
	return common(nil, nil)
}

func (s *fopServer) read(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, off, size := s.fd(fg, d), d.Uint64(), d.Uint32()
	_ = d.Uint32()
	xd := d.Dict()
	if !ok(d) {
		return nil
	}
	data, rx, err := s.v.Read(ctx, f, off, size, xd)
	e, good := rsp(int32(len(data)), err, nil)
	if !good {
		return e.B
	}
	e = xdr.NewEncoder(200 + len(data))
	e.Int32(int32(len(data)))
	e.Int32(0)
	e.Iatt(&xdr.Iatt{})
	e.Uint32(uint32(len(data)))
	_ = e.Dict(rx)
	e.Raw(data)
	return e.B
}

func (s *fopServer) write(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, off, size := s.fd(fg, d), d.Uint64(), d.Uint32()
	_ = d.Uint32()
	xd := d.Dict()
	data := d.Remaining()
	if !ok(d) || uint32(len(data)) < size {
		return nil
	}
	pre, post, rx, err := s.v.Write(ctx, f, off, data[:size], xd)
	return iatts(int32(size), err, rx, pre, post)
}

func (s *fopServer) statfs(d *xdr.Decoder, ctx context.Context) []byte {
	g, xd := d.GFID(), d.Dict()
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Statfs(ctx, g, xd)
	e, good := rsp(0, err, rx)
	if good {
		for _, v := range []uint64{st.Bsize, st.Frsize, st.Blocks, st.Bfree, st.Bavail, st.Files, st.Ffree, st.Favail, st.Fsid, st.Flag, st.Namemax} {
			e.Uint64(v)
		}
	}
	return e.B
}

func (s *fopServer) flush(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, xd := s.fd(fg, d), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Flush(ctx, f, xd)
	return common(err, rx)
}

func (s *fopServer) fsync(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, ds, xd := s.fd(fg, d), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Fsync(ctx, f, ds != 0, xd)
	return iatts(0, err, rx, xdr.Iatt{}, xdr.Iatt{})
}

func (s *fopServer) fsyncdir(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, ds, xd := s.fd(fg, d), d.Int32(), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Fsyncdir(ctx, f, ds != 0, xd)
	return common(err, rx)
}

func (s *fopServer) setxattr(d *xdr.Decoder, ctx context.Context) []byte {
	g, flags, dict, xd := d.GFID(), d.Uint32(), d.Dict(), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Setxattr(ctx, g, dict, flags, xd)
	return common(err, rx)
}

func dictRsp(out, rx xdr.Dict, err error) []byte {
	e, good := rsp(0, err, rx)
	if good {
		_ = e.Dict(out)
		e.Iatt(&xdr.Iatt{})
		e.Iatt(&xdr.Iatt{})
	}
	return e.B
}

func (s *fopServer) getxattr(d *xdr.Decoder, ctx context.Context) []byte {
	g := d.GFID()
	_ = d.Uint32()
	name, xd := d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	out, rx, err := s.v.Getxattr(ctx, g, name, xd)
	return dictRsp(out, rx, err)
}

func (s *fopServer) removexattr(d *xdr.Decoder, ctx context.Context) []byte {
	g, name, xd := d.GFID(), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Removexattr(ctx, g, name, xd)
	return common(err, rx)
}

func (s *fopServer) access(d *xdr.Decoder, ctx context.Context) []byte {
	g, mask, xd := d.GFID(), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Access(ctx, g, mask, xd)
	return common(err, rx)
}

func (s *fopServer) create(d *xdr.Decoder, ctx context.Context) []byte {
	parent, flags, mode, umask, name := d.GFID(), d.Uint32(), d.Uint32(), d.Uint32(), d.String(4096)
	g, xd := gfidReq(d.Dict())
	if !ok(d) {
		return nil
	}
	f, st, rx, err := s.v.Create(ctx, parent, name, flags, mode, umask, g, xd)
	e, good := rsp(0, err, rx)
	if good {
		e.Iatt(&st)
		e.Int64(s.add(f))
		e.Iatt(&xdr.Iatt{})
		e.Iatt(&xdr.Iatt{})
	}
	return e.B
}

func (s *fopServer) ftruncate(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, size, xd := s.fd(fg, d), d.Uint64(), d.Dict()
	if !ok(d) {
		return nil
	}
	pre, post, rx, err := s.v.Ftruncate(ctx, f, size, xd)
	return iatts(0, err, rx, pre, post)
}

func (s *fopServer) fstat(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, xd := s.fd(fg, d), d.Dict()
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Fstat(ctx, f, xd)
	return iatts(0, err, rx, st)
}

func (s *fopServer) lk(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, cmd := s.fd(fg, d), d.Uint32()
	_ = d.Uint32()
	fl, xd := d.Flock(), d.Dict()
	if !ok(d) {
		return nil
	}
	out, rx, err := s.v.Lk(ctx, f, cmd, fl, xd)
	e, good := rsp(0, err, rx)
	if good {
		e.Flock(&out)
	}
	return e.B
}

func (s *fopServer) lookup(d *xdr.Decoder, ctx context.Context) []byte {
	g, parent := d.GFID(), d.GFID()
	_ = d.Uint32()
	name, xd := d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	st, rx, err := s.v.Lookup(ctx, parent, name, g, xd)
	return iatts(0, err, rx, st, xdr.Iatt{})
}

func (s *fopServer) inodelk(d *xdr.Decoder, ctx context.Context) []byte {
	g, cmd := d.GFID(), d.Uint32()
	_ = d.Uint32()
	fl, dom, xd := d.Flock(), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Inodelk(ctx, g, dom, cmd, fl, xd)
	return common(err, rx)
}

func (s *fopServer) finodelk(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, cmd := s.fd(fg, d), d.Uint32()
	_ = d.Uint32()
	fl, dom, xd := d.Flock(), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Finodelk(ctx, f, dom, cmd, fl, xd)
	return common(err, rx)
}

func (s *fopServer) entrylk(d *xdr.Decoder, ctx context.Context) []byte {
	g, cmd, typ := d.GFID(), d.Uint32(), d.Uint32()
	_ = d.Uint64()
	name, dom, xd := d.String(4096), d.String(4096), d.Dict()
	if !ok(d) {
		return nil
	}
	rx, err := s.v.Entrylk(ctx, g, name, dom, cmd, typ, xd)
	return common(err, rx)
}

func (s *fopServer) xattrop(d *xdr.Decoder, ctx context.Context) []byte {
	g, flags, dict, xd := d.GFID(), d.Uint32(), d.Dict(), d.Dict()
	if !ok(d) {
		return nil
	}
	out, rx, err := s.v.Xattrop(ctx, g, flags, dict, xd)
	return dictRsp(out, rx, err)
}

func (s *fopServer) fxattrop(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, flags, dict, xd := s.fd(fg, d), d.Uint32(), d.Dict(), d.Dict()
	if !ok(d) {
		return nil
	}
	out, rx, err := s.v.Fxattrop(ctx, f, flags, dict, xd)
	return dictRsp(out, rx, err)
}

func (s *fopServer) setattr(d *xdr.Decoder, ctx context.Context) []byte {
	g, st, valid, xd := d.GFID(), d.Iatt(), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	pre, post, rx, err := s.v.Setattr(ctx, g, &st, valid, xd)
	return iatts(0, err, rx, pre, post)
}

func (s *fopServer) fsetattr(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, st, valid, xd := s.fd(fg, d), d.Iatt(), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	pre, post, rx, err := s.v.Fsetattr(ctx, f, &st, valid, xd)
	return iatts(0, err, rx, pre, post)
}

func (s *fopServer) readdirp(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, off, size, xd := s.fd(fg, d), d.Uint64(), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	ents, eof, rx, err := s.v.Readdirp(ctx, f, off, size, xd)
	e, good := rsp(int32(len(ents)), err, rx)
	if !good {
		return e.B
	}
	for i, de := range ents {
		e.Bool(true)
		e.Uint64(de.Ino)
		o := de.Off
		if eof && i == len(ents)-1 {
			o = 1<<63 - 1
		}
		e.Uint64(o)
		e.Uint32(uint32(len(de.Name)))
		e.Uint32(de.Type)
		e.String(de.Name)
		e.Iatt(&de.Stat)
		_ = e.Dict(nil)
	}
	e.Bool(false)
	return e.B
}

func (s *fopServer) rangeOp(d *xdr.Decoder, ctx context.Context, mode bool, fn func(f *fop.Fd, mode uint32, off, n uint64, xd xdr.Dict) (xdr.Iatt, xdr.Iatt, xdr.Dict, error)) []byte {
	fg := d.GFID()
	f := s.fd(fg, d)
	var m uint32
	if mode {
		m = d.Uint32()
	}
	off, n, xd := d.Uint64(), d.Uint64(), d.Dict()
	if !ok(d) {
		return nil
	}
	pre, post, rx, err := fn(f, m, off, n, xd)
	return iatts(0, err, rx, pre, post)
}

func (s *fopServer) fallocate(d *xdr.Decoder, ctx context.Context) []byte {
	return s.rangeOp(d, ctx, true, func(f *fop.Fd, mode uint32, off, n uint64, xd xdr.Dict) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
		return s.v.Fallocate(ctx, f, mode, off, n, xd)
	})
}

func (s *fopServer) discard(d *xdr.Decoder, ctx context.Context) []byte {
	return s.rangeOp(d, ctx, false, func(f *fop.Fd, _ uint32, off, n uint64, xd xdr.Dict) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
		return s.v.Discard(ctx, f, off, n, xd)
	})
}

func (s *fopServer) zerofill(d *xdr.Decoder, ctx context.Context) []byte {
	return s.rangeOp(d, ctx, false, func(f *fop.Fd, _ uint32, off, n uint64, xd xdr.Dict) (xdr.Iatt, xdr.Iatt, xdr.Dict, error) {
		return s.v.Zerofill(ctx, f, off, n, xd)
	})
}

func (s *fopServer) seek(d *xdr.Decoder, ctx context.Context) []byte {
	fg := d.GFID()
	f, off, what, xd := s.fd(fg, d), d.Uint64(), d.Int32(), d.Dict()
	if !ok(d) {
		return nil
	}
	o, rx, err := s.v.Seek(ctx, f, off, what, xd)
	e, good := rsp(0, err, rx)
	if good {
		e.Uint64(o)
	}
	return e.B
}

func (s *fopServer) copyFileRange(d *xdr.Decoder, ctx context.Context) []byte {
	gin, gout := d.GFID(), d.GFID()
	in, out := s.fd(gin, d), s.fd(gout, d)
	offIn, offOut, size, flags, xd := d.Uint64(), d.Uint64(), d.Uint32(), d.Uint32(), d.Dict()
	if !ok(d) {
		return nil
	}
	n, post, rx, err := s.v.CopyFileRange(ctx, in, offIn, out, offOut, uint64(size), flags, xd)
	return iatts(int32(n), err, rx, xdr.Iatt{}, xdr.Iatt{}, post)
}
