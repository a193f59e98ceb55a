package sunrpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/xdr"
)

// tailHead is a result body as intoReply builds it: the data's length in
// its first word, padded to headLen bytes.
const headLen = 40

// tailWord is an Into's Tail for intoReply's bodies.
func tailWord(body []byte) (int, bool) {
	n := int32(binary.BigEndian.Uint32(body))
	return int(n), n >= 0
}

// intoReply is the framed reply to xid whose body is a head of headLen
// bytes saying how long data is, then data.
func intoReply(xid uint32, data []byte) []byte {
	e := xdr.NewEncoder(24 + headLen + len(data))
	for _, v := range []uint32{xid, MsgReply, 0, 0, 0, Success} {
		e.Uint32(v)
	}
	e.Int32(int32(len(data)))
	e.Raw(bytes.Repeat([]byte{'h'}, headLen-4))
	e.Raw(data)
	return frame(e.B)
}

type intoResult struct {
	body []byte
	n    int
	buf  *Buf
	err  error
}

func callInto(ctx context.Context, c *Conn, in *Into) <-chan intoResult {
	done := make(chan intoResult, 1)
	go func() {
		body, n, buf, err := c.CallInto(ctx, 1, 1, 1, CredV2(0, 0, 0, nil, nil), nil, nil, in)
		done <- intoResult{body, n, buf, err}
	}()
	return done
}

// servesOn checks that c still answers: a call's reply of size bytes of
// data goes to its Dest.
func servesOn(t *testing.T, c *Conn, p *peer, size int) {
	t.Helper()
	next := make([]byte, size)
	done := callInto(context.Background(), c, &Into{Dest: next, Tail: tailWord})
	want := bytes.Repeat([]byte{'b'}, size)
	p.write(intoReply(xidOf(p.next()), want))
	if r := <-done; r.err != nil || r.n != size || !bytes.Equal(next, want) {
		t.Fatalf("the next call: %d bytes to Dest, %v", r.n, r.err)
	}
}

// A large reply's data goes straight to the Into's Dest; the body holds
// the rest of the result. Replies that do not fit, are too small to
// split or that Tail will not split come whole, Dest untouched.
func TestCallIntoDest(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	data := bytes.Repeat([]byte("brickfs!"), 256<<10/8)
	cases := []struct {
		name  string
		data  []byte
		dest  int
		tail  func([]byte) (int, bool)
		split bool
	}{
		{"large", data, 512 << 10, tailWord, true},
		{"exact fit", data, len(data), tailWord, true},
		{"larger than Dest", data, len(data) - 1, tailWord, false},
		{"too small to split", data[:intoMin/2], 512 << 10, tailWord, false},
		{"Tail declines", data, 512 << 10, func([]byte) (int, bool) { return 0, false }, false},
		{"Tail says more than the record", data, 512 << 10, func([]byte) (int, bool) { return len(data) + headLen + 30, true }, false},
		{"Tail says it all", data, 512 << 10, func([]byte) (int, bool) { return len(data) + headLen, true }, false},
		{"head past the limit", data, 512 << 10, func([]byte) (int, bool) { return 100, true }, false},
		{"no Tail", data, 512 << 10, nil, false},
	}
	for _, tc := range cases {
		dest := make([]byte, tc.dest)
		done := callInto(context.Background(), c, &Into{Dest: dest, Tail: tc.tail})
		p.write(intoReply(xidOf(p.next()), tc.data))
		r := <-done
		if r.err != nil {
			t.Fatalf("%s: %v", tc.name, r.err)
		}
		if tc.split {
			if r.n != len(tc.data) || !bytes.Equal(dest[:r.n], tc.data) || len(r.body) != headLen || r.buf != nil {
				t.Errorf("%s: %d bytes to Dest (the data: %v), body of %d, pooled %v; want the data in Dest, a body of %d", tc.name, r.n, bytes.Equal(dest[:max(r.n, 0)], tc.data), len(r.body), r.buf != nil, headLen)
			}
			continue
		}
		if r.n != -1 || len(r.body) != headLen+len(tc.data) || !bytes.Equal(r.body[headLen:], tc.data) {
			t.Errorf("%s: %d bytes to Dest, body of %d; want it whole in the body", tc.name, r.n, len(r.body))
		}
		if !bytes.Equal(dest, make([]byte, len(dest))) {
			t.Errorf("%s: Dest was written", tc.name)
		}
		r.buf.Release()
	}
}

// A caller that gives up while the data is half sent (a brick hung
// mid-reply) gets Dest back at once: nothing sent after it returned lands
// there, and the rest of the record is read and dropped as a late reply,
// the connection serving on. An Into used again never takes data.
func TestCallIntoGiveUpMidData(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const size = 512 << 10
	dest := make([]byte, size)
	in := &Into{Dest: dest, Tail: tailWord}
	ctx, cancel := context.WithCancel(context.Background())
	done := callInto(ctx, c, in)
	rep := intoReply(xidOf(p.next()), bytes.Repeat([]byte{'a'}, size))
	half := len(rep) - size/2
	p.write(rep[:half]) // returns once the reader has it all
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("gave up: %v", r.err)
	}
	if dest[0] != 'a' {
		t.Fatal("the data that came before the caller gave up is not in Dest: the reply was not read into it")
	}
	for i := half; i < len(rep); i++ {
		rep[i] = 'X'
	}
	p.write(rep[half:])
	if i := bytes.IndexByte(dest, 'X'); i >= 0 {
		t.Fatalf("byte %d of Dest was written after the caller gave up", i)
	}
	servesOn(t, c, p, size)
	// in served its call: used again, it comes whole.
	want := bytes.Repeat([]byte{'b'}, size)
	done = callInto(context.Background(), c, in)
	p.write(intoReply(xidOf(p.next()), want))
	if r := <-done; r.err != nil || r.n != -1 || bytes.Contains(dest, []byte{'b'}) {
		t.Fatalf("an Into used twice: %d bytes to Dest, %v", r.n, r.err)
	}
}

// A caller that gave up before any of the reply came: the reply, when it
// comes, is read whole as a late one, Dest untouched, and the connection
// serves on.
func TestCallIntoGiveUpBeforeReply(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const size = 256 << 10
	dest := make([]byte, size)
	ctx, cancel := context.WithCancel(context.Background())
	done := callInto(ctx, c, &Into{Dest: dest, Tail: tailWord})
	x := xidOf(p.next())
	cancel()
	if r := <-done; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("gave up: %v", r.err)
	}
	p.write(intoReply(x, bytes.Repeat([]byte{'X'}, size)))
	servesOn(t, c, p, size)
	if bytes.IndexByte(dest, 'X') >= 0 {
		t.Fatal("a reply that came after its caller gave up was written to Dest")
	}
}

// Closing the connection while a reply's data is half read into Dest (the
// ping timeout dropping a brick hung mid-reply) fails the call at once.
func TestCallIntoCloseMidData(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const size = 512 << 10
	dest := make([]byte, size)
	done := callInto(context.Background(), c, &Into{Dest: dest, Tail: tailWord})
	rep := intoReply(xidOf(p.next()), bytes.Repeat([]byte{'a'}, size))
	p.write(rep[:len(rep)-size/2])
	if dest[0] != 'a' {
		t.Fatal("the first half of the data is not in Dest: the reply was not read into it")
	}
	go func() { _ = c.Close() }()
	if r := <-done; !errors.Is(r.err, ErrDisconnected) || r.n != -1 {
		t.Fatalf("closed mid-data: %d bytes to Dest, %v; want ErrDisconnected", r.n, r.err)
	}
}

// A reply that begins after its caller stopped the Into (the race of a
// caller giving up against the reader) is read whole, Dest untouched.
func TestCallIntoStoppedBeforeClaim(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const size = 256 << 10
	dest := make([]byte, size)
	in := &Into{Dest: dest, Tail: tailWord}
	xid, ch, err := c.register(in)
	if err != nil {
		t.Fatal(err)
	}
	in.stop()
	want := bytes.Repeat([]byte{'a'}, size)
	go p.write(intoReply(xid, want))
	r := <-ch
	if r.err != nil || r.direct != -1 || len(r.body) != headLen+size || !bytes.Equal(r.body[headLen:], want) {
		t.Fatalf("reply to a stopped Into: %d bytes to Dest, body of %d, %v; want it whole", r.direct, len(r.body), r.err)
	}
	if bytes.IndexByte(dest, 'a') >= 0 {
		t.Fatal("a stopped Into's Dest was written")
	}
	r.buf.Release()
}

// resetConn is a connection whose peer sends some bytes and then resets
// it: reads after the reset say EOF, as Linux's do.
type resetConn struct {
	net.Conn
	data  []byte
	reset bool
}

func (r *resetConn) Read(b []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(b, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	if !r.reset {
		r.reset = true
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return 0, io.EOF
}

// A connection reset between records, or in the first bytes of one, is
// the connection's error, not a clean close by the peer: the error a
// look at the next record meets is not read again as EOF.
func TestResetIsNotEOF(t *testing.T) {
	big := intoReply(1, make([]byte, 64<<10))
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"between records", nil},
		{"in a large record's first bytes", big[:100]},
	} {
		a, b := net.Pipe()
		t.Cleanup(func() { _ = b.Close() })
		c := NewConn(&resetConn{Conn: a, data: tc.data}, 1, Options{Log: zaptest.NewLogger(t)})
		<-c.Done()
		err := c.Err()
		if errors.Is(err, ErrPeerClosed) || !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "connection reset") {
			t.Errorf("%s: the connection ended with %v; want the reset", tc.name, err)
		}
		_ = c.Close()
	}
}

// A connection that breaks mid-data fails the call; Dest is the caller's
// again when it returns.
func TestCallIntoBreakMidData(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const size = 256 << 10
	dest := make([]byte, size)
	done := callInto(context.Background(), c, &Into{Dest: dest, Tail: tailWord})
	rep := intoReply(xidOf(p.next()), bytes.Repeat([]byte{'a'}, size))
	p.write(rep[:len(rep)-1000])
	_ = p.nc.Close()
	r := <-done
	if !errors.Is(r.err, ErrDisconnected) || r.n != -1 {
		t.Fatalf("a reply cut mid-data: %d bytes to Dest, %v; want ErrDisconnected", r.n, r.err)
	}
}

// FuzzReadReply: whatever a peer sends, reading it for a call waiting
// with an Into neither panics nor hangs, and a reply split between the
// record and Dest accounts for every byte the record mark announced.
func FuzzReadReply(f *testing.F) {
	f.Add(intoReply(7, bytes.Repeat([]byte{'d'}, 20<<10)), uint32(30<<10))
	f.Add(intoReply(7, bytes.Repeat([]byte{'d'}, 20<<10))[:600], uint32(30<<10))
	f.Add(intoReply(8, bytes.Repeat([]byte{'d'}, 20<<10)), uint32(1))
	f.Fuzz(func(t *testing.T, stream []byte, destLen uint32) {
		dest := make([]byte, destLen%(128<<10))
		in := &Into{Dest: dest, Tail: tailWord}
		c := &Conn{opts: Options{MaxRecord: 1 << 20}, pending: map[uint32]waiter{7: {ch: make(chan reply, 1), into: in}}}
		br := bufio.NewReaderSize(bytes.NewReader(stream), 64<<10)
		rec, buf, direct, err := c.readReply(br)
		if err != nil {
			return
		}
		buf.Release()
		if direct >= 0 {
			if direct > len(dest) || len(rec) < 24+IntoPeek || binary.BigEndian.Uint32(rec) != 7 {
				t.Fatalf("split reply: %d bytes to Dest of %d, %d in the record", direct, len(dest), len(rec))
			}
			if got := int(binary.BigEndian.Uint32(stream) &^ (1 << 31)); got != len(rec)+direct {
				t.Fatalf("the record announced %d bytes, read %d and %d", got, len(rec), direct)
			}
		} else if want := int(binary.BigEndian.Uint32(stream) &^ (1 << 31)); binary.BigEndian.Uint32(stream)&(1<<31) != 0 && len(rec) != want {
			t.Fatalf("a whole record of %d bytes announced, %d read", want, len(rec))
		}
	})
}
