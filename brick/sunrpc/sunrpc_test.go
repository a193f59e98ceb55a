package sunrpc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"github.com/brickfs/brickfs/brick/internal/golden"
	"io"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/xdr"
)

func record(tb testing.TB, name string) []byte { return golden.Record(tb, name) }

func unhex(tb testing.TB, s string) []byte { return golden.Unhex(tb, s) }

// frame adds one record mark (last fragment) to rec.
func frame(rec []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(rec))|1<<31), rec...)
}

// TestCredV3ReferenceExample is the byte example of reference §2.4
// (a native CREATE credential, frame 215).
func TestCredV3ReferenceExample(t *testing.T) {
	want := unhex(t, `00003c3d 00000000 00000000 0000001f 17778fad
		00000000 6b06d734 00000000 00000004 3d3c0000`)
	c := CredV3(15421, 0, 0, nil, []byte{0x3d, 0x3c, 0, 0}, 0x1f, time.Unix(0x6b06d734, 0x17778fad))
	if c.Flavor != 390040 {
		t.Fatalf("flavor %d", c.Flavor)
	}
	if !bytes.Equal(c.Body, want) {
		t.Fatalf("cred body\n got %x\nwant %x", c.Body, want)
	}
	if len(c.Body) != 40 {
		t.Fatalf("body of %d bytes, reference says 40", len(c.Body))
	}
	// On the wire: flavor 00 05 f3 98, length 00 00 00 28.
	e := xdr.NewEncoder(0)
	e.Uint32(c.Flavor)
	e.Opaque(c.Body)
	if !bytes.HasPrefix(e.B, unhex(t, "0005f398 00000028 00003c3d")) {
		t.Fatalf("cred on the wire starts %x", e.B[:12])
	}
	// A zero time sends zero ctime fields.
	z := CredV3(1, 2, 3, nil, nil, 0, time.Time{})
	if !bytes.Equal(z.Body[16:28], make([]byte, 12)) {
		t.Fatalf("zero ctime encodes as %x", z.Body[16:28])
	}
}

// TestCredV2Native compares our internal-frame v2 credential with the one the
// native client sent on GETSPEC.
func TestCredV2Native(t *testing.T) {
	rec := record(t, "glusterd-getspec-call.hex")
	d := xdr.NewDecoder(rec[24:])
	flavor, body := d.Uint32(), d.Opaque(400)
	c := CredV2(0, 0, 0, nil, []byte{0, 0, 0, 0})
	if flavor != c.Flavor || !bytes.Equal(body, c.Body) {
		t.Fatalf("native %d %x, ours %d %x", flavor, body, c.Flavor, c.Body)
	}
	if len(c.Body) != 24 {
		t.Fatalf("v2 body %d bytes, reference says 24", len(c.Body))
	}
}

func TestCredGroupsFit(t *testing.T) {
	groups := make([]uint32, 200)
	for i := range groups {
		groups[i] = uint32(i)
	}
	owner := make([]byte, 8)
	v2 := CredV2(1, 2, 3, groups, owner)
	v3 := CredV3(1, 2, 3, groups, owner, 0, time.Now())
	for _, c := range []Cred{v2, v3} {
		if len(c.Body) > MaxAuthBytes {
			t.Errorf("flavor %d: %d bytes > %d", c.Flavor, len(c.Body), MaxAuthBytes)
		}
	}
	// v2: ngroups + ceil(owner/4) <= 95; v3: <= 91 (reference §2.4).
	if n := binary.BigEndian.Uint32(v2.Body[12:]); n != 93 {
		t.Errorf("v2 kept %d groups, want 93", n)
	}
	if n := binary.BigEndian.Uint32(v3.Body[28:]); n != 89 {
		t.Errorf("v3 kept %d groups, want 89", n)
	}
	// The lk_owner is never cut.
	if !bytes.HasSuffix(v3.Body, append([]byte{0, 0, 0, 8}, owner...)) {
		t.Error("lk_owner damaged")
	}
}

func TestParseMessageGolden(t *testing.T) {
	// A call: GETSPEC from the native client.
	m, err := ParseMessage(record(t, "glusterd-getspec-call.hex"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != MsgCall || m.Xid != 2 || m.Call.Prog != 14398633 || m.Call.Vers != 2 || m.Call.Proc != 2 {
		t.Fatalf("call = %+v", m)
	}
	if len(m.Call.Args) != 140-64 {
		t.Fatalf("args of %d bytes", len(m.Call.Args))
	}
	// Replies: the body is what follows the 24-byte header.
	for _, name := range []string{"glusterd-dump-reply.hex", "fop-lookup-x9-reply.hex", "fop-read-x27-reply.hex",
		"fop-readdirp-x39-reply.hex", "setvolume-reply.hex"} {
		rec := record(t, name)
		m, err := ParseMessage(rec)
		if err != nil || m.Err != nil || m.Type != MsgReply {
			t.Fatalf("%s: %v %v", name, err, m.Err)
		}
		if !bytes.Equal(m.Body, rec[24:]) {
			t.Fatalf("%s: body starts at %d", name, len(rec)-len(m.Body))
		}
	}
	// Calls with v3 creds and 8-byte owners.
	for _, name := range []string{"fop-lookup-x9-call.hex", "fop-create-x19-call.hex", "fop2-lk-x30-call.hex"} {
		rec := record(t, name)
		m, err := ParseMessage(rec)
		if err != nil || m.Call.Prog != 1298437 || m.Call.Vers != 400 {
			t.Fatalf("%s: %v %+v", name, err, m.Call)
		}
		hdr := len(rec) - len(m.Call.Args)
		if hdr != 80 && hdr != 84 {
			t.Fatalf("%s: header %d bytes, reference §2.2 says 80 or 84", name, hdr)
		}
	}
}

func TestParseMessageErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
		rpcErr  *RPCError
	}{
		{"prog unavail", "00000007 00000001 00000000 00000000 00000000 00000001", false, &RPCError{Stat: ProgUnavail}},
		{"prog mismatch", "00000007 00000001 00000000 00000000 00000000 00000002 00000000 00000000", false, &RPCError{Stat: ProgMismatch}},
		{"garbage args with junk", "00000007 00000001 00000000 00000000 00000000 00000004 00000000", false, &RPCError{Stat: GarbageArgs}},
		{"denied auth", "00000007 00000001 00000001 00000001 00000002", false, &RPCError{Denied: true, Stat: 1, Auth: 2}},
		{"denied mismatch", "00000007 00000001 00000001 00000000 00000002 00000002", false, &RPCError{Denied: true, Stat: 0}},
		{"empty", "", true, nil},
		{"short xid", "000000", true, nil},
		{"type 2", "00000007 00000002", true, nil},
		{"reply state 2", "00000007 00000001 00000002", true, nil},
		{"truncated accepted", "00000007 00000001 00000000 00000000", true, nil},
		{"verf too long", "00000007 00000001 00000000 00000000 00000400", true, nil},
		{"denied truncated", "00000007 00000001 00000001 00000001", true, nil},
		{"call rpcvers 3", "00000007 00000000 00000003 00000001 00000001 00000001 00000000 00000000 00000000 00000000", true, nil},
		{"call truncated", "00000007 00000000 00000002 00000001", true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMessage(unhex(t, tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.rpcErr != nil {
				var re *RPCError
				if !errors.As(m.Err, &re) || *re != *tc.rpcErr {
					t.Fatalf("m.Err = %#v, want %#v", m.Err, tc.rpcErr)
				}
				if m.Body != nil {
					t.Fatal("error reply has a body")
				}
				if re.Error() == "" {
					t.Fatal("empty message")
				}
			}
		})
	}
}

// fragments frames rec as fragments of the given sizes (the rest goes last).
func fragments(rec []byte, sizes ...int) []byte {
	var out []byte
	for _, n := range sizes {
		out = binary.BigEndian.AppendUint32(out, uint32(n))
		out = append(out, rec[:n]...)
		rec = rec[n:]
	}
	return append(out, frame(rec)...)
}

func TestReadRecord(t *testing.T) {
	rec := record(t, "fop-lookup-x9-reply.hex")
	tests := []struct {
		name    string
		in      []byte
		max     int
		want    []byte
		wantErr error
	}{
		{"one fragment", frame(rec), 1 << 20, rec, nil},
		{"three fragments", fragments(rec, 10, 100), 1 << 20, rec, nil},
		{"zero-length fragments", fragments(rec, 0, 0, 24, 0), 1 << 20, rec, nil},
		{"empty record", frame(nil), 16, []byte{}, nil},
		{"exactly max", frame(rec), len(rec), rec, nil},
		{"over max", frame(rec), len(rec) - 1, nil, errors.New("")},
		{"over max across fragments", fragments(rec, 300), 350, nil, errors.New("")},
		{"eof at start", nil, 16, nil, io.EOF},
		{"eof in mark", []byte{0x80, 0}, 16, nil, io.ErrUnexpectedEOF},
		{"eof in body", frame(rec)[:50], 1 << 20, nil, io.ErrUnexpectedEOF},
		{"eof between fragments", fragments(rec, 10)[:14], 1 << 20, nil, io.ErrUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadRecord(bytes.NewReader(tc.in), tc.max)
			if tc.wantErr == nil {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("got %d bytes, err %v", len(got), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, got %d bytes", len(got))
			}
			if tc.wantErr.Error() != "" && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
	// Two records back to back.
	r := bytes.NewReader(append(frame(rec), fragments(rec, 7)...))
	for i := 0; i < 2; i++ {
		if got, err := ReadRecord(r, 1<<20); err != nil || !bytes.Equal(got, rec) {
			t.Fatalf("record %d: %v", i, err)
		}
	}
}

// endless yields a record mark announcing a 2 GiB record, then zeros forever.
type endless struct{ sent bool }

func (e *endless) Read(p []byte) (int, error) {
	if !e.sent {
		e.sent = true
		return copy(p, []byte{0xff, 0xff, 0xff, 0xff}), nil
	}
	clear(p)
	return len(p), nil
}

// TestReadRecordOversizeNoAlloc: a record over the bound is refused from its
// mark, before anything is allocated for it.
func TestReadRecordOversizeNoAlloc(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := ReadRecord(&endless{}, DefaultMaxRecord)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("2 GiB record accepted")
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Fatalf("refusing the record allocated %d bytes", d)
	}
	// Many fragments each under the bound but over it together.
	var in []byte
	for i := 0; i < 5; i++ {
		in = binary.BigEndian.AppendUint32(in, 1000)
		in = append(in, make([]byte, 1000)...)
	}
	if _, err := ReadRecord(bytes.NewReader(in), 4000); err == nil {
		t.Fatal("record of 5000 bytes in fragments accepted under a 4000 bound")
	}
}

// peer is the server end of a Conn under test.
type peer struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
	mu sync.Mutex
}

func newPair(t testing.TB, firstXid uint32, opts Options) (*Conn, *peer) {
	t.Helper()
	a, b := net.Pipe()
	if opts.Log == nil {
		opts.Log = zaptest.NewLogger(t)
	}
	c := NewConn(a, firstXid, opts)
	t.Cleanup(func() { _ = c.Close(); _ = b.Close() })
	return c, &peer{t: t, nc: b, br: bufio.NewReader(b)}
}

// next reads the next call record.
func (p *peer) next() []byte {
	p.t.Helper()
	rec, err := ReadRecord(p.br, 1<<20)
	if err != nil {
		p.t.Errorf("peer read: %v", err)
		return nil
	}
	return rec
}

func (p *peer) write(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Errorf("peer write: %v", err)
	}
}

// reply sends an accepted SUCCESS reply to xid.
func (p *peer) reply(xid uint32, body []byte) {
	e := xdr.NewEncoder(24 + len(body))
	e.Uint32(xid)
	e.Uint32(MsgReply)
	e.Uint32(0)
	e.Uint32(0)
	e.Uint32(0)
	e.Uint32(Success)
	e.Raw(body)
	p.write(frame(e.B))
}

func callback(xid, proc uint32) []byte {
	e := xdr.NewEncoder(40)
	for _, v := range []uint32{xid, MsgCall, 2, 52743234, 1, proc, 0, 0, 0, 0} {
		e.Uint32(v)
	}
	return frame(e.B)
}

// TestCallBytesNative: a DUMP call through Conn is byte-identical to the
// native client's, record mark included.
func TestCallBytesNative(t *testing.T) {
	c, p := newPair(t, 5, Options{})
	done := make(chan error, 1)
	go func() {
		e := xdr.NewEncoder(8)
		e.Uint64(0xcaed)
		_, err := c.Call(context.Background(), 123451501, 1, 1, CredV2(0, 0, 0, nil, []byte{0, 0, 0, 0}), e.B, nil)
		done <- err
	}()
	var mark [4]byte
	if _, err := io.ReadFull(p.br, mark[:]); err != nil {
		t.Fatal(err)
	}
	want := record(t, "brick-dump-call.hex") // the native brick DUMP, xid 5
	if got := binary.BigEndian.Uint32(mark[:]); got != uint32(len(want))|1<<31 {
		t.Fatalf("record mark %08x, want %08x", got, uint32(len(want))|1<<31)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(p.br, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("call\n got %x\nwant %x", got, want)
	}
	p.reply(5, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func xidOf(rec []byte) uint32 { return binary.BigEndian.Uint32(rec) }

func TestOutOfOrderAndCallbacks(t *testing.T) {
	var mu sync.Mutex
	var got []uint32
	c, p := newPair(t, 100, Options{OnCallback: func(call Call) {
		mu.Lock()
		got = append(got, call.Proc)
		mu.Unlock()
	}})
	const n = 20
	type res struct {
		i    int
		body []byte
		err  error
	}
	out := make(chan res, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			b, err := c.Call(context.Background(), 1, 1, uint32(i), Cred{}, []byte{byte(i), 0, 0, 0}, nil)
			out <- res{i, b, err}
		}(i)
	}
	xids := map[uint32]byte{}
	for i := 0; i < n; i++ {
		rec := p.next()
		m, err := ParseMessage(rec)
		if err != nil {
			t.Fatal(err)
		}
		xids[m.Xid] = m.Call.Args[0]
	}
	if len(xids) != n {
		t.Fatalf("%d distinct xids for %d calls", len(xids), n)
	}
	// Answer in reverse xid order, callbacks in between. (A reply to an
	// xid never asked breaks the connection: TestStrayReplyDropsConnection.)
	for x := uint32(100 + n - 1); x >= 100; x-- {
		if x%5 == 0 {
			p.write(callback(x, 10))
		}
		p.reply(x, []byte{xids[x]})
	}
	for i := 0; i < n; i++ {
		r := <-out
		if r.err != nil || len(r.body) != 1 || int(r.body[0]) != r.i {
			t.Fatalf("call %d got %x %v", r.i, r.body, r.err)
		}
	}
	if c.Pending() != 0 {
		t.Fatalf("%d pending", c.Pending())
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		k := len(got)
		mu.Unlock()
		if k == n/5 || time.Now().After(deadline) {
			if k != n/5 {
				t.Fatalf("%d callbacks delivered, want %d", k, n/5)
			}
			break
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCallbackFloodDoesNotStall: a handler that blocks makes callbacks drop,
// never replies.
func TestCallbackFloodDoesNotStall(t *testing.T) {
	block := make(chan struct{})
	c, p := newPair(t, 1, Options{OnCallback: func(Call) { <-block }})
	defer close(block)
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
		done <- err
	}()
	x := xidOf(p.next())
	var flood []byte
	for i := 0; i < 200; i++ {
		flood = append(flood, callback(uint32(i+1), 5)...)
	}
	p.write(flood)
	p.reply(x, nil)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("reply stalled behind callbacks")
	}
	if c.DroppedCallbacks() == 0 {
		t.Fatal("no callback was dropped although the handler blocks")
	}
}

func TestDisconnectFailsPending(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	const n = 10
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		p.next()
	}
	_ = p.nc.Close()
	for i := 0; i < n; i++ {
		if err := <-errs; !errors.Is(err, ErrDisconnected) {
			t.Fatalf("pending call got %v, want ErrDisconnected", err)
		}
	}
	<-c.Done()
	if !errors.Is(c.Err(), ErrDisconnected) {
		t.Fatalf("Err = %v", c.Err())
	}
	if _, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil); !errors.Is(err, ErrDisconnected) {
		t.Fatalf("call after disconnect: %v", err)
	}
}

func TestBadRecordDropsConnection(t *testing.T) {
	for name, raw := range map[string][]byte{
		"oversize":       {0xff, 0xff, 0xff, 0xff},
		"bad msg type":   frame(unhex(t, "00000001 00000007")),
		"truncated call": frame(unhex(t, "00000001 00000000 00000002")),
	} {
		t.Run(name, func(t *testing.T) {
			c, p := newPair(t, 1, Options{MaxRecord: 1 << 20})
			done := make(chan error, 1)
			go func() {
				_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
				done <- err
			}()
			p.next()
			p.write(raw)
			select {
			case err := <-done:
				if !errors.Is(err, ErrDisconnected) {
					t.Fatalf("got %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("connection not dropped")
			}
		})
	}
}

func TestContextCancel(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, 1, 1, 1, Cred{}, nil, nil)
		done <- err
	}()
	x := xidOf(p.next())
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if c.Pending() != 0 {
		t.Fatal("cancelled call still pending")
	}
	p.reply(x, nil) // a late reply is harmless
	go func() {
		_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
		done <- err
	}()
	p.reply(xidOf(p.next()), nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestXidWrapSkipsBusy: the allocator never hands out 0 or an xid in use.
func TestXidWrapSkipsBusy(t *testing.T) {
	c, p := newPair(t, 0xfffffffe, Options{})
	errs := make(chan error, 4)
	call := func() {
		_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
		errs <- err
	}
	go call()
	first := xidOf(p.next()) // 0xfffffffe, left pending
	go call()
	second := xidOf(p.next())
	go call()
	third := xidOf(p.next())
	if first != 0xfffffffe || second != 0xffffffff || third != 1 {
		t.Fatalf("xids %x %x %x", first, second, third)
	}
	p.reply(second, nil)
	p.reply(third, nil)
	<-errs
	<-errs
	// Walk the counter round once more: 0xfffffffe is still pending and
	// must be skipped.
	c.mu.Lock()
	c.nextXid = 0xfffffffe
	c.mu.Unlock()
	go call()
	if x := xidOf(p.next()); x != 0xffffffff {
		t.Fatalf("busy xid reused or wrong: %x", x)
	}
}

func TestWriteWithData(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	data := bytes.Repeat([]byte{7}, 4097)
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), 1298437, 400, 13, CredV3(1, 0, 0, nil, nil, 3, time.Now()), []byte{1, 2, 3, 4}, data)
		done <- err
	}()
	rec := p.next()
	m, err := ParseMessage(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(m.Call.Args, append([]byte{1, 2, 3, 4}, data...)) {
		t.Fatalf("args+data of %d bytes", len(m.Call.Args))
	}
	p.reply(m.Xid, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, n := range golden.Names(f, "*.hex") {
		f.Add(record(f, n))
	}
	f.Add(unhex(f, "00000007 00000001 00000001 00000001 00000002"))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseMessage(in)
		if err != nil {
			return
		}
		switch m.Type {
		case MsgReply:
			if (m.Err == nil) == (m.Body == nil) && len(m.Body) > 0 {
				t.Fatal("reply with both body and error")
			}
			if m.Body != nil && len(m.Body) > len(in)-24 {
				t.Fatalf("body of %d bytes from %d", len(m.Body), len(in))
			}
		case MsgCall:
			if len(m.Call.Args) > len(in)-40 {
				t.Fatalf("args of %d bytes from %d", len(m.Call.Args), len(in))
			}
		default:
			t.Fatalf("type %d accepted", m.Type)
		}
	})
}

func FuzzReadRecord(f *testing.F) {
	for _, n := range golden.Names(f, "*.hex") {
		rec := record(f, n)
		f.Add(frame(rec))
		f.Add(fragments(rec, 4, 0, 8))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 4096
		r := bytes.NewReader(in)
		for {
			rec, err := ReadRecord(r, max)
			if err != nil {
				return
			}
			if len(rec) > max {
				t.Fatalf("record of %d bytes over %d", len(rec), max)
			}
		}
	})
}

// A call given up long ago is still known when its reply comes, however
// many calls were given up and answered since: only those still waited
// for count against MaxAbandoned.
func TestAbandonedKeepsOldUnanswered(t *testing.T) {
	var a abandoned
	a.add(1)
	for x := uint32(2); x < 3*MaxAbandoned; x++ {
		a.add(x)
		if !a.remove(x) {
			t.Fatalf("xid %d just given up is not known", x)
		}
	}
	if !a.remove(1) {
		t.Fatal("the reply to xid 1, given up first and never answered, would drop the connection")
	}
	// Without answers, the oldest go first.
	for x := uint32(10); x < 10+MaxAbandoned+5; x++ {
		a.add(x)
	}
	if a.has(10) || !a.has(10+MaxAbandoned+4) || len(a.set) != MaxAbandoned || len(a.order) > 2*MaxAbandoned {
		t.Errorf("set %d, order %d, has oldest %v", len(a.set), len(a.order), a.has(10))
	}
}
