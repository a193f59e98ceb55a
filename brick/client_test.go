package brick

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/xdr"
)

// gfidN is a gfid whose last 4 bytes hold n.
func gfidN(n uint32) xdr.GFID {
	var g xdr.GFID
	g[0] = 0xaa
	binary.BigEndian.PutUint32(g[12:], n)
	return g
}

// statHandler answers STAT with an iatt echoing the requested gfid.
func statReply(c *bricktest.Call) []byte {
	g := xdr.NewDecoder(c.Args).GFID()
	return bricktest.IattRsp(0, 0, 1, &xdr.Iatt{GFID: g, Ino: g.Ino(), Mode: 0100644, Nlink: 1})
}

func TestManyCallsOutOfOrder(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	const n = 48
	var mu sync.Mutex
	holds := map[xdr.GFID]chan struct{}{}
	for i := 0; i < n; i++ {
		holds[gfidN(uint32(i))] = make(chan struct{})
	}
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply {
		g := xdr.NewDecoder(c.Args).GFID()
		mu.Lock()
		h := holds[g]
		mu.Unlock()
		return bricktest.Reply{Body: statReply(c), Hold: h}
	})
	c := startClient(t, fk, nil)
	ctx := testCtx(t)
	type res struct {
		i   int
		st  xdr.Iatt
		err error
	}
	out := make(chan res, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			st, _, err := c.Stat(ctx, gfidN(uint32(i)), nil)
			out <- res{i, st, err}
		}(i)
	}
	fk.WaitCalls(5*time.Second, "all STATs in flight", func(cs []*bricktest.Call) bool { return countFop(cs, opStat) == n })
	// Release in reverse order, with callbacks interleaved.
	for i := n - 1; i >= 0; i-- {
		if i%8 == 0 {
			fk.Callback(1, nil) // FETCHSPEC
		}
		close(holds[gfidN(uint32(i))])
	}
	for i := 0; i < n; i++ {
		r := <-out
		if r.err != nil || r.st.GFID != gfidN(uint32(r.i)) {
			t.Fatalf("call %d got %v %v", r.i, r.st.GFID, r.err)
		}
	}
}

func countFop(cs []*bricktest.Call, proc uint32) int {
	n := 0
	for _, c := range cs {
		if c.Prog == ProgFOP && c.Proc == proc {
			n++
		}
	}
	return n
}

// TestCallbacksDoNotStall floods the client with callback CALLs between two
// replies: more than its callback queue holds.
func TestCallbacksDoNotStall(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	release := make(chan struct{})
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply {
		return bricktest.Reply{Body: statReply(c), Hold: release}
	})
	c := startClient(t, fk, nil)
	ctx := testCtx(t)
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func(i int) {
			_, _, err := c.Stat(ctx, gfidN(uint32(i)), nil)
			errs <- err
		}(i)
	}
	fk.WaitCalls(5*time.Second, "2 STATs", func(cs []*bricktest.Call) bool { return countFop(cs, opStat) == 2 })
	for i := 0; i < 500; i++ {
		fk.Callback(10, make([]byte, 64)) // INODELK_CONTENTION-sized
	}
	close(release)
	for i := 0; i < 2; i++ {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("replies stalled behind callbacks")
		}
	}
	// The connection is still healthy.
	if _, _, err := c.Stat(ctx, gfidN(9), nil); err != nil {
		t.Fatal(err)
	}
}

func TestDisconnectFailsPendingWithENOTCONN(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(fk *bricktest.Fake)
		h    bricktest.Handler
	}{
		{"drop connections", func(fk *bricktest.Fake) { fk.DropConnections() },
			func(*bricktest.Call) bricktest.Reply { return bricktest.Reply{Drop: true} }},
		{"close mid-call", nil, func(c *bricktest.Call) bricktest.Reply {
			// The last of the calls closes the connection instead of replying.
			if xdr.NewDecoder(c.Args).GFID() == gfidN(9) {
				return bricktest.Reply{CloseConn: true}
			}
			return bricktest.Reply{Drop: true}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fk := bricktest.New(t, bricktest.Options{})
			fk.Handle(opStat, tc.h)
			c := startClient(t, fk, nil)
			ctx := testCtx(t)
			const n = 10
			errs := make(chan error, n)
			for i := 0; i < n-1; i++ {
				go func(i int) {
					_, _, err := c.Stat(ctx, gfidN(uint32(i)), nil)
					errs <- err
				}(i)
			}
			fk.WaitCalls(5*time.Second, "STATs", func(cs []*bricktest.Call) bool { return countFop(cs, opStat) == n-1 })
			go func() {
				_, _, err := c.Stat(ctx, gfidN(9), nil)
				errs <- err
			}()
			fk.WaitCalls(5*time.Second, "last STAT", func(cs []*bricktest.Call) bool { return countFop(cs, opStat) == n })
			if tc.cut != nil {
				tc.cut(fk)
			}
			for i := 0; i < n; i++ {
				err := <-errs
				var oe *OpError
				if Errno(err) != syscall.ENOTCONN || !errors.As(err, &oe) || oe.Fop != "STAT" || oe.Brick != "fake-client-0" {
					t.Fatalf("pending call got %v (errno %v), want ENOTCONN", err, Errno(err))
				}
			}
			// The client comes back on its own.
			fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(statReply(c)) })
			waitFor(t, 5*time.Second, "reconnect", func() bool {
				_, _, err := c.Stat(ctx, gfidN(1), nil)
				return err == nil
			})
		})
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReconnectNewPortReopensFd: the brick restarts on a new port; the
// client finds it through PORTBYBRICK and reopens an open fd by gfid with
// the original flags minus O_CREAT|O_EXCL|O_TRUNC before the next fop.
func TestReconnectNewPortReopensFd(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	g := gfidN(77)
	st := xdr.Iatt{GFID: g, Ino: g.Ino(), Mode: 0100644, Nlink: 1}
	fk.Handle(opCreate, func(*bricktest.Call) bricktest.Reply {
		e := bricktest.Rsp(0, 0)
		e.Iatt(&st)
		e.Int64(7)
		e.Iatt(&xdr.Iatt{GFID: xdr.RootGFID})
		e.Iatt(&xdr.Iatt{GFID: xdr.RootGFID})
		return bricktest.OK(e.B)
	})
	var mu sync.Mutex
	var writeFds []int64
	fk.Handle(opWrite, func(c *bricktest.Call) bricktest.Reply {
		d := xdr.NewDecoder(c.Args)
		_ = d.GFID()
		mu.Lock()
		writeFds = append(writeFds, d.Int64())
		mu.Unlock()
		_, _ = d.Uint64(), d.Uint32()
		n := int32(len(c.Args) - 52)
		return bricktest.OK(bricktest.IattRsp(n, 0, 2, &st))
	})
	c := startClient(t, fk, nil)
	ctx := testCtx(t)
	flags := uint32(syscall.O_RDWR | syscall.O_CREAT | syscall.O_EXCL | syscall.O_TRUNC | syscall.O_APPEND)
	f, _, _, err := c.Create(ctx, xdr.RootGFID, "f", flags, 0100644, 022, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.Write(ctx, f, 0, []byte("before"), nil); err != nil {
		t.Fatal(err)
	}
	oldPort := fk.BrickPort()
	fk.Restart()
	if fk.BrickPort() == oldPort {
		t.Fatal("restart kept the port")
	}
	fk.WaitCalls(10*time.Second, "second SETVOLUME", func(cs []*bricktest.Call) bool {
		n := 0
		for _, c := range cs {
			if c.Prog == bricktest.ProgHandshake && c.Proc == bricktest.ProcSetVolume && c.Conn.LocalPort() != oldPort {
				n++
			}
		}
		return n == 1
	})
	waitFor(t, 5*time.Second, "client up", c.Up)
	if _, _, _, err := c.Write(ctx, f, 6, []byte("after"), nil); err != nil {
		t.Fatal(err)
	}
	opens := fk.FopCalls(opOpen)
	if len(opens) != 1 {
		t.Fatalf("%d OPENs after reconnect, want 1", len(opens))
	}
	d := xdr.NewDecoder(opens[0].Args)
	og, oflags := d.GFID(), d.Uint32()
	if og != g || oflags != uint32(syscall.O_RDWR|syscall.O_APPEND) {
		t.Fatalf("reopen of %v with flags %#o, want %#o", og, oflags, syscall.O_RDWR|syscall.O_APPEND)
	}
	if opens[0].Conn.LocalPort() == oldPort {
		t.Fatal("reopen went to the old brick port")
	}
	// PORTBYBRICK was asked again and the WRITE used the new remote fd
	// (the fake's first fd is 0; CREATE had said 7).
	pmaps := 0
	for _, call := range fk.Calls() {
		if call.Prog == bricktest.ProgPortmap {
			pmaps++
		}
	}
	// Two at least: one per connect. A reconnect attempt that lands while
	// the fake is between its listeners fails and asks again.
	if pmaps < 2 {
		t.Fatalf("%d PORTBYBRICK calls, want one per connect (2 or more)", pmaps)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(writeFds) != 2 || writeFds[0] != 7 || writeFds[1] != 0 {
		t.Fatalf("WRITE fds %v, want [7 0]", writeFds)
	}
	if err := c.Release(ctx, f); err != nil {
		t.Fatal(err)
	}
}

// TestHungBrickPingTimeout: a brick that stops answering with its socket
// open is dropped after PingTimeout, failing the call in flight with ENOTCONN.
func TestHungBrickPingTimeout(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(statReply(c)) })
	c := startClient(t, fk, func(cfg *Config) {
		cfg.PingInterval = 30 * time.Millisecond
		cfg.PingTimeout = 150 * time.Millisecond
	})
	fk.Hang(true)
	start := time.Now()
	_, _, err := c.Stat(context.Background(), gfidN(1), nil) // no deadline: only the ping can end it
	took := time.Since(start)
	if Errno(err) != syscall.ENOTCONN {
		t.Fatalf("stat on a hung brick: %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("hung brick detected after %v", took)
	}
	fk.Hang(false)
	ctx := testCtx(t)
	waitFor(t, 5*time.Second, "reconnect after hang", func() bool {
		_, _, err := c.Stat(ctx, gfidN(2), nil)
		return err == nil
	})
}

func TestAuthFailure(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{SetVolume: bricktest.RejectAuth})
	cfg := fastConfig(fk)
	cfg.Username, cfg.Password = "u", "wrong"
	c := New(cfg, nil)
	t.Cleanup(func() { _ = c.Close() })
	err := c.Start(testCtx(t))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Start: %v, want ErrAuth", err)
	}
	msg := err.Error()
	for _, want := range []string{"brick fake-client-0 (127.0.0.1:", "Authentication failed (EACCES)",
		"auth.allow and auth.reject of volume fake must admit this host's address 127.0.0.1", "gluster volume get fake auth.allow",
		"the volfile's username/password (auth.login) must be the brick's: remount"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	// The SETVOLUME carried the credentials and the handshake keys.
	for _, call := range fk.Calls() {
		if call.Prog == bricktest.ProgHandshake && call.Proc == bricktest.ProcSetVolume {
			req, err := xdr.UnmarshalOldDict(xdr.NewDecoder(call.Args).Opaque(1 << 20))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range map[string]string{"username": "u", "password": "wrong", "fops-version": "1298437",
				"remote-subvolume": fk.BrickPath(), "volfile-key": "/fake"} {
				if got, _ := req.Get(k); got != v {
					t.Errorf("SETVOLUME %s = %q, want %q", k, got, v)
				}
			}
			if pu, _ := req.Get("process-uuid"); !strings.HasSuffix(pu, "-PC_NAME:fake-client-0-RECON_NO:-1") {
				t.Errorf("process-uuid %q", pu)
			}
		}
	}
	// Without credentials only the address can have been refused
	// (auth/login does not care).
	c0 := New(fastConfig(fk), nil)
	err = c0.Start(testCtx(t))
	c0.Close()
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "auth.allow and auth.reject of volume fake") ||
		strings.Contains(err.Error(), "username") || strings.Contains(err.Error(), "ssl-allow") {
		t.Errorf("refused without credentials: %v", err)
	}
	// Other refusals are not auth errors.
	fk.SetSetVolume(func(xdr.OldDict) bricktest.SetVolumeResult {
		return bricktest.SetVolumeResult{OpRet: -1, OpErrno: 11, Dict: xdr.OldDict{}.Set("ERROR", "Not received child_up for this xlator")}
	})
	c2 := New(fastConfig(fk), nil)
	t.Cleanup(func() { _ = c2.Close() })
	err = c2.Start(testCtx(t))
	if err == nil || errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "child_up") {
		t.Fatalf("EAGAIN refusal: %v", err)
	}
}

func TestMultiFragmentReplies(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	frag := func(h bricktest.Handler) bricktest.Handler {
		return func(c *bricktest.Call) bricktest.Reply {
			r := h(c)
			r.Fragments = 5
			return r
		}
	}
	dump := func(c *bricktest.Call) bricktest.Reply {
		// The default DUMP answer, split.
		return bricktest.OK(replyBody(t, "brick-dump-reply.hex"))
	}
	fk.HandleProg(bricktest.ProgDump, bricktest.ProcDump, frag(dump))
	fk.Handle(opStat, frag(func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(statReply(c)) }))
	c := startClient(t, fk, nil)
	st, _, err := c.Stat(testCtx(t), gfidN(5), nil)
	if err != nil || st.GFID != gfidN(5) {
		t.Fatalf("%v %v", st.GFID, err)
	}
}

// TestOversizeRecordDropsConnection: a record mark announcing 2 GiB makes the
// client drop the connection without allocating the record.
func TestOversizeRecordDropsConnection(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply {
		_ = c.Conn.WriteRaw([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
		return bricktest.Reply{Drop: true}
	})
	c := startClient(t, fk, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := c.Stat(testCtx(t), gfidN(1), nil)
	runtime.ReadMemStats(&after)
	if Errno(err) != syscall.ENOTCONN {
		t.Fatalf("got %v, want ENOTCONN", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 16<<20 {
		t.Fatalf("%d bytes allocated while refusing a 2 GiB record", d)
	}
	// Let the reconnect finish before Close (see TestCloseDuringReconnect).
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply { return bricktest.OK(statReply(c)) })
	waitFor(t, 5*time.Second, "reconnect", func() bool {
		_, _, err := c.Stat(testCtx(t), gfidN(1), nil)
		return err == nil
	})
}

// TestCloseDuringReconnect closes a Client while a reconnect is between
// SETVOLUME and publishing the connection. connect then returns
// errors.New("client closed") and stores it in lastErr, an atomic.Value that
// already holds a *fmt.wrapError from the disconnect: atomic.Value panics on
// a store of a different concrete type, which kills the process. The crash
// is run in a child process so that it fails this test only.
func TestCloseDuringReconnect(t *testing.T) {
	if os.Getenv("BRICKFS_CLOSE_RECONNECT_CHILD") == "1" {
		closeDuringReconnect(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCloseDuringReconnect$", "-test.v")
	cmd.Env = append(os.Environ(), "BRICKFS_CLOSE_RECONNECT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("closing a Client during a reconnect crashed the process (%v):\n%s", err, firstLines(string(out), 12))
	}
}

func firstLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[:n]
	}
	return strings.Join(l, "\n")
}

func closeDuringReconnect(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	hold := make(chan struct{})
	var mu sync.Mutex
	n := 0
	fk.HandleProg(bricktest.ProgHandshake, bricktest.ProcSetVolume, func(c *bricktest.Call) bricktest.Reply {
		mu.Lock()
		n++
		first := n == 1
		mu.Unlock()
		r := bricktest.OK(setVolumeOK())
		if !first {
			r.Hold = hold
		}
		return r
	})
	cfg := fastConfig(fk)
	c := New(cfg, nil)
	if err := c.Start(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	fk.DropConnections()
	fk.WaitCalls(5*time.Second, "reconnect SETVOLUME", func(cs []*bricktest.Call) bool {
		k := 0
		for _, call := range cs {
			if call.Prog == bricktest.ProgHandshake {
				k++
			}
		}
		return k == 2
	})
	closed := make(chan struct{})
	go func() { _ = c.Close(); close(closed) }()
	waitFor(t, 5*time.Second, "Close to start", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closed
	})
	close(hold)
	<-closed
}

func setVolumeOK() []byte {
	e := xdr.NewEncoder(64)
	e.Int32(0)
	e.Int32(0)
	e.Opaque(xdr.OldDict{}.Set("ERROR", "Success").Marshal())
	return e.B
}

func TestDelayAndTimeout(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	var mu sync.Mutex
	hold := make(chan struct{})
	sent := make(chan struct{})
	first := true
	fk.Handle(opStat, func(c *bricktest.Call) bricktest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return bricktest.Reply{Body: statReply(c), Hold: hold, Sent: sent}
		}
		return bricktest.Reply{Body: statReply(c)}
	})
	c := startClient(t, fk, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, _, err := c.Stat(ctx, gfidN(1), nil)
	if Errno(err) != syscall.ETIMEDOUT || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	// The next call works while the first is unanswered.
	if _, _, err := c.Stat(testCtx(t), gfidN(2), nil); err != nil {
		t.Fatal(err)
	}
	// The late reply to the abandoned call arrives and is ignored: a call
	// sent after it (so answered after it on the same connection) works
	// and the brick stays up.
	close(hold)
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the held reply was not sent")
	}
	if _, _, err := c.Stat(testCtx(t), gfidN(3), nil); err != nil || !c.Up() {
		t.Fatalf("after the late reply: %v", err)
	}
}

// TestBrickErrors: op_errno only counts when op_ret is -1; RPC-level
// refusals become EIO; an unknown brick path is reported at Start.
func TestBrickErrors(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	fk.Handle(opStat, fixed(bricktest.IattRsp(0, 22, 1, &xdr.Iatt{Ino: 5})))
	fk.Handle(opAccess, fixed(bricktest.CommonRsp(-1, int32(syscall.EACCES))))
	fk.Handle(opUnlink, func(*bricktest.Call) bricktest.Reply { return bricktest.Reply{AcceptStat: bricktest.GarbageArgs} })
	c := startClient(t, fk, nil)
	ctx := testCtx(t)
	if st, _, err := c.Stat(ctx, gfidN(1), nil); err != nil || st.Ino != 5 {
		t.Fatalf("stale op_errno on success: %v", err)
	}
	if _, err := c.Access(ctx, gfidN(1), 4, nil); Errno(err) != syscall.EACCES {
		t.Fatalf("access: %v", err)
	}
	if _, err := c.Unlink(ctx, xdr.RootGFID, "x", nil); Errno(err) != syscall.EIO {
		t.Fatalf("garbage args: %v", err)
	}
	// A procedure the brick does not have (PROC_UNAVAIL: an older
	// GlusterFS without COPY_FILE_RANGE) is ENOSYS, which the FUSE layer
	// turns into the kernel copying by itself.
	if _, _, err := c.Readlink(ctx, gfidN(1), nil); Errno(err) != syscall.ENOSYS {
		t.Fatalf("unanswered proc: %v", err)
	}

	cfg := fastConfig(fk)
	cfg.RemoteSubvolume = "/bricks/other"
	c2 := New(cfg, nil)
	t.Cleanup(func() { _ = c2.Close() })
	if err := c2.Start(ctx); !errors.Is(err, ErrNoBrickPort) {
		t.Fatalf("unknown brick: %v", err)
	}
}

// TestForeignFdRefused: an Fd this brick never opened (another brick's, a
// layer's own) is refused with EBADF, never reopened by gfid, which would
// leak a brick fd.
func TestForeignFdRefused(t *testing.T) {
	fk := bricktest.New(t, bricktest.Options{})
	c := startClient(t, fk, nil)
	ctx := testCtx(t)
	for name, f := range map[string]*Fd{
		"a layer's own": {GFID: gfidN(5), Flags: syscall.O_RDWR},
		"another brick's": func() *Fd {
			other := startClient(t, bricktest.New(t, bricktest.Options{}), nil)
			f, _, err := other.Open(ctx, gfidN(6), syscall.O_RDWR, nil)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}(),
	} {
		opens := len(fk.FopCalls(opOpen))
		if _, _, err := c.Read(ctx, f, 0, 10, nil); Errno(err) != syscall.EBADF {
			t.Errorf("read through %s fd: %v, want EBADF", name, err)
		}
		if err := c.Release(ctx, f); Errno(err) != syscall.EBADF {
			t.Errorf("release of %s fd: %v, want EBADF", name, err)
		}
		if n := len(fk.FopCalls(opOpen)) - opens; n != 0 {
			t.Errorf("%s fd: %d OPENs sent to the brick, want none", name, n)
		}
	}
}
