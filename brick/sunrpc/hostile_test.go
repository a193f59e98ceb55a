package sunrpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestReadRecordAllocFollowsBytes: a record mark that promises 60 MiB and
// sends 10 bytes must not cost 60 MiB: the room grows with what arrives.
func TestReadRecordAllocFollowsBytes(t *testing.T) {
	for name, mark := range map[string]uint32{
		"last fragment":     60<<20 | 1<<31,
		"non-last fragment": 60 << 20,
	} {
		t.Run(name, func(t *testing.T) {
			in := binary.BigEndian.AppendUint32(nil, mark)
			in = append(in, make([]byte, 10)...)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := ReadRecord(bytes.NewReader(in), DefaultMaxRecord)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want unexpected EOF", err)
			}
			if d := after.TotalAlloc - before.TotalAlloc; d > eagerAlloc+1<<20 {
				t.Fatalf("a 60 MiB mark with 10 bytes behind it allocated %d bytes", d)
			}
		})
	}
	// Growing as bytes arrive still reads big records whole, in any split.
	big := make([]byte, 2*eagerAlloc+12345)
	for i := 0; i < len(big); i += 4093 {
		big[i] = byte(i)
	}
	for _, in := range [][]byte{frame(big), fragments(big, 5, eagerAlloc+1, 0)} {
		got, err := ReadRecord(bytes.NewReader(in), DefaultMaxRecord)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("record of %d bytes: got %d bytes, %v", len(big), len(got), err)
		}
	}
}

// TestReadRecordManyFragmentsLinear: a record in many fragments is grown
// geometrically, not copied whole once a fragment.
func TestReadRecordManyFragmentsLinear(t *testing.T) {
	const size, frag = 16 << 20, 64 << 10
	rec := make([]byte, size)
	sizes := make([]int, size/frag-1)
	for i := range sizes {
		sizes[i] = frag
	}
	in := fragments(rec, sizes...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := ReadRecord(bytes.NewReader(in), DefaultMaxRecord)
	runtime.ReadMemStats(&after)
	if err != nil || len(got) != size {
		t.Fatalf("got %d bytes, %v", len(got), err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 3*size {
		t.Fatalf("a %d-byte record in %d fragments allocated %d bytes", size, size/frag, d)
	}
}

// countingReader serves in, counting what was read.
type countingReader struct {
	r *bytes.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestReadRecordFragmentLimit: empty non-last fragments without end are
// cut off at MaxFragments, not read as long as the peer sends them (with
// no growth of the record, no byte limit would ever stop them).
func TestReadRecordFragmentLimit(t *testing.T) {
	r := &countingReader{r: bytes.NewReader(make([]byte, 4*100*MaxFragments))}
	_, err := ReadRecord(r, DefaultMaxRecord)
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "fragments") {
		t.Fatalf("endless empty fragments: err = %v after %d bytes, want the fragment limit", err, r.n)
	}
	if r.n > 4*MaxFragments {
		t.Fatalf("read %d bytes of empty fragments before refusing them", r.n)
	}
	// MaxFragments fragments are fine.
	rec := bytes.Repeat([]byte{1}, MaxFragments)
	sizes := make([]int, MaxFragments-1)
	for i := range sizes {
		sizes[i] = 1
	}
	if got, err := ReadRecord(bytes.NewReader(fragments(rec, sizes...)), DefaultMaxRecord); err != nil || !bytes.Equal(got, rec) {
		t.Fatalf("%d fragments: %v", MaxFragments, err)
	}
}

// TestStrayReplyDropsConnection: a reply to an xid never asked, or a second
// reply to one answered already, breaks the connection (as rpc-clnt does),
// with an error that says so; a late reply to a call whose caller gave up
// does not.
func TestStrayReplyDropsConnection(t *testing.T) {
	t.Run("never asked", func(t *testing.T) {
		c, p := newPair(t, 1, Options{})
		done := make(chan error, 1)
		go func() {
			_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
			done <- err
		}()
		p.next()
		p.reply(9999, nil)
		err := waitErr(t, done)
		if !errors.Is(err, ErrDisconnected) || !strings.Contains(err.Error(), "reply to xid 9999, which no call is waiting for") {
			t.Fatalf("pending call got %v", err)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		c, p := newPair(t, 1, Options{})
		done := make(chan error, 1)
		go func() {
			_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
			done <- err
		}()
		x := xidOf(p.next())
		p.reply(x, nil)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		p.reply(x, nil)
		select {
		case <-c.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a second reply to one call was taken quietly")
		}
		if err := c.Err(); !strings.Contains(err.Error(), "no call is waiting for (never sent, or answered already)") {
			t.Fatalf("Err = %v", err)
		}
	})
	t.Run("late", func(t *testing.T) {
		c, p := newPair(t, 1, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, 1, 1, 1, Cred{}, nil, nil)
			done <- err
		}()
		x := xidOf(p.next())
		cancel()
		<-done
		p.reply(x, nil)
		go func() {
			_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
			done <- err
		}()
		y := xidOf(p.next())
		if y == x {
			t.Fatalf("xid %d of an abandoned call reused", x)
		}
		p.reply(y, nil)
		if err := <-done; err != nil {
			t.Fatalf("after a late reply: %v", err)
		}
	})
}

// waitErr waits for a call's result, failing the test on a hang.
func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("the call still waits after 5 s")
		return nil
	}
}

// TestAbandonedBounded: the xids of abandoned calls are remembered up to
// MaxAbandoned, the oldest forgotten first.
func TestAbandonedBounded(t *testing.T) {
	var a abandoned
	for x := uint32(1); x <= MaxAbandoned+10; x++ {
		a.add(x)
	}
	if len(a.set) != MaxAbandoned || len(a.order) > 2*MaxAbandoned {
		t.Fatalf("%d in the set, %d in the order", len(a.set), len(a.order))
	}
	if a.has(10) || !a.has(11) || !a.has(MaxAbandoned+10) {
		t.Fatal("not the newest kept")
	}
	if !a.remove(11) || a.remove(11) || a.has(11) {
		t.Fatal("remove")
	}
}

// TestSilenceIgnoresCallbacks: callbacks are not replies: a peer that
// streams them while our call waits is silent to the watchdog (it kept a
// hung brick looking alive for ever).
func TestSilenceIgnoresCallbacks(t *testing.T) {
	got := make(chan struct{}, 100)
	c, p := newPair(t, 1, Options{OnCallback: func(Call) { got <- struct{}{} }})
	go func() { _, _ = c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil) }()
	p.next()
	start := time.Now()
	for i := 0; i < 5; i++ {
		p.write(callback(uint32(i+1), 5))
		<-got
	}
	waited := time.Since(start)
	if s := c.Silence(time.Now()); s < waited {
		t.Fatalf("silence %v after %v of callbacks only: callbacks counted as replies", s, waited)
	}
}

// TestUnknownStatesDropConnection: accept_stat and reject_stat values that
// RFC 5531 does not define are malformed replies, not call errors.
func TestUnknownStatesDropConnection(t *testing.T) {
	for name, in := range map[string]string{
		"accept_stat 6":  "00000007 00000001 00000000 00000000 00000000 00000006",
		"reject_stat 2":  "00000007 00000001 00000001 00000002 00000000",
		"accept_stat -1": "00000007 00000001 00000000 00000000 00000000 ffffffff",
	} {
		if _, err := ParseMessage(unhex(t, in)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestAbortReason: Abort's reason is in the error of every pending call.
func TestAbortReason(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
		done <- err
	}()
	p.next()
	c.Abort(errors.New("brick stopped answering"))
	err := <-done
	if !errors.Is(err, ErrDisconnected) || err.Error() != "connection lost: brick stopped answering" {
		t.Fatalf("got %v", err)
	}
}

// TestCallbackDropLogBounded: a flood of callbacks the handler cannot take
// logs a few lines, not one per callback.
func TestCallbackDropLogBounded(t *testing.T) {
	block := make(chan struct{})
	core, logs := observer.New(zap.WarnLevel)
	c, p := newPair(t, 1, Options{Log: zap.New(core), OnCallback: func(Call) { <-block }})
	defer close(block)
	var flood []byte
	for i := 0; i < 1000; i++ {
		flood = append(flood, callback(uint32(i+1), 5)...)
	}
	p.write(flood)
	// A reply after the flood: once it arrives, every callback was seen.
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil)
		done <- err
	}()
	p.reply(xidOf(p.next()), nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	n := c.DroppedCallbacks()
	if n < 900 {
		t.Fatalf("%d callbacks dropped", n)
	}
	if k := logs.Len(); k > 11 {
		t.Fatalf("%d log lines for %d dropped callbacks", k, n)
	}
}

// TestSilenceAtBreak: when a connection breaks with calls waiting, how
// long they had waited unanswered is kept (the stall a hung brick cost);
// a connection that breaks with nothing waiting stalled nothing.
func TestSilenceAtBreak(t *testing.T) {
	c, p := newPair(t, 1, Options{})
	go func() { _, _ = c.Call(context.Background(), 1, 1, 1, Cred{}, nil, nil) }()
	p.next()
	start := time.Now()
	time.Sleep(50 * time.Millisecond)
	c.Abort(errors.New("ping timeout"))
	if s := c.SilenceAtBreak(); s < 50*time.Millisecond || s > time.Since(start)+time.Second {
		t.Errorf("silence at break %v after 50ms with a call waiting", s)
	}
	idle, _ := newPair(t, 1, Options{})
	idle.Abort(errors.New("ping timeout"))
	if s := idle.SilenceAtBreak(); s != 0 {
		t.Errorf("silence at break %v with nothing waiting", s)
	}
}
