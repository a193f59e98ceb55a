package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/fuse"
)

// sampleGraph is a replica-3 volume under io-stats, one brick down and
// lagging, with a failover counted.
func sampleGraph() fop.Status {
	brick := func(i int, up bool) fop.Status {
		n := "v-client-" + string(rune('0'+i))
		bs := &fop.BrickStats{Host: "127.1.0.1", Port: 49152 + i, Path: "/bricks/b" + string(rune('0'+i)), Connected: up, PingRTT: 300 * time.Microsecond, Calls: 10, BytesSent: 4096}
		if up {
			bs.Since = time.Now().Add(-time.Minute)
		} else {
			bs.LastError, bs.LastErrorAt = "brick stopped answering", time.Now()
		}
		return fop.Status{Name: n, Type: "protocol/client", Up: up, Brick: bs}
	}
	repl := fop.Status{Name: "v-replicate-0", Type: "cluster/replicate", Up: true,
		Replica: &fop.ReplicaStats{BricksUp: 2, Bricks: 3, Quorum: "auto (2 of 3)", QuorumMet: true, HealPending: 7, Lagging: []string{"v-client-2"}, Cuts: 1,
			Failovers: []fop.FailoverStats{{Brick: "v-client-0"}, {Brick: "v-client-1"}, {Brick: "v-client-2", Events: map[string]uint64{"cut": 1, "down": 1}, LastStall: 300 * time.Millisecond, Stalls: 300 * time.Millisecond, StallCount: 1}}},
		Children: []fop.Status{brick(0, true), brick(1, true), brick(2, false)}}
	return fop.Status{Name: "v", Type: "debug/io-stats", Up: true, Children: []fop.Status{repl},
		Fops: &fop.FopStats{Buckets: []time.Duration{time.Millisecond, 2 * time.Millisecond}, BytesWritten: 8192,
			Fops: []fop.OneFopStats{{Fop: "WRITE", Count: 2, Total: 3 * time.Millisecond, Buckets: []uint64{1, 1, 0}, Errors: map[string]uint64{"ENOSPC": 1}}}}}
}

func testState(t *testing.T) *mountState {
	st := &mountState{m: Mount{MountPoint: "/mnt/v", Spec: "h:/v"}, volume: "v", started: time.Now().Add(-time.Hour), graph: sampleGraph}
	st.buffers = func() fuse.BufferStats {
		return fuse.BufferStats{Mapped: 40 << 20, InUse: 3 << 20, Warm: 16 << 20, Maps: 37, Released: 5}
	}
	st.volfile.Store(&volfileInUse{Source: "server", From: "h:24007", At: time.Now(), Text: "volume v\nend-volume\n"})
	return st
}

// shortDir is a temporary directory short enough for a unix socket path.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("/tmp", "bfs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// The daemon's status goes over the socket and back whole: the graph with
// every node's figures, the volfile and the process's own figures.
func TestStatusRoundTrip(t *testing.T) {
	sock := filepath.Join(shortDir(t), "1.sock")
	s, err := serveStatus(sock, testState(t).snapshot, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket: %v %v", fi, err)
	}
	start := time.Now()
	doc, err := queryStatus(sock, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status round trip: %v", time.Since(start))
	want := sampleGraph()
	if doc.Graph == nil || doc.Graph.String() != want.String() || doc.PID != os.Getpid() || doc.Goroutines <= 0 || doc.RSSBytes <= 0 || doc.Uptime < 3599 {
		t.Fatalf("status: %+v", doc)
	}
	r := doc.Graph.Children[0].Replica
	b2 := doc.Graph.Children[0].Children[2].Brick
	if r == nil || r.HealPending != 7 || r.Lagging[0] != "v-client-2" || r.Failovers[2].Events["cut"] != 1 || r.Failovers[2].LastStall != 300*time.Millisecond ||
		b2 == nil || b2.Connected || b2.LastError == "" || doc.Graph.Fops.Fops[0].Errors["ENOSPC"] != 1 || doc.Volfile.Source != "server" {
		t.Errorf("figures lost on the way: %+v %+v", r, b2)
	}
	out := renderStatus(doc)
	for _, w := range []string{"/mnt/v: h:/v (volume v)", "volfile: fetched from h:24007", "v-replicate-0 (cluster/replicate) up: 2 of 3 bricks up, quorum auto (2 of 3) met, 7 files to heal",
		"lagging: v-client-2", "failovers of v-client-2: cut 1, down 1; last stall 300ms", "v-client-2 (protocol/client) down: 127.1.0.1:49154 /bricks/b2, NOT CONNECTED",
		"last error", "WRITE", "errors: ENOSPC 1", "ping 300µs",
		"FUSE buffers: 3.0 MiB in use, 16.0 MiB idle and kept, 40.0 MiB mapped in 37 buffers; idle ones gave their pages back 5 times"} {
		if !strings.Contains(out, w) {
			t.Errorf("human status lacks %q:\n%s", w, out)
		}
	}
	if b := doc.FuseBuffers; b == nil || b.InUse != 3<<20 || b.Maps != 37 {
		t.Errorf("FUSE buffers lost on the way: %+v", b)
	}
	t.Logf("\n%s", out)
}

// A snapshot that hangs (the graph held) is answered with an error in
// time; the server goes on answering, and no more than statusBusy
// snapshots hang at once.
func TestStatusHungSnapshot(t *testing.T) {
	sock := filepath.Join(shortDir(t), "1.sock")
	release := make(chan struct{})
	defer close(release)
	hang := true
	st := testState(t)
	snap := func() statusDoc {
		if hang {
			<-release
		}
		return st.snapshot()
	}
	old := statusSnapTimeout
	statusSnapTimeout = 50 * time.Millisecond
	defer func() { statusSnapTimeout = old }()
	s, err := serveStatus(sock, snap, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Error("the server did not stop: an answer waits on the hung snapshot")
		}
	}()
	for i := 0; i < statusBusy+2; i++ {
		start := time.Now()
		_, err := queryStatus(sock, 2*time.Second)
		if err == nil || !strings.Contains(err.Error(), "SIGUSR1") {
			t.Fatalf("query %d of a hung daemon: %v", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("query %d took %v", i, d)
		}
	}
}

// A client that connects and never reads cannot hold the daemon: others
// are answered meanwhile.
func TestStatusSlowClient(t *testing.T) {
	sock := filepath.Join(shortDir(t), "1.sock")
	s, err := serveStatus(sock, testState(t).snapshot, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		c, err := netDial(sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, err := queryStatus(sock, time.Second); err != nil {
		t.Fatal(err)
	}
}

// `brickfs status` says what is wrong when there is nothing to ask, and
// exits non-zero.
func TestStatusCommandErrors(t *testing.T) {
	old := mountRecords
	mountRecords = filepath.Join(t.TempDir(), "mounts")
	defer func() { mountRecords = old }()
	var out, errb bytes.Buffer
	dir := t.TempDir()
	if rc := statusMain([]string{dir}, &out, &errb); rc == 0 || !strings.Contains(errb.String(), "no brickfs mount at "+dir+": nothing is mounted there") {
		t.Errorf("status of a plain directory: rc %d, %q", rc, errb.String())
	}
	errb.Reset()
	if rc := statusMain(nil, &out, &errb); rc == 0 || !strings.Contains(errb.String(), "no brickfs mounts on this host") {
		t.Errorf("status with no mounts: rc %d, %q", rc, errb.String())
	}
	errb.Reset()
	if rc := statusMain([]string{"/proc"}, &out, &errb); rc == 0 || !strings.Contains(errb.String(), "no brickfs mount at /proc: it is a proc mount") {
		t.Errorf("status of /proc: rc %d, %q", rc, errb.String())
	}
	errb.Reset()
	if rc := statusMain([]string{"--bogus"}, &out, &errb); rc != ExitUsage {
		t.Errorf("unknown flag: rc %d", rc)
	}
}

// The JSON form is the document the daemon sent, indented.
func TestStatusJSONForm(t *testing.T) {
	var buf bytes.Buffer
	writeJSON(&buf, testState(t).snapshot())
	var doc statusDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.Graph == nil || doc.Graph.Children[0].Replica.BricksUp != 2 {
		t.Fatalf("json: %v %+v", err, doc)
	}
}

func netDial(sock string) (net.Conn, error) { return net.Dial("unix", sock) }

// The volfile status shows has no brick password.
func TestRedactVolfile(t *testing.T) {
	in := "volume v-client-0\n    type protocol/client\n    option username 6d1c\n    option password 9f3e-secret\n    option remote-host h\nend-volume\n"
	out := redactVolfile(in)
	if strings.Contains(out, "9f3e-secret") || !strings.Contains(out, "    option password (redacted)\n") || !strings.Contains(out, "option username 6d1c") || !strings.Contains(out, "option remote-host h") {
		t.Errorf("redacted:\n%s", out)
	}
}

// At start the daemon removes the status sockets of daemons that are gone
// (one killed, or one that exited past closeLimit), keeps live ones', and
// serves its own as root's alone.
func TestStatusSocketStale(t *testing.T) {
	dir := shortDir(t)
	dead := filepath.Join(dir, "2147483646.sock") // no such pid
	live := filepath.Join(dir, strconv.Itoa(os.Getppid())+".sock")
	for _, p := range []string{dead, live} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock")
	s, err := serveStatus(sock, testState(t).snapshot, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(dead); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket of a dead daemon is still there (%v)", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the socket of a live daemon was removed: %v", err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the status socket: %v, %v; want mode 0600", fi.Mode(), err)
	}
}

// `brickfs status` says what happened to a mount that gives no status,
// and what to do: a fake mount record (for /proc) and socket in a temp
// directory stand for the daemon.
func TestStatusCommandDaemonErrors(t *testing.T) {
	oldRec, oldDir := mountRecords, statusDir
	mountRecords, statusDir = filepath.Join(t.TempDir(), "mounts"), shortDir(t)
	defer func() { mountRecords, statusDir = oldRec, oldDir }()
	dev, ok := mountDev("/proc")
	if !ok {
		t.Skip("no /proc mount to stand for a brickfs mount")
	}
	if err := os.MkdirAll(mountRecords, 0o755); err != nil {
		t.Fatal(err)
	}
	record := func(pid int) {
		if err := os.WriteFile(filepath.Join(mountRecords, dev), []byte(fmt.Sprintf("%d\n/proc\n", pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(what string, args []string, want string) {
		t.Helper()
		var out, errb bytes.Buffer
		if rc := statusMain(args, &out, &errb); rc == 0 || !strings.Contains(errb.String(), want) {
			t.Errorf("%s: rc %d, %q; want it to say %q", what, rc, errb.String(), want)
		}
	}
	const dead = 2147483646 // no such pid
	gone := "the brickfs daemon (pid 2147483646) of /proc is gone; unmount it (`brickfs unmount /proc` or `umount /proc`) and mount again"
	record(dead)
	run("a dead daemon, all mounts", nil, gone)
	run("a dead daemon, its mount", []string{"/proc"}, gone)

	// A live daemon that answers with an error.
	me := os.Getpid()
	record(me)
	l, err := net.Listen("unix", statusSocket(me))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(`{"error":"the graph is held; send it SIGUSR1 for a statedump"}` + "\n"))
			c.Close()
		}
	}()
	var out, errb bytes.Buffer
	statusMain(nil, &out, &errb)
	if e := errb.String(); !strings.Contains(e, "the mount at /proc answered: the graph is held") || strings.Contains(e, "does not answer") || strings.Count(e, "SIGUSR1") != 1 {
		t.Errorf("a daemon that answered an error: %q", e)
	}
	// A live daemon whose socket refuses.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	run("a socket that refuses", nil, "the mount at /proc does not answer on its status socket")

	// A socket that refuses, its daemon dead meanwhile.
	refused := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if got := statusError(brickfsMount{MountPoint: "/proc", PID: dead}, "/x.sock", refused); got != gone {
		t.Errorf("refused by a dead daemon: %q", got)
	}
	// Not root.
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	if got := statusError(brickfsMount{MountPoint: "/proc", PID: me}, "/x.sock", denied); !strings.Contains(got, "root's only: run `sudo brickfs status`") {
		t.Errorf("a socket the user may not use: %q", got)
	}
}
