// Package bricktest is a fake GlusterFS brick and glusterd for tests: it
// speaks real SunRPC over TCP on 127.0.0.1 with record marking, answers the
// glusterd side (DUMP, PING, PORTBYBRICK) on one listener and the brick side
// (DUMP, PING, SETVOLUME, fops) on another, and lets a test script every fop
// reply and inject faults: drop a reply, delay it, hold it until released
// (replies out of order), close the connection mid-call, split a reply into
// fragments, write raw bytes, send a callback CALL, hang, or restart the brick
// on a new port.
//
// It imports neither brick nor brickfs's sunrpc: its wire code is written
// independently, so it checks the client rather than agreeing with it.
//
// # Concurrency
//
// Each accepted connection has one reader goroutine. Calls are answered in
// order on that goroutine unless the Reply asks for a delay or a hold; those
// replies are written from their own goroutine. Writes of whole records are
// serialized per connection. Close (run by tb.Cleanup) stops every goroutine
// and waits for them.
package bricktest

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/xdr"
)

// RPC programs and procedures the fake serves (rpc/rpc-lib/src/protocol-common.h).
const (
	ProgDump        = 123451501 // GLUSTER_DUMP_PROGRAM
	ProcDump        = 1         // GF_DUMP_DUMP
	ProcPing        = 2         // GF_DUMP_PING
	ProgHandshake   = 14398633  // GLUSTER_HNDSK_PROGRAM
	ProcSetVolume   = 1         // GF_HNDSK_SETVOLUME
	ProcGetSpec     = 2         // GF_HNDSK_GETSPEC
	ProgPortmap     = 34123456  // GLUSTER_PMAP_PROGRAM
	ProcPortByBrick = 1         // GF_PMAP_PORTBYBRICK
	ProgFOP         = 1298437   // GLUSTER_FOP_PROGRAM
	VersFOP         = 400       // GLUSTER_FOP_VERSION_v2
	ProgCallback    = 52743234  // GLUSTER_CBK_PROGRAM

	// Fop procs the default handlers answer (enum gf_fop_procnum).
	ProcOpen       = 11
	ProcFlush      = 15
	ProcOpendir    = 20
	ProcRelease    = 41
	ProcReleasedir = 42
)

// Accept states (RFC 5531).
const (
	Success     = 0
	ProcUnavail = 3
	GarbageArgs = 4
)

// MaxRecord bounds a record the fake accepts from the client.
const MaxRecord = 128 << 20

// Role says which listener a connection came in on.
type Role int

const (
	// Glusterd is the management listener (PORTBYBRICK, DUMP, PING).
	Glusterd Role = iota
	// Brick is the brick listener (DUMP, PING, SETVOLUME, fops).
	Brick
)

// Call is one CALL the fake received.
type Call struct {
	Conn                  *Conn
	Xid, Prog, Vers, Proc uint32
	Flavor                uint32 // credential flavor
	Cred                  []byte // credential body
	Args                  []byte // everything after the verifier
	Received              time.Time
}

// Reply says how to answer a call. The zero Reply answers SUCCESS with an
// empty body.
type Reply struct {
	// Body is the procedure result.
	Body []byte
	// AcceptStat is the accept_stat; non-zero sends no body.
	AcceptStat uint32
	// Drop sends nothing, ever.
	Drop bool
	// Delay waits before answering (on its own goroutine).
	Delay time.Duration
	// Hold answers only once the channel is closed (on its own goroutine):
	// release holds in any order to answer out of order.
	Hold <-chan struct{}
	// CloseConn closes the connection instead of answering.
	CloseConn bool
	// Fragments splits the reply record into this many fragments.
	Fragments int
	// Sent, if set, is closed once a delayed or held reply has been
	// written to the connection (or dropped, with Drop or CloseConn): a
	// test can then order a later call after it on the same connection.
	// It is never closed when the fake stops first.
	Sent chan<- struct{}
}

// OK is a successful reply carrying body.
func OK(body []byte) Reply { return Reply{Body: body} }

// Handler answers one call.
type Handler func(c *Call) Reply

// SetVolumeResult is the answer to a SETVOLUME.
type SetVolumeResult struct {
	OpRet, OpErrno int32
	Dict           xdr.OldDict
}

// AcceptVolume is the default SETVOLUME answer, shaped like a 10.3 brick's:
// op_ret 0 with a stale op_errno 22.
func AcceptVolume(xdr.OldDict) SetVolumeResult {
	return SetVolumeResult{0, 22, xdr.OldDict{}.
		Set("transport-ptr", "140367382985256").
		Set("clnt-lk-version", "0").
		Set("process-uuid", "3af5c13c-650c-47ac-b1ca-aad3a0863137").
		Set("ERROR", "Success").
		Set("volume-id", "dc34408c-f3be-48b8-b562-bad26ae87c44").
		Set("child_up", "1")}
}

// RejectAuth answers SETVOLUME as a brick does for a wrong password.
func RejectAuth(xdr.OldDict) SetVolumeResult {
	return SetVolumeResult{-1, 13, xdr.OldDict{}.Set("ERROR", "Authentication failed")}
}

// Options configure a Fake.
type Options struct {
	// BrickPath is the brick path PORTBYBRICK knows; "" means "/bricks/fake".
	BrickPath string
	// SetVolume answers SETVOLUME; nil means AcceptVolume.
	SetVolume func(req xdr.OldDict) SetVolumeResult
	// GlusterdTLS and BrickTLS, when set, make that listener speak TLS
	// with this server configuration (management TLS; a volume with
	// server.ssl on).
	GlusterdTLS, BrickTLS *tls.Config
}

type procKey struct{ prog, proc uint32 }

// Fake is a fake glusterd plus one brick.
type Fake struct {
	tb   testing.TB
	opts Options
	gd   net.Listener

	mu        sync.Mutex
	brick     net.Listener        // GUARDED_BY(mu)
	conns     map[*Conn]struct{}  // GUARDED_BY(mu)
	handlers  map[procKey]Handler // GUARDED_BY(mu)
	fallback  Handler             // GUARDED_BY(mu); for fops with no handler
	calls     []*Call             // GUARDED_BY(mu)
	hang      bool                // GUARDED_BY(mu)
	closed    bool                // GUARDED_BY(mu)
	setvolume func(xdr.OldDict) SetVolumeResult

	nextFd    atomic.Int64
	restarts  atomic.Int32
	callSeen  chan struct{} // pulsed (non-blocking) on every call
	wg        sync.WaitGroup
	stopHolds chan struct{}
}

// New starts a fake glusterd and brick on 127.0.0.1; tb.Cleanup closes them.
func New(tb testing.TB, opts Options) *Fake {
	tb.Helper()
	if opts.BrickPath == "" {
		opts.BrickPath = "/bricks/fake"
	}
	f := &Fake{
		tb:        tb,
		opts:      opts,
		conns:     make(map[*Conn]struct{}),
		handlers:  make(map[procKey]Handler),
		setvolume: opts.SetVolume,
		callSeen:  make(chan struct{}, 1),
		stopHolds: make(chan struct{}),
	}
	if f.setvolume == nil {
		f.setvolume = AcceptVolume
	}
	var err error
	if f.gd, err = listen(opts.GlusterdTLS); err != nil {
		tb.Fatalf("bricktest: listen: %v", err)
	}
	if f.brick, err = listen(opts.BrickTLS); err != nil {
		tb.Fatalf("bricktest: listen: %v", err)
	}
	f.installDefaults()
	f.wg.Add(2)
	go f.accept(f.gd, Glusterd)
	go f.accept(f.brick, Brick)
	tb.Cleanup(f.Close)
	return f
}

// listen listens on 127.0.0.1, with TLS when tc is set.
func listen(tc *tls.Config) (net.Listener, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil || tc == nil {
		return l, err
	}
	return tls.NewListener(l, tc), nil
}

// Host is the address both listeners use.
func (f *Fake) Host() string { return "127.0.0.1" }

// GlusterdPort is the management listener's port (stable across Restart).
func (f *Fake) GlusterdPort() int { return f.gd.Addr().(*net.TCPAddr).Port }

// BrickPort is the brick listener's current port.
func (f *Fake) BrickPort() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.brick.Addr().(*net.TCPAddr).Port
}

// BrickPath is the brick path PORTBYBRICK answers for.
func (f *Fake) BrickPath() string { return f.opts.BrickPath }

// Restarts counts Restart calls.
func (f *Fake) Restarts() int { return int(f.restarts.Load()) }

// Close stops the fake: listeners, connections and goroutines.
func (f *Fake) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	conns := f.connList()
	bl := f.brick
	f.mu.Unlock()
	close(f.stopHolds)
	_ = f.gd.Close()
	_ = bl.Close()
	for _, c := range conns {
		c.Close()
	}
	f.wg.Wait()
}

func (f *Fake) connList() []*Conn {
	out := make([]*Conn, 0, len(f.conns))
	for c := range f.conns {
		out = append(out, c)
	}
	return out
}

// Handle sets the handler of a fop proc (program 1298437/400).
func (f *Fake) Handle(proc uint32, h Handler) { f.HandleProg(ProgFOP, proc, h) }

// HandleProg sets the handler of any program's proc, replacing a default
// (e.g. ProgDump/ProcPing to drop pings).
func (f *Fake) HandleProg(prog, proc uint32, h Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[procKey{prog, proc}] = h
}

// HandleAll answers every fop that has no handler of its own.
func (f *Fake) HandleAll(h Handler) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fallback = h
}

// SetSetVolume changes how SETVOLUME is answered.
func (f *Fake) SetSetVolume(fn func(xdr.OldDict) SetVolumeResult) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setvolume = fn
}

// Hang makes the brick stop answering anything (pings included) while its
// sockets stay open; Hang(false) resumes answering new calls.
func (f *Fake) Hang(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = on
}

// Calls returns every call received so far, oldest first.
func (f *Fake) Calls() []*Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Call(nil), f.calls...)
}

// FopCalls returns the calls received for a fop proc.
func (f *Fake) FopCalls(proc uint32) []*Call {
	var out []*Call
	for _, c := range f.Calls() {
		if c.Prog == ProgFOP && c.Proc == proc {
			out = append(out, c)
		}
	}
	return out
}

// WaitCalls waits until pred holds for the calls received, or fails the test
// after timeout.
func (f *Fake) WaitCalls(timeout time.Duration, what string, pred func([]*Call) bool) []*Call {
	f.tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		cs := f.Calls()
		if pred(cs) {
			return cs
		}
		select {
		case <-f.callSeen:
		case <-time.After(10 * time.Millisecond):
		case <-deadline.C:
			f.tb.Fatalf("bricktest: timed out after %v waiting for %s (%d calls seen)", timeout, what, len(cs))
			return nil
		}
	}
}

// BrickConns returns the open brick-side connections.
func (f *Fake) BrickConns() []*Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*Conn
	for c := range f.conns {
		if c.Role == Brick {
			out = append(out, c)
		}
	}
	return out
}

// WaitBrickConn waits for an open brick connection that has done SETVOLUME.
func (f *Fake) WaitBrickConn(timeout time.Duration) *Conn {
	f.tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, c := range f.BrickConns() {
			if c.SetVolumeDone() {
				return c
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.tb.Fatalf("bricktest: no brick connection after %v", timeout)
	return nil
}

// DropConnections closes every brick connection; the listener stays.
func (f *Fake) DropConnections() {
	for _, c := range f.BrickConns() {
		c.Close()
	}
}

// Restart closes the brick listener and its connections and listens again on
// a new port, as a restarted glusterfsd does; PORTBYBRICK then answers the new
// port.
func (f *Fake) Restart() {
	f.tb.Helper()
	f.mu.Lock()
	old := f.brick
	f.mu.Unlock()
	oldPort := old.Addr().(*net.TCPAddr).Port
	_ = old.Close()
	f.DropConnections()
	var nl net.Listener
	for i := 0; i < 20; i++ {
		l, err := listen(f.opts.BrickTLS)
		if err != nil {
			f.tb.Fatalf("bricktest: restart listen: %v", err)
		}
		if l.Addr().(*net.TCPAddr).Port != oldPort {
			nl = l
			break
		}
		_ = l.Close()
	}
	if nl == nil {
		f.tb.Fatalf("bricktest: could not get a port other than %d", oldPort)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		_ = nl.Close()
		return
	}
	f.brick = nl
	f.wg.Add(1)
	f.mu.Unlock()
	f.restarts.Add(1)
	go f.accept(nl, Brick)
}

// Callback sends a callback CALL to every brick connection.
func (f *Fake) Callback(proc uint32, args []byte) {
	for _, c := range f.BrickConns() {
		_ = c.SendCall(ProgCallback, 1, proc, args)
	}
}

func (f *Fake) accept(l net.Listener, role Role) {
	defer f.wg.Done()
	for {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		c := &Conn{f: f, nc: nc, Role: role, xid: 0}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			_ = nc.Close()
			return
		}
		f.conns[c] = struct{}{}
		f.wg.Add(1)
		f.mu.Unlock()
		go c.serve()
	}
}

// Conn is one accepted connection.
type Conn struct {
	f    *Fake
	nc   net.Conn
	Role Role

	wmu       sync.Mutex
	xid       uint32 // GUARDED_BY(wmu); xid of the last callback sent
	setvolume atomic.Bool
	closed    atomic.Bool
}

// SetVolumeDone reports whether a SETVOLUME succeeded on c.
func (c *Conn) SetVolumeDone() bool { return c.setvolume.Load() }

// Close closes the connection.
func (c *Conn) Close() {
	c.closed.Store(true)
	_ = c.nc.Close()
}

// WriteRaw writes bytes as they are, record marks included.
func (c *Conn) WriteRaw(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// SendCall sends a server-to-client CALL (a callback) with AUTH_NULL cred and
// verifier, numbered from the connection's own xid counter as rpcsvc does.
func (c *Conn) SendCall(prog, vers, proc uint32, args []byte) error {
	c.wmu.Lock()
	c.xid++
	xid := c.xid
	c.wmu.Unlock()
	e := xdr.NewEncoder(40 + len(args))
	e.Uint32(xid)
	e.Uint32(0) // CALL
	e.Uint32(2)
	e.Uint32(prog)
	e.Uint32(vers)
	e.Uint32(proc)
	e.Uint32(0)
	e.Uint32(0)
	e.Uint32(0)
	e.Uint32(0)
	e.Raw(args)
	return c.writeRecord(e.B, 1)
}

// writeRecord frames rec into n fragments and writes them as one write.
func (c *Conn) writeRecord(rec []byte, n int) error {
	if n < 1 {
		n = 1
	}
	out := make([]byte, 0, len(rec)+4*n)
	per := (len(rec) + n - 1) / n
	for i := 0; i < n; i++ {
		lo := i * per
		hi := lo + per
		if lo > len(rec) {
			lo = len(rec)
		}
		if hi > len(rec) || i == n-1 {
			hi = len(rec)
		}
		mark := uint32(hi - lo)
		if i == n-1 {
			mark |= 1 << 31
		}
		out = binary.BigEndian.AppendUint32(out, mark)
		out = append(out, rec[lo:hi]...)
	}
	return c.WriteRaw(out)
}

func (c *Conn) serve() {
	defer c.f.wg.Done()
	defer func() {
		c.Close()
		c.f.mu.Lock()
		delete(c.f.conns, c)
		c.f.mu.Unlock()
	}()
	br := bufio.NewReader(c.nc)
	for {
		rec, err := readRecord(br, MaxRecord)
		if err != nil {
			if !c.closed.Load() && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.f.tb.Logf("bricktest: %v connection: %v", c.Role, err)
			}
			return
		}
		call, err := parseCall(rec)
		if err != nil {
			c.f.tb.Logf("bricktest: bad call: %v", err)
			return
		}
		if call == nil {
			continue // a reply to one of our callbacks: nothing to do
		}
		call.Conn = c
		call.Received = time.Now()
		c.f.mu.Lock()
		c.f.calls = append(c.f.calls, call)
		hang := c.f.hang
		c.f.mu.Unlock()
		select {
		case c.f.callSeen <- struct{}{}:
		default:
		}
		if hang {
			continue
		}
		r := c.f.answer(call)
		if r.Delay > 0 || r.Hold != nil {
			c.f.wg.Add(1)
			go func() {
				defer c.f.wg.Done()
				if r.Delay > 0 {
					select {
					case <-time.After(r.Delay):
					case <-c.f.stopHolds:
						return
					}
				}
				if r.Hold != nil {
					select {
					case <-r.Hold:
					case <-c.f.stopHolds:
						return
					}
				}
				c.reply(call, r)
				if r.Sent != nil {
					close(r.Sent)
				}
			}()
			continue
		}
		if r.CloseConn {
			return
		}
		c.reply(call, r)
	}
}

func (c *Conn) reply(call *Call, r Reply) {
	if r.Drop {
		return
	}
	if r.CloseConn {
		c.Close()
		return
	}
	e := xdr.NewEncoder(24 + len(r.Body))
	e.Uint32(call.Xid)
	e.Uint32(1) // REPLY
	e.Uint32(0) // MSG_ACCEPTED
	e.Uint32(0) // verf AUTH_NULL
	e.Uint32(0)
	e.Uint32(r.AcceptStat)
	if r.AcceptStat == Success {
		e.Raw(r.Body)
	}
	_ = c.writeRecord(e.B, r.Fragments)
}

func (f *Fake) answer(call *Call) Reply {
	f.mu.Lock()
	h := f.handlers[procKey{call.Prog, call.Proc}]
	fb := f.fallback
	f.mu.Unlock()
	if call.Prog == ProgFOP {
		if !call.Conn.SetVolumeDone() || call.Conn.Role != Brick {
			// A 10.3 brick answers fops before SETVOLUME with GARBAGE_ARGS.
			return Reply{AcceptStat: GarbageArgs}
		}
		if call.Vers != VersFOP {
			return Reply{AcceptStat: ProcUnavail}
		}
		if h == nil {
			h = fb
		}
	}
	if h == nil {
		return Reply{AcceptStat: ProcUnavail}
	}
	return h(call)
}

func (f *Fake) installDefaults() {
	f.handlers[procKey{ProgDump, ProcDump}] = f.dump
	f.handlers[procKey{ProgDump, ProcPing}] = func(*Call) Reply { return OK(Rsp(0, 0).B) }
	f.handlers[procKey{ProgPortmap, ProcPortByBrick}] = f.portByBrick
	f.handlers[procKey{ProgHandshake, ProcSetVolume}] = f.setVolume
	f.handlers[procKey{ProgFOP, ProcOpen}] = f.open
	f.handlers[procKey{ProgFOP, ProcOpendir}] = f.open
	for _, p := range []uint32{ProcRelease, ProcReleasedir, ProcFlush} {
		f.handlers[procKey{ProgFOP, p}] = func(*Call) Reply { return OK(CommonRsp(0, 0)) }
	}
}

// dump answers like a 10.3 brick (or glusterd) does.
func (f *Fake) dump(c *Call) Reply {
	e := xdr.NewEncoder(256)
	e.Uint64(0)
	e.Int32(0)
	e.Int32(0)
	progs := []struct {
		name      string
		num, vers uint64
	}{{"GF-DUMP", ProgDump, 1}, {"Gluster Portmap", ProgPortmap, 1}, {"Gluster Handshake", ProgHandshake, 2}}
	if c.Conn.Role == Brick {
		progs = []struct {
			name      string
			num, vers uint64
		}{{"GlusterFS 4.x v1", ProgFOP, 400}, {"GlusterFS 3.3", ProgFOP, 330}, {"GF-DUMP", ProgDump, 1}, {"GlusterFS Handshake", ProgHandshake, 2}}
	}
	for _, p := range progs {
		e.Bool(true)
		e.String(p.name)
		e.Uint64(p.num)
		e.Uint64(p.vers)
	}
	e.Bool(false)
	return OK(e.B)
}

func (f *Fake) portByBrick(c *Call) Reply {
	d := xdr.NewDecoder(c.Args)
	path := d.String(4096)
	e := xdr.NewEncoder(16)
	if d.Err() != nil || path != f.opts.BrickPath {
		e.Int32(-1)
		e.Int32(0)
		e.Int32(0)
		e.Int32(0)
		return OK(e.B)
	}
	e.Int32(0)
	e.Int32(0)
	e.Int32(0)
	e.Int32(int32(f.BrickPort()))
	return OK(e.B)
}

func (f *Fake) setVolume(c *Call) Reply {
	d := xdr.NewDecoder(c.Args)
	req, err := xdr.UnmarshalOldDict(d.Opaque(1 << 20))
	if d.Err() != nil || err != nil {
		return Reply{AcceptStat: GarbageArgs}
	}
	f.mu.Lock()
	fn := f.setvolume
	f.mu.Unlock()
	res := fn(req)
	if res.OpRet >= 0 {
		c.Conn.setvolume.Store(true)
	}
	e := xdr.NewEncoder(256)
	e.Int32(res.OpRet)
	e.Int32(res.OpErrno)
	e.Opaque(res.Dict.Marshal())
	return OK(e.B)
}

func (f *Fake) open(*Call) Reply {
	e := Rsp(0, 0)
	e.Int64(f.nextFd.Add(1) - 1)
	return OK(e.B)
}

// Rsp starts a v400 reply body: op_ret, op_errno and a NULL xdata dict, the
// prefix of nearly every gfx_*_rsp (READ is the exception).
func Rsp(ret, errno int32) *xdr.Encoder {
	e := xdr.NewEncoder(512)
	e.Int32(ret)
	e.Int32(errno)
	_ = e.Dict(nil)
	return e
}

// CommonRsp is a gfx_common_rsp.
func CommonRsp(ret, errno int32) []byte { return Rsp(ret, errno).B }

// IattRsp is a reply with n iatts after the xdata (gfx_common_iatt_rsp,
// gfx_common_2iatt_rsp, gfx_common_3iatt_rsp), all set to st.
func IattRsp(ret, errno int32, n int, st *xdr.Iatt) []byte {
	e := Rsp(ret, errno)
	for i := 0; i < n; i++ {
		e.Iatt(st)
	}
	return e.B
}

// ReadRsp is a gfx_read_rsp followed by data.
func ReadRsp(st *xdr.Iatt, data []byte) []byte {
	e := xdr.NewEncoder(200 + len(data))
	e.Int32(int32(len(data)))
	e.Int32(0)
	e.Iatt(st)
	e.Uint32(uint32(len(data)))
	_ = e.Dict(nil)
	e.Raw(data)
	return e.B
}

func parseCall(rec []byte) (*Call, error) {
	d := xdr.NewDecoder(rec)
	xid, typ := d.Uint32(), d.Uint32()
	if d.Err() != nil {
		return nil, d.Err()
	}
	if typ == 1 {
		return nil, nil
	}
	if typ != 0 {
		return nil, fmt.Errorf("message type %d", typ)
	}
	c := &Call{Xid: xid}
	if v := d.Uint32(); v != 2 && d.Err() == nil {
		return nil, fmt.Errorf("rpc version %d", v)
	}
	c.Prog, c.Vers, c.Proc = d.Uint32(), d.Uint32(), d.Uint32()
	c.Flavor = d.Uint32()
	c.Cred = append([]byte(nil), d.Opaque(400)...)
	_ = d.Uint32()
	_ = d.Opaque(400)
	if d.Err() != nil {
		return nil, d.Err()
	}
	c.Args = append([]byte(nil), d.Remaining()...)
	return c, nil
}

func readRecord(r io.Reader, max int) ([]byte, error) {
	var rec []byte
	var mark [4]byte
	for {
		if _, err := io.ReadFull(r, mark[:]); err != nil {
			return nil, err
		}
		m := binary.BigEndian.Uint32(mark[:])
		n := int(m & 0x7fffffff)
		if len(rec)+n > max {
			return nil, fmt.Errorf("record over %d bytes", max)
		}
		start := len(rec)
		rec = append(rec, make([]byte, n)...)
		if _, err := io.ReadFull(r, rec[start:]); err != nil {
			return nil, err
		}
		if m&(1<<31) != 0 {
			return rec, nil
		}
	}
}

func (r Role) String() string {
	if r == Brick {
		return "brick"
	}
	return "glusterd"
}

// Addr joins the fake's host with a port.
func (f *Fake) Addr(port int) string { return net.JoinHostPort(f.Host(), strconv.Itoa(port)) }

// LocalPort is the fake's port of this connection (which listener it
// came in on, and so which brick incarnation).
func (c *Conn) LocalPort() int { return c.nc.LocalAddr().(*net.TCPAddr).Port }
