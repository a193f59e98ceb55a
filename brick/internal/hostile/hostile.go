// Package hostile is a GlusterFS peer that breaks the protocol on purpose,
// for tests: a SunRPC server on 127.0.0.1 that answers a client's calls
// honestly (DUMP, PING, PORTBYBRICK, SETVOLUME, GETSPEC, fops) until a
// chosen call, and answers that one as a Behaviour says: a garbage body, a
// garbage or truncated record, a record mark of 2 GiB, fragments without
// end, a record trickled a byte at a time, callbacks and no reply, a reply
// to an xid never asked, two replies, an accept state or denial, or no
// reading ever again.
//
// Like bricktest it imports neither brick nor brick/sunrpc: its wire code
// is its own, so it tests the client rather than agreeing with it.
//
// # Concurrency
//
// Each accepted connection is served by one goroutine, which runs the
// Behaviour too. A Behaviour that streams or trickles ends when the client
// closes the connection (a write fails) or the Server closes; one that
// stops reading ends when the Server closes. Close (run by tb.Cleanup)
// closes the listener and every connection and waits for every goroutine.
package hostile

import (
	"bufio"
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

// RPC programs and procedures the honest answers know
// (rpc/rpc-lib/src/protocol-common.h, xdr-common.h).
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
)

// Accept and reject states (RFC 5531).
const (
	Success      = 0
	ProgUnavail  = 1
	ProgMismatch = 2
	ProcUnavail  = 3
	GarbageArgs  = 4
	SystemErr    = 5

	RPCMismatch = 0
	AuthError   = 1
)

// maxCall bounds a call record the server reads: the client's WRITE
// payloads are at most a few MiB.
const maxCall = 64 << 20

// Call is one CALL the server received.
type Call struct {
	Xid, Prog, Vers, Proc uint32
	Args                  []byte
}

func (c *Call) String() string {
	return fmt.Sprintf("xid %d prog %d/%d proc %d", c.Xid, c.Prog, c.Vers, c.Proc)
}

// Answer returns the honest reply body to a call, or nil to leave it
// unanswered.
type Answer func(*Call) []byte

// Behaviour answers the target call on c, badly. It returns whether the
// connection goes on being served honestly (true) or is closed (false).
type Behaviour func(c *Conn, call *Call) (goOn bool)

// Options configure a Server.
type Options struct {
	// Answer gives the honest replies (Glusterd, Brick).
	Answer Answer
	// Target picks the calls to misbehave on; nil picks none.
	Target func(*Call) bool
	// Misbehave answers the target calls.
	Misbehave Behaviour
	// NeverRead accepts connections and never reads from them.
	NeverRead bool
}

// Server is a hostile SunRPC server on 127.0.0.1.
type Server struct {
	tb   testing.TB
	l    net.Listener
	opts Options
	stop chan struct{}

	mu     sync.Mutex
	conns  map[*Conn]struct{} // GUARDED_BY(mu)
	closed bool               // GUARDED_BY(mu)

	sent       atomic.Int64 // bytes written to clients
	misbehaved atomic.Int32
	wg         sync.WaitGroup
}

// New starts a Server; tb.Cleanup closes it.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("hostile: listen: %v", err)
	}
	s := &Server{tb: tb, l: l, opts: opts, stop: make(chan struct{}), conns: make(map[*Conn]struct{})}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// Port is the listener's port.
func (s *Server) Port() int { return s.l.Addr().(*net.TCPAddr).Port }

// Addr is host:port of the listener.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())) }

// Sent is how many bytes the server has written to its clients.
func (s *Server) Sent() int64 { return s.sent.Load() }

// Misbehaved counts the target calls answered by Misbehave.
func (s *Server) Misbehaved() int { return int(s.misbehaved.Load()) }

// Close stops the server: listener, connections, goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	close(s.stop)
	_ = s.l.Close()
	for _, c := range conns {
		_ = c.nc.Close()
	}
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.l.Accept()
		if err != nil {
			return
		}
		c := &Conn{s: s, nc: nc, br: bufio.NewReader(nc)}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// Conn is one accepted connection.
type Conn struct {
	s   *Server
	nc  net.Conn
	br  *bufio.Reader
	xid uint32 // of the last callback sent; only the serving goroutine uses it
}

func (c *Conn) serve() {
	defer c.s.wg.Done()
	defer func() {
		_ = c.nc.Close()
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	}()
	if c.s.opts.NeverRead {
		<-c.s.stop
		return
	}
	for {
		call, err := c.Next()
		if err != nil {
			return
		}
		if c.s.opts.Target != nil && c.s.opts.Target(call) {
			c.s.misbehaved.Add(1)
			if !c.s.opts.Misbehave(c, call) {
				return
			}
			continue
		}
		if body := c.s.opts.Answer(call); body != nil {
			if c.Reply(call.Xid, body) != nil {
				return
			}
		}
	}
}

// Next reads the next CALL, skipping anything else the client sends.
func (c *Conn) Next() (*Call, error) {
	for {
		rec, err := readRecord(c.br, maxCall)
		if err != nil {
			return nil, err
		}
		d := xdr.NewDecoder(rec)
		call := &Call{Xid: d.Uint32()}
		if d.Uint32() != 0 { // not a CALL
			continue
		}
		_ = d.Uint32() // rpcvers
		call.Prog, call.Vers, call.Proc = d.Uint32(), d.Uint32(), d.Uint32()
		_ = d.Uint32()
		_ = d.Opaque(400)
		_ = d.Uint32()
		_ = d.Opaque(400)
		if d.Err() != nil {
			return nil, fmt.Errorf("hostile: bad call: %w", d.Err())
		}
		call.Args = d.Remaining()
		return call, nil
	}
}

// Stopped is closed when the server closes.
func (c *Conn) Stopped() <-chan struct{} { return c.s.stop }

// Pause waits d; it returns false if the server closed meanwhile.
func (c *Conn) Pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.s.stop:
		return false
	}
}

// Write writes b as it is.
func (c *Conn) Write(b []byte) error {
	n, err := c.nc.Write(b)
	c.s.sent.Add(int64(n))
	return err
}

// Record writes rec as one record (one last fragment).
func (c *Conn) Record(rec []byte) error { return c.Write(Frame(rec)) }

// Reply sends an accepted SUCCESS reply carrying body.
func (c *Conn) Reply(xid uint32, body []byte) error {
	return c.Record(append(ReplyHeader(xid, Success), body...))
}

// ReplyHeader is a reply message up to accept_stat: xid, REPLY,
// MSG_ACCEPTED, an AUTH_NULL verifier, stat.
func ReplyHeader(xid, stat uint32) []byte {
	var b []byte
	for _, v := range []uint32{xid, 1, 0, 0, 0, stat} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// Callback sends a CALL of the callback program, as a brick's upcalls and
// glusterd's FETCHSPEC are.
func (c *Conn) Callback(proc uint32) error {
	c.xid++
	var b []byte
	for _, v := range []uint32{c.xid, 0, 2, ProgCallback, 1, proc, 0, 0, 0, 0} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return c.Record(b)
}

// Silence reads and drops everything the client sends, answering nothing,
// until the connection ends.
func (c *Conn) Silence() {
	_, _ = io.Copy(io.Discard, c.br)
}

// Frame adds one record mark (last fragment) to rec.
func Frame(rec []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...)
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
			return nil, errors.New("hostile: call record too large")
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
