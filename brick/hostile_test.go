package brick

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/internal/hostile"
)

// The timing of the hostile scenarios: short, so that each one that must
// wait for the watchdog takes well under a second.
const (
	hostilePingInterval = 50 * time.Millisecond
	hostilePingTimeout  = 500 * time.Millisecond
	hostileDialTimeout  = 500 * time.Millisecond
	// slack is what a loaded 2-core machine under -race may add to a
	// bound before a call counts as hung.
	slack = 3 * time.Second
	// smallAlloc is what a scenario may allocate beyond four times what
	// the peers sent (a record's buffer doubles as its bytes arrive, the
	// last doubling up to twice what came, and the doublings add up to
	// twice the last): record buffers taken ahead of the bytes (4 MiB a
	// record at most), goroutine stacks, logs. A record mark is never
	// trusted for more.
	smallAlloc = 16 << 20
)

// What a hostile scenario must lead to, beyond a bounded wait, bounded
// memory, no panic and no goroutine left behind.
type outcome int

const (
	// dropped: the call fails with ENOTCONN and the client drops the
	// connection, saying why in one line naming the brick's address.
	dropped outcome = iota
	// failsOnly: the call fails with its own errno, the connection stays.
	failsOnly
	// staysUp: the call returns (its result is the garbage's), the
	// connection stays.
	staysUp
	// answeredThenDropped: the call succeeds (the first reply was right),
	// then the connection is dropped.
	answeredThenDropped
)

type hostileCase struct {
	name  string
	do    hostile.Behaviour
	want  outcome
	errno syscall.Errno // failsOnly: the call's errno
	why   string        // dropped: in the disconnect error
	write bool          // also write 16 MiB once the brick misbehaved
	slow  bool          // a handshake case that waits out the dial timeout: tried on DUMP only
}

// bigWrite is the payload the scenario of a brick that stops reading
// tries to write (allocated once, before any scenario measures).
var bigWrite = make([]byte, 16<<20)

// hostileCases are the misbehaviours a brick answers a fop with. Random
// inputs come from fixed seeds: a failure can be replayed.
func hostileCases(tb testing.TB) []hostileCase {
	cases := []hostileCase{
		{name: "truncated record then silence", do: hostile.Truncated(1<<20, false), want: dropped, why: "brick stopped answering"},
		{name: "truncated record then close", do: hostile.Truncated(1<<20, true), want: dropped, why: "closed by peer in the middle of a record"},
		{name: "record mark of 2 GiB", do: hostile.Mark(0xffffffff), want: dropped, why: "bytes or more announced (limit 67108864)"},
		{name: "non-last record mark of 2 GiB", do: hostile.Mark(0x7fffffff), want: dropped, why: "bytes or more announced (limit 67108864)"},
		{name: "record mark of 60 MiB then silence", do: hostile.Mark(60<<20 | 1<<31), want: dropped, why: "brick stopped answering"},
		// Cut at the record limit or, on a machine too slow to stream
		// 64 MiB within the ping-timeout, by the watchdog.
		{name: "1 MiB fragments without end", do: hostile.FragmentsForever(1 << 20), want: dropped},
		{name: "empty fragments without end", do: hostile.EmptyFragmentsForever(), want: dropped, why: "more than 1024 fragments"},
		{name: "trickled record", do: hostile.Trickle(1000, 10*time.Millisecond), want: dropped, why: "brick stopped answering"},
		{name: "callbacks and no reply", do: hostile.CallbacksForever(5, 10*time.Millisecond), want: dropped, why: "brick stopped answering"},
		{name: "reply to an xid never asked", do: hostile.Unasked(1, 0), want: dropped, why: "which no call is waiting for"},
		{name: "replies to xids never asked without end", do: hostile.Unasked(1<<30, 10*time.Millisecond), want: dropped, why: "which no call is waiting for"},
		{name: "duplicate reply", do: hostile.Duplicate(hostile.Brick()), want: answeredThenDropped, why: "which no call is waiting for"},
		{name: "PROG_UNAVAIL", do: hostile.AcceptStat(hostile.ProgUnavail), want: failsOnly, errno: syscall.EIO},
		{name: "PROG_MISMATCH", do: hostile.AcceptStat(hostile.ProgMismatch, 330, 330), want: failsOnly, errno: syscall.EIO},
		{name: "PROC_UNAVAIL", do: hostile.AcceptStat(hostile.ProcUnavail), want: failsOnly, errno: syscall.ENOSYS},
		{name: "GARBAGE_ARGS", do: hostile.AcceptStat(hostile.GarbageArgs), want: failsOnly, errno: syscall.EIO},
		{name: "SYSTEM_ERR", do: hostile.AcceptStat(hostile.SystemErr), want: failsOnly, errno: syscall.EIO},
		{name: "accept_stat 99", do: hostile.AcceptStat(99), want: dropped, why: "accept_stat 99"},
		{name: "MSG_DENIED RPC_MISMATCH", do: hostile.Denied(hostile.RPCMismatch, 2, 2), want: failsOnly, errno: syscall.EIO},
		{name: "MSG_DENIED AUTH_ERROR", do: hostile.Denied(hostile.AuthError, 5), want: failsOnly, errno: syscall.EIO},
		{name: "MSG_DENIED reject_stat 7", do: hostile.Denied(7), want: dropped, why: "reject_stat 7"},
		{name: "reply_stat 2", do: hostile.Header(1, 2), want: dropped, why: "reply state 2"},
		{name: "msg_type 7", do: hostile.Header(7), want: dropped, why: "message type 7"},
		{name: "empty record", do: hostile.GarbageRecord(nil), want: dropped, why: "bad record from peer"},
		{name: "stops reading", do: hostile.StopReading(), want: dropped, why: "brick stopped answering", write: true},
	}
	for seed := uint64(1); seed <= 4; seed++ {
		cases = append(cases,
			hostileCase{name: fmt.Sprintf("random record seed %d", seed), do: hostile.GarbageRecord(hostile.Random(seed, 64<<seed)), want: dropped, why: "bad record from peer"},
			hostileCase{name: fmt.Sprintf("random stream seed %d", seed), do: hostile.GarbageStream(hostile.Random(seed, 64<<seed)), want: dropped},
			hostileCase{name: fmt.Sprintf("random body seed %d", seed), do: hostile.GarbageBody(hostile.Random(seed, 16<<seed)), want: staysUp},
		)
	}
	corpus := hostile.Corpus(tb)
	names := make([]string, 0, len(corpus))
	for n := range corpus {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cases = append(cases, hostileCase{name: "corpus body " + n, do: hostile.GarbageBody(corpus[n]), want: staysUp})
	}
	for _, n := range []string{"fop-lookup-x9-reply.hex", "glusterd-getspec-call.hex", "single-brick.vol"} {
		cases = append(cases, hostileCase{name: "corpus stream " + n, do: hostile.GarbageStream(corpus[n]), want: dropped})
	}
	return cases
}

// hostileBrick is a hostile brick behind an honest glusterd.
func hostileBrick(t *testing.T, opts hostile.Options) (gd, br *hostile.Server, cfg Config) {
	t.Helper()
	if opts.Answer == nil {
		opts.Answer = hostile.Brick()
	}
	br = hostile.New(t, opts)
	gd = hostile.New(t, hostile.Options{Answer: hostile.Glusterd(br.Port, nil)})
	return gd, br, hostileConfig(gd.Port())
}

// hostileConfig is the Config of a brick whose glusterd is at port.
func hostileConfig(port int) Config {
	return Config{
		Name:            "hostile-client-0",
		RemoteHost:      "127.0.0.1",
		RemotePort:      port,
		RemoteSubvolume: "/bricks/hostile",
		VolfileKey:      "/hostile",
		PingInterval:    hostilePingInterval,
		PingTimeout:     hostilePingTimeout,
		ReconnectMax:    100 * time.Millisecond,
		DialTimeout:     hostileDialTimeout,
	}
}

// TestHostileBrick drives the brick client, as the mount uses it, against
// a brick that passes the handshake and then answers a STAT (a WRITE, for
// the brick that stops reading) in every way the protocol forbids. The
// call has no deadline of its own: only the client's own checks can end
// it.
func TestHostileBrick(t *testing.T) {
	for _, tc := range hostileCases(t) {
		t.Run(tc.name, func(t *testing.T) { runHostileBrick(t, tc) })
	}
}

func runHostileBrick(t *testing.T, tc hostileCase) {
	m := hostile.Start()
	log, logs := hostile.Logger(t)
	gd, br, cfg := hostileBrick(t, hostile.Options{Target: hostile.Is(hostile.ProgFOP, opStat), Misbehave: tc.do})
	c := New(cfg, log)
	t.Cleanup(func() { _ = c.Close() })
	down := make(chan struct{}, 1)
	c.Watch(func(up bool) {
		if !up {
			select {
			case down <- struct{}{}:
			default:
			}
		}
	})
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatalf("handshake with an honest glusterd and brick: %v", err)
	}

	start := time.Now()
	var err error
	if tc.write {
		// Once the brick has stopped reading, a write that fills the
		// socket: it must not wait for room for ever either.
		stat := make(chan error, 1)
		go func() {
			_, _, err := c.Stat(context.Background(), gfidN(1), nil)
			stat <- err
		}()
		for br.Misbehaved() == 0 {
			time.Sleep(time.Millisecond)
		}
		_, _, _, werr := c.Write(context.Background(), &Fd{GFID: gfidN(1), Anon: true}, 0, bigWrite, nil)
		if Errno(werr) != syscall.ENOTCONN || !strings.Contains(werr.Error(), "brick stopped answering") {
			t.Errorf("16 MiB write to a brick that stopped reading: %v, want ENOTCONN", werr)
		}
		err = <-stat
	} else {
		_, _, err = c.Stat(context.Background(), gfidN(1), nil)
	}
	took := time.Since(start)
	if took > hostilePingTimeout+slack {
		t.Errorf("the call took %v (ping-timeout %v)", took, hostilePingTimeout)
	}
	if err != nil {
		var oe *OpError
		if !errors.As(err, &oe) || oe.Brick != cfg.Name {
			t.Errorf("error %v is not an *OpError of the brick", err)
		}
	}

	remote := br.Addr()
	switch tc.want {
	case dropped, answeredThenDropped:
		if tc.want == dropped && Errno(err) != syscall.ENOTCONN {
			t.Errorf("got %v, want ENOTCONN", err)
		}
		if tc.want == answeredThenDropped && err != nil {
			t.Errorf("the first reply was right, yet: %v", err)
		}
		select {
		case <-down:
		case <-time.After(hostilePingTimeout + slack):
			t.Fatal("the connection was not dropped")
		}
		e := hostile.Line(t, logs, time.Second, "brick disconnected", "remote", remote, tc.why)
		if b, _ := e.ContextMap()["brick"].(string); b != cfg.Name {
			t.Errorf("disconnect line names brick %q", b)
		}
	case failsOnly, staysUp:
		if tc.want == failsOnly && Errno(err) != tc.errno {
			t.Errorf("got %v (%v), want %v", err, Errno(err), tc.errno)
		}
		// The connection still serves: an honest fop goes through.
		if _, err := c.Access(testCtx(t), gfidN(1), 4, nil); err != nil {
			t.Errorf("the connection no longer serves: %v", err)
		}
		if n := logs.FilterMessage("brick disconnected").Len(); n > 0 {
			t.Errorf("connection dropped: %v", logs.FilterMessage("brick disconnected").All()[0].ContextMap())
		}
	}

	closing := time.Now()
	_ = c.Close()
	br.Close()
	gd.Close()
	if d := time.Since(closing); d > slack {
		t.Errorf("closing took %v", d)
	}
	checkAlloc(t, m, gd, br)
	m.Settle(t, 5*time.Second)
}

// handshakeCases are the misbehaviours tried on each handshake call.
func handshakeCases(tb testing.TB) []hostileCase {
	corpus := hostile.Corpus(tb)
	return []hostileCase{
		{name: "corpus body", do: hostile.GarbageBody(corpus["fop-readdirp-x39-reply.hex"]), want: staysUp},
		{name: "random body", do: hostile.GarbageBody(hostile.Random(7, 300)), want: staysUp},
		{name: "random record", do: hostile.GarbageRecord(hostile.Random(8, 300)), want: dropped, why: "bad record from peer"},
		{name: "truncated record then silence", do: hostile.Truncated(1<<20, false), want: dropped, why: "no complete answer within the dial timeout (500ms)", slow: true},
		{name: "truncated record then close", do: hostile.Truncated(1<<20, true), want: dropped, why: "closed by peer in the middle of a record"},
		{name: "record mark of 2 GiB", do: hostile.Mark(0xffffffff), want: dropped, why: "(limit 67108864)"},
		// Cut at the record limit or by the dial timeout.
		{name: "1 MiB fragments without end", do: hostile.FragmentsForever(1 << 20), want: dropped, slow: true},
		{name: "trickled record", do: hostile.Trickle(1000, 10*time.Millisecond), want: dropped, why: "no complete answer within the dial timeout (500ms)"},
		{name: "callbacks and no reply", do: hostile.CallbacksForever(5, 10*time.Millisecond), want: dropped, why: "no complete answer within the dial timeout (500ms)", slow: true},
		{name: "reply to an xid never asked", do: hostile.Unasked(1, 0), want: dropped, why: "which no call is waiting for"},
		{name: "PROG_MISMATCH", do: hostile.AcceptStat(hostile.ProgMismatch, 1, 1), want: dropped, why: "rpc program version mismatch"},
		{name: "MSG_DENIED AUTH_ERROR", do: hostile.Denied(hostile.AuthError, 1), want: dropped, why: "auth error 1"},
		{name: "stops reading", do: hostile.StopReading(), want: dropped, why: "no complete answer within the dial timeout (500ms)"},
	}
}

// TestHostileHandshake: a glusterd or brick that misbehaves during the
// handshake (PORTBYBRICK, DUMP, SETVOLUME) fails Start within the dial
// timeout with an error naming the brick, the peer and what was wrong;
// retried in the background as the mount does, each failure is logged
// so, and Close ends the retries at once.
func TestHostileHandshake(t *testing.T) {
	for _, target := range []struct {
		name       string
		prog, proc uint32
		glusterd   bool
	}{
		{"PORTBYBRICK", hostile.ProgPortmap, hostile.ProcPortByBrick, true},
		{"DUMP", hostile.ProgDump, hostile.ProcDump, false},
		{"SETVOLUME", hostile.ProgHandshake, hostile.ProcSetVolume, false},
	} {
		for _, tc := range handshakeCases(t) {
			if tc.slow && target.name != "DUMP" {
				continue // the same timeout, on another call
			}
			t.Run(target.name+"/"+tc.name, func(t *testing.T) {
				m := hostile.Start()
				log, logs := hostile.Logger(t)
				opts := hostile.Options{Target: hostile.Is(target.prog, target.proc), Misbehave: tc.do}
				var gd, br *hostile.Server
				var cfg Config
				peer := ""
				if target.glusterd {
					br = hostile.New(t, hostile.Options{Answer: hostile.Brick()})
					opts.Answer = hostile.Glusterd(br.Port, nil)
					gd = hostile.New(t, opts)
					cfg = hostileConfig(gd.Port())
					peer = gd.Addr()
				} else {
					gd, br, cfg = hostileBrick(t, opts)
					peer = br.Addr()
				}
				c := New(cfg, log)
				t.Cleanup(func() { _ = c.Close() })
				start := time.Now()
				err := c.Start(context.Background())
				if d := time.Since(start); d > hostileDialTimeout+slack {
					t.Errorf("Start took %v (dial timeout %v)", d, hostileDialTimeout)
				}
				if tc.want == dropped {
					if err == nil {
						t.Fatal("Start succeeded")
					}
					for _, want := range []string{cfg.Name, peer, target.name, tc.why} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("Start's error %q does not say %q", err, want)
						}
					}
				}
				if err != nil {
					// As the mount does with a brick that is down.
					c.StartBackground()
					hostile.Line(t, logs, hostileDialTimeout+slack, "brick reconnect failed, retrying", "", "", peer, tc.why)
				}
				closing := time.Now()
				_ = c.Close()
				if d := time.Since(closing); d > time.Second {
					t.Errorf("Close took %v", d)
				}
				br.Close()
				gd.Close()
				checkAlloc(t, m, gd, br)
				m.Settle(t, 5*time.Second)
			})
		}
	}
}

// TestCloseStopsHandshake: Close of a client whose reconnect waits on a
// brick that never answers returns at once, not after the dial timeout
// (connect ran on a context Close did not end).
func TestCloseStopsHandshake(t *testing.T) {
	m := hostile.Start()
	gd, br, cfg := hostileBrick(t, hostile.Options{Target: hostile.Is(hostile.ProgDump, hostile.ProcDump), Misbehave: hostile.StopReading()})
	cfg.DialTimeout = 10 * time.Second
	log, logs := hostile.Logger(t)
	c := New(cfg, log)
	c.StartBackground()
	for br.Misbehaved() == 0 { // the DUMP has arrived: the reconnect waits for its answer
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	_ = c.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a handshake waiting (dial timeout %v)", d, cfg.DialTimeout)
	}
	// The attempt Close cut short is not a failure to report.
	if n := logs.FilterMessage("brick reconnect failed, retrying").Len(); n > 0 {
		t.Errorf("Close logged a failed reconnect: %v", logs.FilterMessage("brick reconnect failed, retrying").All()[0].ContextMap())
	}
	br.Close()
	gd.Close()
	m.Settle(t, 5*time.Second)
}

// TestNeverReadingGlusterd: a glusterd that accepts and never reads fails
// Start within the dial timeout, saying so.
func TestNeverReadingGlusterd(t *testing.T) {
	m := hostile.Start()
	gd := hostile.New(t, hostile.Options{NeverRead: true})
	cfg := hostileConfig(gd.Port())
	c := New(cfg, nil)
	start := time.Now()
	err := c.Start(context.Background())
	if d := time.Since(start); d > hostileDialTimeout+slack {
		t.Errorf("Start took %v", d)
	}
	if err == nil || !strings.Contains(err.Error(), gd.Addr()) || !strings.Contains(err.Error(), "no complete answer within the dial timeout") {
		t.Errorf("Start: %v", err)
	}
	_ = c.Close()
	gd.Close()
	m.Settle(t, 5*time.Second)
}

// checkAlloc: the client allocated at most four times what the peers sent,
// plus smallAlloc.
func checkAlloc(t *testing.T, m *hostile.Measure, peers ...*hostile.Server) {
	t.Helper()
	var sent int64
	for _, p := range peers {
		sent += p.Sent()
	}
	if a, bound := m.Allocated(), 4*uint64(sent)+smallAlloc; a > bound {
		t.Errorf("the scenario allocated %d bytes, the peers sent %d: over %d", a, sent, bound)
	}
}

// TestKickSaysWhy: a connection dropped by Kick is logged once, with the
// reason and the brick's address (it was "closed by client", after a line
// of its own).
func TestKickSaysWhy(t *testing.T) {
	log, logs := hostile.Logger(t)
	_, br, cfg := hostileBrick(t, hostile.Options{})
	c := New(cfg, log)
	t.Cleanup(func() { _ = c.Close() })
	down := make(chan struct{}, 1)
	c.Watch(func(up bool) {
		if !up {
			select {
			case down <- struct{}{}:
			default:
			}
		}
	})
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	c.Kick("a fop did not complete within the fop timeout")
	<-down
	hostile.Line(t, logs, time.Second, "brick disconnected", "remote", br.Addr(), "dropping brick connection: a fop did not complete within the fop timeout")
	if n := logs.FilterMessage("dropping brick connection").Len(); n != 0 {
		t.Errorf("the drop was logged twice")
	}
}
