// Package sunrpc is ONC RPC (RFC 5531) over TCP as GlusterFS speaks it: record
// marking, many calls in flight on one connection matched by xid, replies in
// any order, AUTH_GLUSTERFS credentials, and server-to-client callback CALLs.
//
// # Concurrency
//
// A Conn has one reader goroutine and any number of callers. Writes of whole
// records are serialized by a mutex; a record is written with one writev so
// WRITE payloads are never copied. Pending calls live in a map keyed by xid;
// each has a reply channel of capacity 1, so a late reply never blocks the
// reader. Callback CALLs from the server are handed to a separate goroutine,
// and dropped (with a count) when the handler falls behind, so they never
// stall replies.
//
// # Errors
//
// When the connection breaks every pending and later call fails with an error
// that wraps ErrDisconnected. A call whose context ends stops waiting; its
// request may already have been sent and is never resent here.
//
// # Hostile peers
//
// Nothing the peer sends can crash the process, grow memory without bound or
// keep a call waiting while the peer looks alive. A record is at most
// MaxRecord bytes (DefaultMaxRecord, 64 MiB) in at most MaxFragments
// fragments, and the room for it grows with the bytes that actually arrive,
// so a record mark that promises much and sends little costs little. A reply
// to an xid that no call is waiting for (never sent, or answered already)
// breaks the connection, as rpc-clnt's rpc_clnt_fill_request_info does: a
// peer that says such things cannot be trusted with the replies that follow.
// Late replies to calls whose callers gave up (the newest MaxAbandoned of
// them) are dropped quietly. Only a reply to one of our calls counts as a
// sign of life (LastReply, Silence): a peer streaming callbacks, or a record
// that never ends, while our calls wait, is silent to the caller's watchdog.
package sunrpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/xdr"
)

// Message types and reply states (RFC 5531).
const (
	MsgCall  = 0
	MsgReply = 1

	replyAccepted = 0
	replyDenied   = 1
)

// Accept states of an accepted reply.
const (
	Success      = 0
	ProgUnavail  = 1
	ProgMismatch = 2
	ProcUnavail  = 3
	GarbageArgs  = 4
	SystemErr    = 5
)

// Credential flavors (rpc/rpc-lib/src/xdr-rpc.h).
const (
	AuthNull        = 0
	AuthGlusterfsV2 = 390039
	AuthGlusterfsV3 = 390040
)

// MaxAuthBytes is the RFC limit on a credential body.
const MaxAuthBytes = 400

// DefaultMaxRecord bounds a record read from the peer. GlusterFS itself drops
// a connection at 1 GiB (socket_proto_state_machine, GF_UNIT_GB); brickfs asks
// for at most 1 MiB of data a reply, and a volfile is at most 16 MiB.
const DefaultMaxRecord = 64 << 20

// MaxFragments bounds the fragments of one record. GlusterFS writes every
// record as one fragment (socket.c __socket_ioq_new); a peer that sends empty
// or tiny fragments without end is cut off here, not read until MaxRecord.
const MaxFragments = 1024

// MaxAbandoned is how many calls whose callers gave up, and whose replies
// have not come, a Conn remembers, so that their late replies are dropped
// quietly rather than taken for replies to xids never asked.
const MaxAbandoned = 4096

// eagerAlloc is the most room taken for a fragment before its bytes arrive:
// a 1 MiB READ reply is read into one allocation, while a mark that promises
// 64 MiB and then sends nothing costs 4 MiB, not 64.
const eagerAlloc = 4 << 20

// ErrDisconnected is wrapped by every error caused by a lost connection.
var ErrDisconnected = errors.New("connection lost")

// ErrPeerClosed is the error of a connection the peer closed between
// records (one closed in the middle of a record is a broken peer).
var ErrPeerClosed = fmt.Errorf("%w: closed by peer", ErrDisconnected)

// errBadRecord is wrapped by ReadRecord's errors about the record itself
// (as opposed to the connection under it).
var errBadRecord = errors.New("bad record from peer")

// RPCError is a reply that was not a successful procedure result.
type RPCError struct {
	Denied bool
	Stat   uint32 // accept_stat, or reject_stat when Denied
	Auth   uint32 // auth_stat when Denied with AUTH_ERROR
}

func (e *RPCError) Error() string {
	if e.Denied {
		if e.Stat == 1 {
			return fmt.Sprintf("rpc call denied: auth error %d (the server refused our credentials or source port)", e.Auth)
		}
		return "rpc call denied: rpc version mismatch"
	}
	switch e.Stat {
	case ProgUnavail:
		return "rpc program unavailable"
	case ProgMismatch:
		return "rpc program version mismatch"
	case ProcUnavail:
		return "rpc procedure unavailable"
	case GarbageArgs:
		return "rpc garbage args (the server could not decode the request)"
	case SystemErr:
		return "rpc system error"
	}
	return fmt.Sprintf("rpc accept state %d", e.Stat)
}

// Cred is an encoded credential.
type Cred struct {
	Flavor uint32
	Body   []byte
}

// CredV2 encodes an AUTH_GLUSTERFS_v2 body (rpc/xdr/src/rpc-common-xdr.x
// auth_glusterfs_parms_v2). Groups are cut to what fits in MaxAuthBytes, as
// the native client does.
func CredV2(pid int32, uid, gid uint32, groups []uint32, lkOwner []byte) Cred {
	groups = fitGroups(groups, lkOwner, 95)
	e := xdr.NewEncoder(24 + 4*len(groups) + len(lkOwner))
	e.Int32(pid)
	e.Uint32(uid)
	e.Uint32(gid)
	e.Uint32(uint32(len(groups)))
	for _, g := range groups {
		e.Uint32(g)
	}
	e.Opaque(lkOwner)
	return Cred{AuthGlusterfsV2, e.B}
}

// Ctime flag bits of AUTH_GLUSTERFS_v3 (libglusterfs/src/glusterfs/stack.h MDATA_*).
const (
	MdataCtime    = 0x1
	MdataMtime    = 0x2
	MdataAtime    = 0x4
	MdataParCtime = 0x8
	MdataParMtime = 0x10
	MdataParAtime = 0x20
)

// CredV3 encodes an AUTH_GLUSTERFS_v3 body (rpc/xdr/src/glusterfs4-xdr.x
// auth_glusterfs_params_v3). With flags set the brick stores ctime as the
// file's timestamps.
func CredV3(pid int32, uid, gid uint32, groups []uint32, lkOwner []byte, flags uint32, ctime time.Time) Cred {
	groups = fitGroups(groups, lkOwner, 91)
	e := xdr.NewEncoder(40 + 4*len(groups) + len(lkOwner))
	e.Int32(pid)
	e.Uint32(uid)
	e.Uint32(gid)
	e.Uint32(flags)
	if ctime.IsZero() {
		e.Uint32(0)
		e.Uint64(0)
	} else {
		e.Uint32(uint32(ctime.Nanosecond()))
		e.Uint64(uint64(ctime.Unix()))
	}
	e.Uint32(uint32(len(groups)))
	for _, g := range groups {
		e.Uint32(g)
	}
	e.Opaque(lkOwner)
	return Cred{AuthGlusterfsV3, e.B}
}

func fitGroups(groups []uint32, lkOwner []byte, max int) []uint32 {
	room := max - (len(lkOwner)+3)/4
	if room < 0 {
		room = 0
	}
	if len(groups) > room {
		groups = groups[:room]
	}
	return groups
}

// Call is a CALL received from the server (a GlusterFS callback).
type Call struct {
	Xid, Prog, Vers, Proc uint32
	Args                  []byte
}

// Options tune a Conn.
type Options struct {
	// MaxRecord bounds one incoming record; 0 means DefaultMaxRecord.
	MaxRecord int
	// OnCallback receives server CALLs on the Conn's callback goroutine.
	OnCallback func(Call)
	// Log receives connection-level messages; nil means no logging.
	Log *zap.Logger
	// TLS, when set, makes Dial speak TLS on the connection, as a
	// GlusterFS socket with ssl-enabled does.
	TLS *tls.Config
}

type reply struct {
	body []byte
	err  error
	buf  *Buf // the record's pooled storage, or nil
	// direct is how many bytes of the record's end went to the call's
	// Into instead of body; -1 when none did (body is the whole result).
	direct int
}

// waiter is a call waiting for its reply.
type waiter struct {
	ch   chan reply
	into *Into // nil: the reply comes whole
}

// Conn is one RPC connection.
type Conn struct {
	nc   net.Conn
	opts Options
	log  *zap.Logger

	wmu sync.Mutex // serializes record writes

	mu      sync.Mutex
	pending map[uint32]waiter // GUARDED_BY(mu)
	gaveUp  abandoned         // GUARDED_BY(mu); calls whose callers stopped waiting
	nextXid uint32            // GUARDED_BY(mu)
	err     error             // GUARDED_BY(mu); set once when the connection breaks

	lastReply atomic.Int64 // unix nanos of the last reply to one of our calls
	busySince atomic.Int64 // unix nanos when the pending map last went from empty to non-empty
	// brokeSilent is Silence when the connection broke (ns; set once,
	// under mu, before the pending calls fail).
	brokeSilent atomic.Int64
	callbacks   chan Call
	dropped     atomic.Uint64
	done        chan struct{}
	wg          sync.WaitGroup
}

// NewConn starts serving an established connection. firstXid lets a caller
// keep counting across reconnects, as rpc-clnt does.
func NewConn(nc net.Conn, firstXid uint32, opts Options) *Conn {
	if opts.MaxRecord <= 0 {
		opts.MaxRecord = DefaultMaxRecord
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	if firstXid == 0 {
		firstXid = 1
	}
	c := &Conn{
		nc:        nc,
		opts:      opts,
		log:       log,
		pending:   make(map[uint32]waiter),
		nextXid:   firstXid,
		callbacks: make(chan Call, 64),
		done:      make(chan struct{}),
	}
	c.lastReply.Store(time.Now().UnixNano())
	c.wg.Add(2)
	go c.readLoop()
	go c.callbackLoop()
	return c
}

// Dial connects to addr and starts a Conn.
func Dial(ctx context.Context, addr string, firstXid uint32, opts Options) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		// The client volfile's keepalive-time 20, interval 2, count 9.
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 20 * time.Second, Interval: 2 * time.Second, Count: 9})
	}
	if opts.TLS != nil {
		tc := tls.Client(nc, opts.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		nc = tlsConn{tc, nc}
	}
	return NewConn(nc, firstXid, opts), nil
}

// tlsConn closes the TCP connection under a TLS one directly: a
// close_notify alert to a hung peer could wait seconds for buffer space,
// holding up the failure of every pending call.
type tlsConn struct {
	*tls.Conn
	raw net.Conn
}

func (t tlsConn) Close() error { return t.raw.Close() }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is this end's address, as the peer sees it on loopback and
// unNATed networks (a brick checks it against auth.allow).
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Done is closed when the connection has broken or been closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// LastReply is when the last reply to one of our calls arrived (a late one
// included), or when the Conn started.
func (c *Conn) LastReply() time.Time { return time.Unix(0, c.lastReply.Load()) }

// Silence is how long calls have waited with no reply to any of our calls
// arriving: zero while no call is pending. Any reply proves the peer alive,
// so a busy peer is never silent; a hung one is, and so is one that sends
// only callbacks, or a record that never ends.
func (c *Conn) Silence(now time.Time) time.Duration {
	if c.Pending() == 0 {
		return 0
	}
	from := c.lastReply.Load()
	if b := c.busySince.Load(); b > from {
		from = b
	}
	return now.Sub(time.Unix(0, from))
}

// SilenceAtBreak is Silence at the moment the connection broke: how long
// its calls had waited with no reply (a hung brick's whole ping timeout),
// zero while it is up or when no call was waiting.
func (c *Conn) SilenceAtBreak() time.Duration { return time.Duration(c.brokeSilent.Load()) }

// Pending is the number of calls waiting for replies.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// NextXid is the xid the next call would start searching from.
func (c *Conn) NextXid() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextXid
}

// DroppedCallbacks counts callbacks dropped because the handler fell behind.
func (c *Conn) DroppedCallbacks() uint64 { return c.dropped.Load() }

// Close breaks the connection, fails pending calls and waits for the
// goroutines to end.
func (c *Conn) Close() error {
	c.fail(fmt.Errorf("%w: closed by client", ErrDisconnected))
	c.wg.Wait()
	return nil
}

// Abort is Close with a reason: pending and later calls fail, and Err
// returns, an error that wraps ErrDisconnected and reason. A Conn that has
// already broken keeps its first error.
func (c *Conn) Abort(reason error) {
	c.fail(fmt.Errorf("%w: %w", ErrDisconnected, reason))
	c.wg.Wait()
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	if len(c.pending) > 0 {
		from := max(c.lastReply.Load(), c.busySince.Load())
		c.brokeSilent.Store(int64(time.Since(time.Unix(0, from))))
	}
	pend := c.pending
	c.pending = make(map[uint32]waiter)
	c.mu.Unlock()
	_ = c.nc.Close()
	for _, w := range pend {
		w.ch <- reply{err: err, direct: -1}
	}
	close(c.done)
}

// register allocates an xid not in use.
func (c *Conn) register(into *Into) (uint32, chan reply, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, nil, c.err
	}
	for {
		x := c.nextXid
		c.nextXid++
		if c.nextXid == 0 {
			c.nextXid = 1
		}
		if _, busy := c.pending[x]; !busy && !c.gaveUp.has(x) && x != 0 {
			if len(c.pending) == 0 {
				c.busySince.Store(time.Now().UnixNano())
			}
			c.pending[x] = waiter{ch: ch, into: into}
			return x, ch, nil
		}
	}
}

func (c *Conn) forget(xid uint32) {
	c.mu.Lock()
	delete(c.pending, xid)
	c.mu.Unlock()
}

// abandon stops waiting for xid's reply, which may still come.
func (c *Conn) abandon(xid uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[xid]; !ok {
		return // answered meanwhile, or the connection broke
	}
	delete(c.pending, xid)
	c.gaveUp.add(xid)
}

// abandoned is the set of xids whose callers gave up and whose replies
// have not come: at most MaxAbandoned of them, the oldest forgotten
// first. Answered ones leave it at once, so a brick answering a long
// queue late (a disk that stalled) is not dropped for a reply to a call
// given up long ago.
type abandoned struct {
	set   map[uint32]struct{}
	order []uint32 // in the order added; may hold xids already removed from set
}

func (a *abandoned) has(x uint32) bool {
	_, ok := a.set[x]
	return ok
}

func (a *abandoned) add(x uint32) {
	if a.set == nil {
		a.set = make(map[uint32]struct{})
	}
	for len(a.set) >= MaxAbandoned && len(a.order) > 0 {
		old := a.order[0]
		a.order = a.order[1:]
		delete(a.set, old) // a no-op for one answered already
	}
	if len(a.order) >= 2*MaxAbandoned {
		// Mostly answered ones: keep those still waited for.
		live := make([]uint32, 0, len(a.set)+1)
		for _, o := range a.order {
			if _, ok := a.set[o]; ok {
				live = append(live, o)
			}
		}
		a.order = live
	}
	a.order = append(a.order, x)
	a.set[x] = struct{}{}
}

// remove reports whether x was in the set, and takes it out.
func (a *abandoned) remove(x uint32) bool {
	if _, ok := a.set[x]; !ok {
		return false
	}
	delete(a.set, x)
	return true
}

// Call sends one CALL and waits for its reply. args is the encoded argument
// struct; data, if any, follows it unpadded (WRITE payloads). The returned
// body is the procedure result, including any raw data after it (READ).
func (c *Conn) Call(ctx context.Context, prog, vers, proc uint32, cred Cred, args, data []byte) ([]byte, error) {
	body, _, err := c.CallBuf(ctx, prog, vers, proc, cred, args, data)
	return body, err // a pooled record is left to the collector
}

// CallBuf is Call that also returns the pooled storage of a large reply
// (nil for others), for the caller to Release once it is done with every
// byte of the body.
func (c *Conn) CallBuf(ctx context.Context, prog, vers, proc uint32, cred Cred, args, data []byte) ([]byte, *Buf, error) {
	body, _, buf, err := c.CallInto(ctx, prog, vers, proc, cred, args, data, nil)
	return body, buf, err
}

// CallInto is CallBuf that may read the data at the end of a large reply
// straight into into.Dest (see Into) instead of into the record: n is how
// many bytes went there, with body the result before them; -1 when the
// reply came whole (body holds all of it, and Dest is untouched). Once
// CallInto returns, the connection never writes to Dest again, whatever
// the reply did. A nil into is CallBuf.
func (c *Conn) CallInto(ctx context.Context, prog, vers, proc uint32, cred Cred, args, data []byte, into *Into) (body []byte, n int, buf *Buf, err error) {
	if into != nil {
		// Every way out below: the reader may have begun filling Dest
		// for this call and must stop before the caller reuses it.
		defer into.stop()
	}
	xid, ch, err := c.register(into)
	if err != nil {
		return nil, -1, nil, err
	}
	hdr := xdr.NewEncoder(48 + len(cred.Body) + len(args))
	hdr.Uint32(0) // record mark, patched below
	hdr.Uint32(xid)
	hdr.Uint32(MsgCall)
	hdr.Uint32(2)
	hdr.Uint32(prog)
	hdr.Uint32(vers)
	hdr.Uint32(proc)
	hdr.Uint32(cred.Flavor)
	hdr.Opaque(cred.Body)
	hdr.Uint32(AuthNull)
	hdr.Uint32(0)
	hdr.Raw(args)
	size := len(hdr.B) - 4 + len(data)
	if size >= 1<<31 {
		c.forget(xid)
		return nil, -1, nil, fmt.Errorf("rpc record of %d bytes is too large", size)
	}
	binary.BigEndian.PutUint32(hdr.B, uint32(size)|1<<31)

	if err := c.write(hdr.B, data); err != nil {
		c.forget(xid)
		c.writeFailed(err)
		return nil, -1, nil, c.Err()
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return r.body, -1, nil, r.err
		}
		return r.body, r.direct, r.buf, nil
	case <-ctx.Done():
		c.abandon(xid)
		return nil, -1, nil, ctx.Err()
	}
}

// writeFailGrace bounds how long a failed write waits for the reader's
// own account of the connection's end.
const writeFailGrace = 250 * time.Millisecond

// writeFailed ends the connection after a write failed. A peer that hangs
// up often says why first: a TLS server refusing this host's certificate
// after the 1.3 handshake sends an alert, then closes, and the reset this
// write met arrives after the alert, which still waits, unread, in the
// socket's buffer. The reader gets it at once, so its error is the one
// that ends the connection when it comes within writeFailGrace; only
// otherwise does the write's.
func (c *Conn) writeFailed(err error) {
	t := time.NewTimer(writeFailGrace)
	defer t.Stop()
	select {
	case <-c.done:
		return
	case <-t.C:
	}
	c.fail(fmt.Errorf("%w: write: %v", ErrDisconnected, err))
}

func (c *Conn) write(hdr, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(data) == 0 {
		_, err := c.nc.Write(hdr)
		return err
	}
	bufs := net.Buffers{hdr, data}
	_, err := bufs.WriteTo(c.nc)
	return err
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	defer close(c.callbacks)
	br := bufio.NewReaderSize(c.nc, readBufBytes)
	for {
		rec, buf, direct, err := c.readReply(br)
		if err != nil {
			var alert *net.OpError
			switch {
			case errors.Is(err, io.ErrUnexpectedEOF):
				err = fmt.Errorf("%w: closed by peer in the middle of a record", ErrDisconnected)
			case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed):
				err = ErrPeerClosed
			case errors.As(err, &alert) && alert.Op == "remote error":
				// A TLS alert from the peer (it refused this host's
				// certificate) stays visible to errors.As, to be
				// explained; nothing else of the cause does (a
				// syscall.Errno in it would pass for a fop's).
				err = fmt.Errorf("%w: %w", ErrDisconnected, alert)
			case !errors.Is(err, ErrDisconnected):
				err = fmt.Errorf("%w: %v", ErrDisconnected, err)
			}
			c.fail(err)
			return
		}
		if err := c.dispatch(rec, buf, direct); err != nil {
			c.fail(fmt.Errorf("%w: %w: %w", ErrDisconnected, errBadRecord, err))
			return
		}
	}
}

// ReadRecord reads one whole record (all its fragments) of at most max bytes
// in at most MaxFragments fragments. The room for the record grows with the
// bytes that arrive (past the first eagerAlloc bytes of a fragment), never
// beyond what its marks announced, so it never exceeds max.
func ReadRecord(r io.Reader, max int) ([]byte, error) {
	rec, _, err := readRecord(r, max)
	return rec, err
}

// readRecord is ReadRecord that reads a large record in one fragment (a
// READ reply) into a pooled buffer, returned with it.
func readRecord(r io.Reader, max int) ([]byte, *Buf, error) {
	var rec []byte
	var mark [4]byte
	for frags := 1; ; frags++ {
		if frags > MaxFragments {
			return nil, nil, fmt.Errorf("%w: a record in more than %d fragments (%d bytes so far)", errBadRecord, MaxFragments, len(rec))
		}
		if _, err := io.ReadFull(r, mark[:]); err != nil {
			if frags > 1 {
				err = unexpected(err)
			}
			return nil, nil, err
		}
		m := binary.BigEndian.Uint32(mark[:])
		n := int(m &^ (1 << 31))
		if len(rec)+n > max {
			return nil, nil, fmt.Errorf("%w: a record of %d bytes or more announced (limit %d)", errBadRecord, len(rec)+n, max)
		}
		last := m&(1<<31) != 0
		if frags == 1 && last {
			// At most poolMax: a record announced but not sent
			// costs no more than eagerAlloc would let it.
			if b := getBuf(n); b != nil {
				if _, err := io.ReadFull(r, b.b); err != nil {
					b.Release()
					return nil, nil, unexpected(err)
				}
				// Capped: nothing reads past the record into what
				// an earlier, larger one left in the buffer.
				return b.b[:n:n], b, nil
			}
		}
		var err error
		if rec, err = readFragment(r, rec, n, max); err != nil {
			return nil, nil, err
		}
		if last {
			if rec == nil {
				rec = []byte{}
			}
			return rec, nil, nil
		}
	}
}

// readFragment appends n bytes from r to rec, growing rec with the bytes
// that arrive: it doubles (so a record in many fragments is copied a few
// times, not once a fragment), but takes at most eagerAlloc bytes, or as
// many as have arrived, ahead of them, and never more than limit in all.
func readFragment(r io.Reader, rec []byte, n, limit int) ([]byte, error) {
	want := len(rec) + n
	for len(rec) < want {
		if cap(rec) == len(rec) {
			c := min(max(want, 2*len(rec)), len(rec)+max(len(rec), eagerAlloc), limit)
			grown := make([]byte, len(rec), c)
			copy(grown, rec)
			rec = grown
		}
		end := min(cap(rec), want)
		if _, err := io.ReadFull(r, rec[len(rec):end]); err != nil {
			return nil, unexpected(err)
		}
		rec = rec[:end]
	}
	return rec, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Message is a decoded RPC message header.
type Message struct {
	Xid, Type uint32
	// For a reply: the result body, or Err.
	Body []byte
	Err  error
	// For a call.
	Call Call
}

// ParseMessage decodes an RPC message header. A reply that is not a success
// gets Err set to an *RPCError. Only malformed headers return an error.
func ParseMessage(rec []byte) (Message, error) {
	d := xdr.NewDecoder(rec)
	m := Message{Xid: d.Uint32(), Type: d.Uint32()}
	if err := d.Err(); err != nil {
		return m, err
	}
	switch m.Type {
	case MsgReply:
		switch stat := d.Uint32(); stat {
		case replyAccepted:
			_ = d.Uint32()             // verf flavor
			_ = d.Opaque(MaxAuthBytes) // verf body
			as := d.Uint32()
			if d.Err() != nil {
				return m, d.Err()
			}
			if as > SystemErr {
				return m, fmt.Errorf("accepted reply with accept_stat %d, not one of RFC 5531", as)
			}
			if as != Success {
				m.Err = &RPCError{Stat: as}
			} else {
				m.Body = d.Remaining()
			}
		case replyDenied:
			rs := d.Uint32()
			if rs > 1 && d.Err() == nil {
				return m, fmt.Errorf("denied reply with reject_stat %d, neither RPC_MISMATCH nor AUTH_ERROR", rs)
			}
			e := &RPCError{Denied: true, Stat: rs}
			if rs == 1 {
				e.Auth = d.Uint32()
			}
			if d.Err() != nil {
				return m, d.Err()
			}
			m.Err = e
		default:
			return m, fmt.Errorf("reply state %d", stat)
		}
	case MsgCall:
		rpcvers := d.Uint32()
		m.Call = Call{Xid: m.Xid, Prog: d.Uint32(), Vers: d.Uint32(), Proc: d.Uint32()}
		_ = d.Uint32()
		_ = d.Opaque(MaxAuthBytes)
		_ = d.Uint32()
		_ = d.Opaque(MaxAuthBytes)
		if d.Err() != nil {
			return m, d.Err()
		}
		if rpcvers != 2 {
			return m, fmt.Errorf("call with rpc version %d", rpcvers)
		}
		m.Call.Args = d.Remaining()
	default:
		return m, fmt.Errorf("message type %d", m.Type)
	}
	return m, nil
}

// dispatch hands a record to the call it answers, with buf, the pooled
// storage of the record if it has one, and direct, how many bytes of its
// end went to the call's Into (-1: none).
func (c *Conn) dispatch(rec []byte, buf *Buf, direct int) error {
	m, err := ParseMessage(rec)
	if err != nil {
		return err
	}
	if m.Type == MsgCall {
		// The handler keeps the arguments: buf is left to the
		// collector.
		select {
		case c.callbacks <- m.Call:
		default:
			// Said for the 1st, 2nd, 4th, 8th... drop: a peer flooding
			// callbacks must not flood the log too.
			if n := c.dropped.Add(1); n&(n-1) == 0 {
				c.log.Warn("dropped server callbacks: handler is behind", zap.Uint32("prog", m.Call.Prog), zap.Uint32("proc", m.Call.Proc), zap.Uint64("dropped", n))
			}
		}
		return nil
	}
	c.mu.Lock()
	w, ok := c.pending[m.Xid]
	delete(c.pending, m.Xid)
	late := !ok && c.gaveUp.remove(m.Xid)
	c.mu.Unlock()
	if !ok && !late {
		// rpc_clnt_fill_request_info fails the same way, and socket.c
		// then drops the connection.
		return fmt.Errorf("reply to xid %d, which no call is waiting for (never sent, or answered already)", m.Xid)
	}
	c.lastReply.Store(time.Now().UnixNano())
	if late {
		// A reply to a call whose caller gave up: harmless.
		if ce := c.log.Check(zap.DebugLevel, "late reply"); ce != nil {
			ce.Write(zap.Uint32("xid", m.Xid))
		}
		buf.Release()
		return nil
	}
	if direct >= 0 && m.Err != nil {
		// readReply fills an Into only for a successful reply.
		return fmt.Errorf("reply to xid %d read into the caller's buffer, yet not a success", m.Xid)
	}
	w.ch <- reply{body: m.Body, err: m.Err, buf: buf, direct: direct}
	return nil
}

func (c *Conn) callbackLoop() {
	defer c.wg.Done()
	for call := range c.callbacks {
		if c.opts.OnCallback != nil {
			c.opts.OnCallback(call)
		}
	}
}
