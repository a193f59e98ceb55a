package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/fuse"
)

// `brickfs status`: each mount daemon serves its state on a unix socket,
// statusDir/PID.sock. The mount's record (mountRecords/MAJOR:MINOR, see
// recordMount) names the daemon's pid, so `brickfs status MOUNTPOINT`
// finds the socket from the mount's device in /proc/self/mountinfo, and
// `brickfs status` alone walks every record whose mount is still there.
//
// The protocol is one JSON document (statusDoc) the daemon writes on
// every connection, then closes. The daemon builds it from atomics and
// short critical sections (fop.Status), on a goroutine of its own with a
// deadline: a snapshot that hangs (a volfile change holding the graph)
// is answered with an error and leaves the daemon's I/O alone; at most
// statusBusy snapshots run at once. The command gives up after
// statusClientTimeout.

// statusDir holds the daemons' status sockets.
var statusDir = "/run/brickfs"

// statusSnapTimeout is the daemon's wait for a snapshot (tests shorten it).
var statusSnapTimeout = 2 * time.Second

const (
	statusConnTimeout   = 5 * time.Second // the daemon's deadline on a connection
	statusClientTimeout = 5 * time.Second // the command's wait for an answer
	statusBusy          = 4               // snapshots running at once
)

// statusSocket is where the daemon with pid serves its status.
func statusSocket(pid int) string { return filepath.Join(statusDir, strconv.Itoa(pid)+".sock") }

// statusDoc is what a mount says of itself.
type statusDoc struct {
	// Error is set, and the rest may be empty, when the daemon could not
	// take its snapshot in time.
	Error      string    `json:"error,omitempty"`
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	MountPoint string    `json:"mountpoint"`
	Spec       string    `json:"spec"`
	Volume     string    `json:"volume"`
	Started    time.Time `json:"started"`
	Uptime     float64   `json:"uptime_seconds"`
	RSSBytes   int64     `json:"rss_bytes"`
	Goroutines int       `json:"goroutines"`
	Fds        int       `json:"fds"`
	HeapInuse  uint64    `json:"heap_inuse_bytes"`
	FuseInodes int64     `json:"fuse_inodes"` // inodes the kernel knows of the mount
	FuseFiles  int64     `json:"fuse_open_files"`
	// FuseBuffers are the buffers FUSE requests and replies travel in.
	FuseBuffers *fuse.BufferStats `json:"fuse_buffers,omitempty"`
	Volfile     *volfileInUse     `json:"volfile,omitempty"`
	Metrics     string            `json:"metrics,omitempty"` // the /metrics address, if served
	Pprof       string            `json:"pprof,omitempty"`   // the /debug/pprof/ address, if served
	Graph       *fop.Status       `json:"graph,omitempty"`
}

// volfileInUse is the volfile the graph was built from, and where it came
// from.
type volfileInUse struct {
	Source string    `json:"source"` // "server" or "cache"
	From   string    `json:"from"`   // the glusterd that served it, or the cache directory
	At     time.Time `json:"at"`     // when fetched, or when the cached copy was saved
	Text   string    `json:"text"`   // with the bricks' passwords redacted
}

// redactVolfile hides the bricks' auth.login passwords a trusted volfile
// carries (`option password ...`): status is for looking, not for
// handing out credentials, even on a root-only socket.
func redactVolfile(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == "option" && f[1] == "password" {
			lines[i] = l[:strings.Index(l, "password")+len("password")] + " (redacted)"
		}
	}
	return strings.Join(lines, "\n")
}

// mountState is what the daemon knows of its mount for status, metrics
// and statedumps.
type mountState struct {
	m       Mount
	volume  string
	started time.Time
	graph   func() fop.Status // the volume's Status
	tables  func() (inodes, files int64)
	buffers func() fuse.BufferStats
	volfile atomic.Pointer[volfileInUse]
	metrics string
	pprof   string
}

func (s *mountState) snapshot() statusDoc {
	g := s.graph()
	d := takeStatedump(fop.Status{}, 0, 0, s.started)
	doc := statusDoc{
		Version: Version, PID: os.Getpid(), MountPoint: s.m.MountPoint, Spec: s.m.Spec, Volume: s.volume,
		Started: s.started, Uptime: d.Uptime.Seconds(), RSSBytes: d.RSSKiB << 10, Goroutines: d.Goroutines, Fds: d.Fds,
		HeapInuse: d.HeapInuse, Volfile: s.volfile.Load(), Metrics: s.metrics, Pprof: s.pprof, Graph: &g,
	}
	if s.tables != nil {
		doc.FuseInodes, doc.FuseFiles = s.tables()
	}
	if s.buffers != nil {
		b := s.buffers()
		doc.FuseBuffers = &b
	}
	return doc
}

// statusServer serves snapshots on a unix socket.
type statusServer struct {
	l    net.Listener
	path string
	snap func() statusDoc
	log  *zap.Logger
	busy chan struct{}
	wg   sync.WaitGroup
	// snapTimeout is statusSnapTimeout when the server started.
	snapTimeout time.Duration
}

// serveStatus listens on path (a stale socket left by a dead daemon with
// the same pid is replaced, and so are those of other dead daemons in its
// directory) and serves snap until Close. The socket is root's alone
// (0600) from the moment it exists: it is made under umask 077, since
// the directory also holds the mount records, which anyone may read.
func serveStatus(path string, snap func() statusDoc, log *zap.Logger) (*statusServer, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("status socket: %v", err)
	}
	removeStaleSockets(dir, log)
	_ = os.Remove(path)
	l, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("status socket: %v", err)
	}
	s := &statusServer{l: l, path: path, snap: snap, log: log, busy: make(chan struct{}, statusBusy), snapTimeout: statusSnapTimeout}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// umaskMu serializes listenPrivate's umask changes (the umask is the
// process's).
var umaskMu sync.Mutex

// listenPrivate listens on the unix socket path made with mode 0700 at
// most (umask 077), so no other user can connect before its chmod.
func listenPrivate(path string) (net.Listener, error) {
	umaskMu.Lock()
	defer umaskMu.Unlock()
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

// removeStaleSockets removes dir's status sockets (PID.sock) of daemons
// that are gone: one killed, or one that exited past closeLimit.
func removeStaleSockets(dir string, log *zap.Logger) {
	socks, _ := filepath.Glob(filepath.Join(dir, "*.sock"))
	for _, p := range socks {
		pid, err := strconv.Atoi(strings.TrimSuffix(filepath.Base(p), ".sock"))
		if err != nil || pid <= 0 || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		if err := os.Remove(p); err == nil {
			log.Info("removed the status socket of a daemon that is gone", zap.String("path", p), zap.Int("pid", pid))
		}
	}
}

func (s *statusServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("status socket stopped", zap.String("path", s.path), zap.Error(err))
			}
			return
		}
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.answer(c) }()
	}
}

// answer writes one snapshot to c. The snapshot runs on its own goroutine
// (released when it ends, however late): this one waits at most
// snapTimeout for it and answers with an error past that.
func (s *statusServer) answer(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(statusConnTimeout))
	var doc statusDoc
	select {
	case s.busy <- struct{}{}:
		got := make(chan statusDoc, 1)
		go func() {
			defer func() { <-s.busy }()
			got <- s.snap()
		}()
		t := time.NewTimer(s.snapTimeout)
		select {
		case doc = <-got:
		case <-t.C:
			doc = statusDoc{Error: fmt.Sprintf("the daemon did not take its snapshot within %v; its graph is held (a volfile change under way?): try again, or send it SIGUSR1 for a statedump", s.snapTimeout)}
		}
		t.Stop()
	default:
		doc = statusDoc{Error: fmt.Sprintf("%d status snapshots are already under way and not done; the daemon's graph is held: try again later, or send it SIGUSR1 for a statedump", statusBusy)}
	}
	doc.PID = os.Getpid()
	b, err := json.Marshal(doc)
	if err != nil {
		b, _ = json.Marshal(statusDoc{PID: doc.PID, Error: err.Error()})
	}
	_, _ = c.Write(append(b, '\n'))
}

// Close stops serving and removes the socket. A snapshot still running
// is not waited for.
func (s *statusServer) Close() {
	_ = s.l.Close()
	s.wg.Wait()
	_ = os.Remove(s.path)
}

// queryStatus asks the daemon at sock for its status.
func queryStatus(sock string, timeout time.Duration) (statusDoc, error) {
	var doc statusDoc
	c, err := net.DialTimeout("unix", sock, timeout)
	if err != nil {
		return doc, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(io.LimitReader(c, 64<<20))
	if err != nil {
		return doc, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return doc, fmt.Errorf("not a status answer: %v", err)
	}
	if doc.Error != "" {
		return doc, &answeredError{msg: doc.Error}
	}
	return doc, nil
}

// brickfsMount is a mount some brickfs daemon recorded as its own.
type brickfsMount struct {
	MountPoint string
	PID        int
}

// readRecord reads the mount record of device dev.
func readRecord(dev string) (brickfsMount, bool) {
	b, err := os.ReadFile(filepath.Join(mountRecords, dev))
	if err != nil {
		return brickfsMount{}, false
	}
	f := strings.Split(string(b), "\n")
	if len(f) < 2 {
		return brickfsMount{}, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return brickfsMount{}, false
	}
	return brickfsMount{MountPoint: f[1], PID: pid}, true
}

// findMount finds the daemon serving the mount at mnt.
func findMount(mnt string) (brickfsMount, error) {
	abs, err := filepath.Abs(mnt)
	if err != nil {
		return brickfsMount{}, err
	}
	src, typ, ok := mountedAt(abs)
	if !ok {
		return brickfsMount{}, fmt.Errorf("no brickfs mount at %s: nothing is mounted there (see `brickfs status` for every brickfs mount)", abs)
	}
	dev, _ := mountDev(abs)
	rec, ok := readRecord(dev)
	if !ok || rec.MountPoint != abs {
		if typ != "fuse.brickfs" {
			return brickfsMount{}, fmt.Errorf("no brickfs mount at %s: it is a %s mount of %s", abs, typ, src)
		}
		return brickfsMount{}, fmt.Errorf("the brickfs mount at %s has no record of its daemon in %s (a daemon that could not write it, or one that died: then `brickfs unmount %s`)", abs, mountRecords, abs)
	}
	if daemonGone(rec.PID) {
		return brickfsMount{}, goneError(rec)
	}
	return rec, nil
}

// daemonGone reports whether no process has pid.
func daemonGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

// goneError says what to do with a mount whose daemon died.
func goneError(rec brickfsMount) error {
	return fmt.Errorf("the brickfs daemon (pid %d) of %s is gone; unmount it (`brickfs unmount %s` or `umount %s`) and mount again",
		rec.PID, rec.MountPoint, rec.MountPoint, rec.MountPoint)
}

// answeredError is the error a daemon answered with (statusDoc.Error).
type answeredError struct{ msg string }

func (e *answeredError) Error() string { return e.msg }

// statusError is the line `brickfs status` prints when the daemon of rec
// gave no status on sock.
func statusError(rec brickfsMount, sock string, err error) string {
	var ans *answeredError
	switch {
	case errors.As(err, &ans):
		return fmt.Sprintf("the mount at %s answered: %s", rec.MountPoint, ans.msg)
	case (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)) && daemonGone(rec.PID):
		return goneError(rec).Error()
	case errors.Is(err, syscall.ENOENT):
		return fmt.Sprintf("the daemon of the mount at %s (pid %d) serves no status socket %s: a brickfs from before `brickfs status`, or one that could not make the socket (see its log); remount it with this brickfs to see its status",
			rec.MountPoint, rec.PID, sock)
	case errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("the status socket of the mount at %s (%s) is root's only: run `sudo brickfs status`", rec.MountPoint, sock)
	}
	return fmt.Sprintf("the mount at %s does not answer on its status socket %s: %v; see its log, or send the daemon (pid %d) SIGUSR1 for a statedump",
		rec.MountPoint, sock, err, rec.PID)
}

// allMounts lists the recorded mounts still mounted, their daemons alive
// or not (statusMain says which are gone).
func allMounts() []brickfsMount {
	ents, err := os.ReadDir(mountRecords)
	if err != nil {
		return nil
	}
	var out []brickfsMount
	for _, e := range ents {
		rec, ok := readRecord(e.Name())
		if !ok {
			continue
		}
		if dev, ok := mountDev(rec.MountPoint); !ok || dev != e.Name() {
			continue // a record left by a mount that is gone
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MountPoint < out[j].MountPoint })
	return out
}

// statusMain runs `brickfs status [MOUNTPOINT] [--json]`.
func statusMain(args []string, stdout, stderr io.Writer) int {
	asJSON := false
	var pos []string
	for _, a := range args {
		switch {
		case a == "--json" || a == "-j":
			asJSON = true
		case a == "-h" || a == "--help":
			fmt.Fprintln(stdout, "usage: brickfs status [MOUNTPOINT] [--json]\n\nThe state of a brickfs mount (every brickfs mount without MOUNTPOINT): its volume\ngraph with each brick's and replica set's figures, its volfile, uptime and memory.")
			return ExitOK
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(stderr, "brickfs: status: unknown flag %q; usage: brickfs status [MOUNTPOINT] [--json]\n", a)
			return ExitUsage
		default:
			pos = append(pos, a)
		}
	}
	if len(pos) > 1 {
		fmt.Fprintln(stderr, "brickfs: usage: brickfs status [MOUNTPOINT] [--json]")
		return ExitUsage
	}
	var mounts []brickfsMount
	if len(pos) == 1 {
		rec, err := findMount(pos[0])
		if err != nil {
			fmt.Fprintf(stderr, "brickfs: %v\n", err)
			return ExitFail
		}
		mounts = []brickfsMount{rec}
	} else if mounts = allMounts(); len(mounts) == 0 {
		fmt.Fprintln(stderr, "brickfs: no brickfs mounts on this host (mount one with `brickfs mount` or `mount -t brickfs`)")
		return ExitFail
	}
	rc := ExitOK
	var docs []statusDoc
	for _, rec := range mounts {
		if daemonGone(rec.PID) {
			fmt.Fprintf(stderr, "brickfs: %v\n", goneError(rec))
			rc = ExitFail
			continue
		}
		sock := statusSocket(rec.PID)
		doc, err := queryStatus(sock, statusClientTimeout)
		if err != nil {
			fmt.Fprintf(stderr, "brickfs: %s\n", statusError(rec, sock, err))
			rc = ExitFail
			continue
		}
		docs = append(docs, doc)
	}
	switch {
	case asJSON && len(pos) == 1:
		if len(docs) == 1 {
			writeJSON(stdout, docs[0])
		}
	case asJSON:
		writeJSON(stdout, docs)
	default:
		for i, d := range docs {
			if i > 0 {
				fmt.Fprintln(stdout)
			}
			fmt.Fprint(stdout, renderStatus(d))
		}
	}
	return rc
}

func writeJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintf(w, "%s\n", b)
}

// renderStatus is the human form of a mount's status.
func renderStatus(d statusDoc) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (volume %s), brickfs %s, pid %d\n", d.MountPoint, d.Spec, d.Volume, d.Version, d.PID)
	fmt.Fprintf(&b, "  up %s, RSS %s, heap %s, %d goroutines, %d fds; the kernel knows %d inodes, holds %d files open\n", time.Duration(d.Uptime*float64(time.Second)).Round(time.Second).String(),
		bytesText(uint64(d.RSSBytes)), bytesText(d.HeapInuse), d.Goroutines, d.Fds, d.FuseInodes, d.FuseFiles)
	if fb := d.FuseBuffers; fb != nil {
		fmt.Fprintf(&b, "  FUSE buffers: %s in use, %s idle and kept, %s mapped in %d buffers; idle ones gave their pages back %d times\n",
			bytesText(uint64(fb.InUse)), bytesText(uint64(fb.Warm)), bytesText(uint64(fb.Mapped)), fb.Maps, fb.Released)
	}
	if v := d.Volfile; v != nil {
		switch v.Source {
		case "cache":
			fmt.Fprintf(&b, "  volfile: the last good copy in %s, saved %s (%d bytes): no volfile server answered at mount\n", v.From, v.At.Format(time.RFC3339), len(v.Text))
		default:
			fmt.Fprintf(&b, "  volfile: fetched from %s at %s (%d bytes)\n", v.From, v.At.Format(time.RFC3339), len(v.Text))
		}
	}
	if d.Metrics != "" {
		fmt.Fprintf(&b, "  metrics: http://%s/metrics\n", d.Metrics)
	}
	if d.Pprof != "" {
		fmt.Fprintf(&b, "  profiles: http://%s/debug/pprof/\n", d.Pprof)
	}
	if d.Graph != nil {
		b.WriteString("graph:\n")
		renderNode(&b, *d.Graph, 1)
	}
	return b.String()
}

func renderNode(b *strings.Builder, s fop.Status, depth int) {
	ind := strings.Repeat("  ", depth)
	state := "down"
	if s.Up {
		state = "up"
	}
	fmt.Fprintf(b, "%s%s (%s) %s", ind, s.Name, s.Type, state)
	switch {
	case s.Brick != nil:
		k := s.Brick
		fmt.Fprintf(b, ": %s:%d %s", k.Host, k.Port, k.Path)
		if k.Connected {
			fmt.Fprintf(b, ", connected since %s, ping %s", k.Since.Format(time.RFC3339), durText(k.PingRTT))
		} else {
			b.WriteString(", NOT CONNECTED")
		}
		fmt.Fprintf(b, ", %d in flight (%d calls pending), %d reconnects, %d calls, %d failed, sent %s, received %s\n",
			k.Inflight, k.Pending, k.Reconnects, k.Calls, k.Errors, bytesText(k.BytesSent), bytesText(k.BytesReceived))
		if k.LastError != "" {
			fmt.Fprintf(b, "%s  last error %s: %s\n", ind, k.LastErrorAt.Format(time.RFC3339), k.LastError)
		}
	case s.Replica != nil:
		r := s.Replica
		q := "met"
		if !r.QuorumMet {
			q = "NOT MET"
		}
		fmt.Fprintf(b, ": %d of %d bricks up, quorum %s %s, %d files to heal, %d split-brain, %d cuts; %d inodes, %d fds, %d eager locks\n",
			r.BricksUp, r.Bricks, r.Quorum, q, r.HealPending, r.SplitBrain, r.Cuts, r.Inodes, r.Fds, r.EagerLocks)
		if len(r.Lagging) > 0 {
			fmt.Fprintf(b, "%s  lagging: %s\n", ind, strings.Join(r.Lagging, ", "))
		}
		for _, f := range r.Failovers {
			if len(f.Events) == 0 {
				continue
			}
			var ev []string
			for _, k := range sortedKeys(f.Events) {
				ev = append(ev, fmt.Sprintf("%s %d", k, f.Events[k]))
			}
			fmt.Fprintf(b, "%s  failovers of %s: %s", ind, f.Brick, strings.Join(ev, ", "))
			if f.StallCount > 0 {
				fmt.Fprintf(b, "; last stall %s, mean %s", durText(f.LastStall), durText(f.Stalls/time.Duration(f.StallCount)))
			}
			b.WriteByte('\n')
		}
	case s.Fops != nil:
		fs := s.Fops
		fmt.Fprintf(b, ": read %s, written %s\n", bytesText(fs.BytesRead), bytesText(fs.BytesWritten))
		for _, f := range fs.Fops {
			line := fmt.Sprintf("%s  %-16s %10d  mean %-9s p99 <= %-9s", ind, f.Fop, f.Count, durText(f.Total/time.Duration(f.Count)), durText(quantile(fs.Buckets, f.Buckets, 0.99)))
			if len(f.Errors) > 0 {
				var ev []string
				for _, k := range sortedKeys(f.Errors) {
					ev = append(ev, fmt.Sprintf("%s %d", k, f.Errors[k]))
				}
				line += "  errors: " + strings.Join(ev, ", ")
			}
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	default:
		if s.Detail != "" {
			fmt.Fprintf(b, ": %s", s.Detail)
		}
		b.WriteByte('\n')
	}
	for _, c := range s.Children {
		renderNode(b, c, depth+1)
	}
}

// quantile is the upper bound of the bucket holding quantile q of the
// counts (the last bound for calls past it).
func quantile(bounds []time.Duration, counts []uint64, q float64) time.Duration {
	var n uint64
	for _, c := range counts {
		n += c
	}
	if n == 0 || len(bounds) == 0 {
		return 0
	}
	want := uint64(q*float64(n) + 0.5)
	var seen uint64
	for i, c := range counts {
		seen += c
		if seen >= want {
			return bounds[min(i, len(bounds)-1)]
		}
	}
	return bounds[len(bounds)-1]
}

func sortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func durText(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
