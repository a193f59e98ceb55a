package volfile

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/internal/hostile"
)

const (
	hostileTimeout = 500 * time.Millisecond // Fetch's per-server timeout
	hostileCheck   = 300 * time.Millisecond // Watch's ping and fetch bound
	// slack is what a loaded 2-core machine under -race may add to a
	// bound before a call counts as hung.
	slack = 3 * time.Second
	// smallAlloc is what a scenario may allocate beyond four times what
	// the glusterd sent (see brick's hostile_test.go).
	smallAlloc = 16 << 20
)

var hostileSpec = []byte("volume hostile-client-0\n type protocol/client\n option remote-host h\n option remote-subvolume /b\nend-volume\n")

// glusterdCase is a misbehaviour of glusterd. why is in the error (or
// the log line); "" accepts any error, and the call may even succeed
// when ok is set (garbage that happens to decode, a duplicate reply whose
// first copy was right).
type glusterdCase struct {
	name string
	do   hostile.Behaviour
	why  string
	ok   bool
	slow bool // waits out a timeout: tried on Fetch, and on Watch only where marked
	both bool // slow, and tried on Watch too
	// lost: Watch fetches the volfile well, then loses the connection
	// with why (a duplicate reply).
	lost bool
}

func glusterdCases(tb testing.TB) []glusterdCase {
	corpus := hostile.Corpus(tb)
	cases := []glusterdCase{
		{name: "truncated record then silence", do: hostile.Truncated(1<<20, false), why: "timed out waiting for the volfile", slow: true},
		{name: "truncated record then close", do: hostile.Truncated(1<<20, true), why: "closed by peer in the middle of a record"},
		{name: "record mark of 2 GiB", do: hostile.Mark(0xffffffff), why: "bytes or more announced (limit 67108864)"},
		{name: "1 MiB fragments without end", do: hostile.FragmentsForever(1 << 20), slow: true},
		{name: "empty fragments without end", do: hostile.EmptyFragmentsForever(), why: "more than 1024 fragments"},
		{name: "trickled record", do: hostile.Trickle(1000, 10*time.Millisecond), why: "timed out waiting for the volfile", slow: true, both: true},
		{name: "callbacks and no reply", do: hostile.CallbacksForever(5, 10*time.Millisecond), why: "timed out waiting for the volfile", slow: true, both: true},
		{name: "reply to an xid never asked", do: hostile.Unasked(1, 0), why: "which no call is waiting for"},
		{name: "duplicate reply", do: hostile.Duplicate(hostile.Glusterd(func() int { return 0 }, hostileSpec)), ok: true,
			lost: true, why: "which no call is waiting for"},
		{name: "PROG_MISMATCH", do: hostile.AcceptStat(hostile.ProgMismatch, 1, 1), why: "rpc program version mismatch"},
		{name: "SYSTEM_ERR", do: hostile.AcceptStat(hostile.SystemErr), why: "rpc system error"},
		{name: "MSG_DENIED AUTH_ERROR", do: hostile.Denied(hostile.AuthError, 1), why: "auth error 1"},
		{name: "MSG_DENIED reject_stat 9", do: hostile.Denied(9), why: "reject_stat 9"},
		{name: "msg_type 7", do: hostile.Header(7), why: "message type 7"},
		{name: "stops reading", do: hostile.StopReading(), why: "timed out waiting for the volfile", slow: true},
	}
	for seed := uint64(1); seed <= 3; seed++ {
		cases = append(cases,
			glusterdCase{name: fmt.Sprintf("random record seed %d", seed), do: hostile.GarbageRecord(hostile.Random(seed, 64<<seed)), why: "bad record from peer"},
			glusterdCase{name: fmt.Sprintf("random body seed %d", seed), do: hostile.GarbageBody(hostile.Random(seed, 64<<seed)), ok: true},
		)
	}
	for _, n := range []string{"glusterd-getspec-call.hex", "setvolume-reply.hex", "afrtest-replica3.vol", "be2e7dcd9103fad1"} {
		cases = append(cases, glusterdCase{name: "corpus body " + n, do: hostile.GarbageBody(corpus[n]), ok: true})
	}
	return cases
}

func hostileGlusterd(t *testing.T, prog, proc uint32, do hostile.Behaviour) (*hostile.Server, []Server) {
	srv := hostile.New(t, hostile.Options{
		Answer:    hostile.Glusterd(func() int { return 0 }, hostileSpec),
		Target:    hostile.Is(prog, proc),
		Misbehave: do,
	})
	return srv, []Server{{Host: "127.0.0.1", Port: srv.Port()}}
}

func checkAlloc(t *testing.T, m *hostile.Measure, srv *hostile.Server) {
	t.Helper()
	if a, bound := m.Allocated(), 4*uint64(srv.Sent())+smallAlloc; a > bound {
		t.Errorf("the scenario allocated %d bytes, glusterd sent %d: over %d", a, srv.Sent(), bound)
	}
}

// TestHostileFetch: a glusterd that answers GETSPEC in any way the
// protocol forbids makes Fetch fail within its timeout, with an error
// naming the server and what it did; nothing is left running.
func TestHostileFetch(t *testing.T) {
	for _, tc := range glusterdCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			m := hostile.Start()
			srv, servers := hostileGlusterd(t, ProgHandshake, ProcGetSpec, tc.do)
			start := time.Now()
			got, err := Fetch(context.Background(), servers, "hostile", FetchOptions{Timeout: hostileTimeout})
			if d := time.Since(start); d > hostileTimeout+slack {
				t.Errorf("Fetch took %v (timeout %v)", d, hostileTimeout)
			}
			switch {
			case err == nil && !tc.ok:
				t.Errorf("Fetch succeeded: %q", got.Volfile)
			case err != nil && (!strings.Contains(err.Error(), srv.Addr()+": ") || !strings.Contains(err.Error(), tc.why)):
				t.Errorf("Fetch's error %q does not name %s and %q", err, srv.Addr(), tc.why)
			}
			srv.Close()
			checkAlloc(t, m, srv)
			m.Settle(t, 5*time.Second)
		})
	}
	t.Run("never reads", func(t *testing.T) {
		m := hostile.Start()
		srv := hostile.New(t, hostile.Options{NeverRead: true})
		_, err := Fetch(context.Background(), []Server{{Host: "127.0.0.1", Port: srv.Port()}}, "hostile", FetchOptions{Timeout: hostileTimeout})
		if err == nil || !strings.Contains(err.Error(), srv.Addr()+": timed out waiting for the volfile") {
			t.Errorf("Fetch: %v", err)
		}
		srv.Close()
		m.Settle(t, 5*time.Second)
	})
}

// TestHostileWatch: the volfile follower, against a glusterd that
// misbehaves on GETSPEC, or that serves the volfile and then misbehaves
// on the pings that check it, says so in one line naming the server and
// what it did, within its check interval, and returns promptly when its
// context ends.
func TestHostileWatch(t *testing.T) {
	for _, target := range []struct {
		name       string
		proc       uint32
		msg        string
		slowWhy    string // the error of a slow case
		prog       uint32
		needsCheck bool
	}{
		{"GETSPEC", ProcGetSpec, "cannot fetch the volfile to check it for changes", "timed out waiting for the volfile", ProgHandshake, false},
		{"PING", ProcPing, "lost the volfile server; following the volfile from the next one", "no answer to a ping within 300ms", ProgDump, true},
	} {
		for _, tc := range glusterdCases(t) {
			if (tc.ok && !tc.lost) || (tc.slow && !tc.both) {
				continue // nothing to say, or the same timeout as another case
			}
			t.Run(target.name+"/"+tc.name, func(t *testing.T) {
				m := hostile.Start()
				log, logs := hostile.Logger(t)
				srv, servers := hostileGlusterd(t, target.prog, target.proc, tc.do)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() {
					defer close(done)
					Watch(ctx, servers, "hostile", hostileSpec, WatchOptions{Check: hostileCheck, Retry: 200 * time.Millisecond}, log,
						func([]byte) ([]string, error) {
							t.Error("the volfile did not change, yet it was applied")
							return nil, nil
						})
				}()
				why := tc.why
				if tc.slow {
					why = target.slowWhy
				}
				wait := hostileCheck + slack
				if target.needsCheck {
					wait += hostileCheck // the first ping goes out one check after the fetch
				}
				msg := target.msg
				if tc.lost {
					msg = "lost the volfile server; following the volfile from the next one"
				}
				hostile.Line(t, logs, wait, msg, "remote", srv.Addr(), why)
				cancel()
				select {
				case <-done:
				case <-time.After(slack):
					t.Fatal("Watch did not return after its context ended")
				}
				srv.Close()
				checkAlloc(t, m, srv)
				m.Settle(t, 5*time.Second)
			})
		}
	}
}

// TestWatchGlusterdRestart: a glusterd that closes the connection between
// records (a restart) is said at info, not as a fault.
func TestWatchGlusterdRestart(t *testing.T) {
	log, logs := hostile.Logger(t)
	hangUp := func(*hostile.Conn, *hostile.Call) bool { return false }
	srv, servers := hostileGlusterd(t, ProgDump, ProcPing, hangUp)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, servers, "hostile", hostileSpec, WatchOptions{Check: hostileCheck}, log, func([]byte) ([]string, error) { return nil, nil })
	}()
	e := hostile.Line(t, logs, 2*hostileCheck+slack, "lost the volfile server; following the volfile from the next one", "remote", srv.Addr(), "closed by peer")
	if e.Level != zap.InfoLevel {
		t.Errorf("a glusterd restart logged at %v", e.Level)
	}
	cancel()
	<-done
}
