// Command bench runs fio side by side through brickfs, the native GlusterFS
// client, libgfapi and a local directory, on the same volumes of a local
// 3-node cluster, and prints one markdown table per volume type. It is what
// `make bench-fio` (and `make bench`) runs; it is a benchmark, not a CI test.
//
//	bench [-volumes single,rep3,rep3shard,dist] [-clients brickfs,native,native-strict,gfapi,local]
//	      [-jobs ...] [-repeats 3] [-runtime 15s] [-size 1G] [-multi-size 256M] [-o FILE]
//
// Every flag defaults to an environment variable of the same name in upper
// case (VOLUMES, CLIENTS, JOBS, REPEATS, RUNTIME, SIZE, MULTI_SIZE, OUT), so
// that `sudo make bench VOLUMES=rep3 REPEATS=1 RUNTIME=5` works; lists are
// separated by spaces or commas.
//
// The cluster is the integration harness's: three glusterds on 127.a.b.1-3,
// one loop-mounted XFS filesystem per node for the bricks (on the machine's
// disk, in the run directory under /tmp). The volumes:
//
//	single     1 brick (node 1)
//	rep3       replica 3
//	rep3shard  replica 3 with features.shard on (shard-block-size 64MB, the default)
//	dist       2 x 3 distributed-replicate (two bricks per node)
//
// all with GlusterFS's default options otherwise. The clients:
//
//	brickfs        bin/brickfs mount -o log-level=info; fio --ioengine=libaio
//	native         mount -t glusterfs; libaio
//	native-strict  mount -t glusterfs -o xlator-option=VOL-write-behind.strict-O_DIRECT=on
//	               (the per-mount form of performance.strict-o-direct on, which
//	               `group virt` sets): O_DIRECT writes acknowledged only once the
//	               bricks have them, as brickfs always does
//	gfapi          fio --ioengine=gfapi_async: libgfapi inside fio, no FUSE
//	local          libaio on a directory of node 1's brick filesystem: the
//	               limit of the disk stack under the bricks (no network, one copy)
//	brickfs+O1+O2  brickfs with more mount options O1, O2 (e.g.
//	               brickfs+memory-limit=64M), side by side with brickfs
//	brickfs@PATH   another build of brickfs (the binary at PATH, e.g. one
//	               built from main), side by side with this one; +O1+O2
//	               may follow PATH
//
// Each volume has one file of -size and four of -multi-size (vm.0-vm.3, the
// multi-job run's), written once through the first mounted client, that
// every client then reads and writes. The jobs (all direct=1, time-based,
// no ramp):
//
//	randread4k-qd1, randread4k-qd16, randwrite4k-qd1, randwrite4k-qd16
//	randrw64k-qd8     64k random, 70 % reads
//	seqread1m-qd4, seqwrite1m-qd4
//	multi4            4 VMs' disks at once: 4 fio jobs, one file each,
//	                  random 4k-1M blocks, 60 % reads, QD8 each
//	multi4-qd64       multi4 at QD16 each (64 in flight: the memory
//	                  bound); run only when named in -jobs
//
// Runs are interleaved: per job, per repeat, per volume, every client in
// turn (the order reversed on even repeats), so that a job's repeats are
// close in time and no job inherits the memory of one that comes later.
// Each (job, client) cell shows the median over the repeats with min-max,
// total latency (submission + completion, fio's lat_ns) p50, p99 and p99.9
// (medians; a mixed job's are over reads and writes together), the
// median's ratio to native-strict and to gfapi, and for the FUSE clients the
// daemon's CPU seconds (utime+stime from /proc/PID/stat, sampled before
// fio starts and after it exits) per GiB moved and per 10k I/Os, and its
// peak RSS over the run: VmHWM after the run, with the high-water mark
// reset through /proc/PID/clear_refs just before it (the mounts stay up for
// the whole benchmark), and VmRSS sampled every 100 ms as a floor. Beside
// the client's, where the rest of the machine's CPU went: the volume's
// brick processes' and fio's CPU per GiB and the host's busy share
// (/proc/stat), which near 100 % says the CPUs bound every client.
//
// The client brickfs-lib (only when named) is brickfs's graph opened in
// the bench's own process and driven by goroutines, a worker per I/O in
// flight: brickfs without FUSE and fio, the counterpart of gfapi; its CPU
// is the bench process's. Against brickfs it shows what the FUSE round
// trip costs, against the others what brickfs's layers and the bricks do.
//
// A run that fails is shown as such and makes the exit status non-zero;
// a mount that fails ends the benchmark. Everything it mounted or started
// is torn down at the end, also on failure or ^C (the table of what ran so
// far is still printed). Must run as root, with bin/brickfs built.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/failover"
	"github.com/brickfs/brickfs/integration"
)

// volumeKinds are the volume types, in table order.
var volumeKinds = []struct {
	name, desc string
	kind       integration.Kind
	shard      bool
}{
	{"single", "single brick", integration.Single, false},
	{"rep3", "replica 3", integration.Replica3, false},
	{"rep3shard", "replica 3, sharded: features.shard on, 64 MB blocks", integration.Replica3, true},
	{"dist", "2 x 3 distributed-replicate", integration.Dist2Replica3, false},
}

var allClients = []string{"brickfs", "native", "native-strict", "gfapi", "local"}

// brickfsVariant starts a client that is brickfs mounted with more
// options, each after a "+": "brickfs+memory-limit=64M+lag-timeout=1s".
const brickfsVariant = "brickfs+"

// brickfsBuild starts a client that is another build of brickfs, at the
// path after the "@", with more options after it as for brickfsVariant:
// "brickfs@/tmp/old/brickfs", "brickfs@/tmp/old/brickfs+procs=1".
const brickfsBuild = "brickfs@"

// variant is the binary (empty: the built one) and the more mount options
// a brickfsVariant or brickfsBuild client names.
func variant(cl string) (bin string, opts []string) {
	rest, ok := strings.CutPrefix(cl, brickfsBuild)
	if !ok {
		rest = strings.TrimPrefix(cl, "brickfs")
	}
	f := strings.Split(rest, "+")
	if ok {
		bin = f[0]
	}
	for _, o := range f[1:] {
		if o != "" {
			opts = append(opts, o)
		}
	}
	return bin, opts
}

const mainFile = "bench.img"

// config is what the flags say.
type config struct {
	volumes []string
	clients []string
	jobs    []Job
	repeats int
	runtime time.Duration
	size    string
	multi   string
	out     string
	rawDir  string // fio's JSON of every run
	// libProfile: write a CPU profile of every brickfs-lib run to rawDir.
	libProfile bool
	fsMiB      int
	cmdline    string
	// brickfsOpts are brickfs's mount options: log-level=info and
	// -brickfs-opts, one per element (the harness reads log-file= and
	// others from them).
	brickfsOpts []string
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func parseConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	volumes := fs.String("volumes", envOr("VOLUMES", "single rep3 rep3shard dist"), "volume types: single rep3 rep3shard dist ($VOLUMES)")
	clients := fs.String("clients", envOr("CLIENTS", strings.Join(allClients, " ")), "clients: brickfs native native-strict gfapi local, brickfs+OPT+OPT...; brickfs-lib (brickfs's graph in this process, no FUSE, no fio) only when named ($CLIENTS)")
	jobList := fs.String("jobs", envOr("JOBS", ""), "jobs (default all): randread4k-qd1 randread4k-qd16 randwrite4k-qd1 randwrite4k-qd16 randrw64k-qd8 seqread1m-qd4 seqwrite1m-qd4 multi4; multi4-qd64 only when named ($JOBS)")
	repeats := fs.Int("repeats", 3, "runs of each (job, client) ($REPEATS)")
	runtimeF := fs.String("runtime", envOr("RUNTIME", "15"), "seconds of each fio run, or a duration ($RUNTIME)")
	size := fs.String("size", envOr("SIZE", "1G"), "the file of the single-file jobs ($SIZE)")
	multi := fs.String("multi-size", envOr("MULTI_SIZE", "256M"), "each of the multi-job run's four files ($MULTI_SIZE)")
	out := fs.String("o", envOr("OUT", ""), "write the tables here (default /tmp/brickfs-bench-DATE.md) ($OUT)")
	libProfileEnv, perr := strconv.ParseBool(envOr("LIB_PROFILE", "false"))
	if perr != nil {
		return config{}, fmt.Errorf("LIB_PROFILE=%q: want 1 or 0 (true or false)", os.Getenv("LIB_PROFILE"))
	}
	libProfile := fs.Bool("lib-profile", libProfileEnv, "write a Go CPU profile of every brickfs-lib run beside fio's JSON ($LIB_PROFILE=1)")
	bopts := fs.String("brickfs-opts", envOr("BRICKFS_OPTS", ""), "more mount options for brickfs, comma-separated, e.g. memory-limit=64M,pprof=127.0.0.1:6060 ($BRICKFS_OPTS)")
	if v := os.Getenv("REPEATS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return config{}, fmt.Errorf("REPEATS=%q: want a number", v)
		}
		*repeats = n
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	c := config{volumes: list(*volumes), clients: list(*clients), repeats: *repeats, size: *size, multi: *multi, out: *out}
	c.brickfsOpts = []string{"log-level=info"}
	for _, o := range strings.Split(*bopts, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.brickfsOpts = append(c.brickfsOpts, o)
		}
	}
	for _, v := range c.volumes {
		ok := false
		for _, k := range volumeKinds {
			ok = ok || k.name == v
		}
		if !ok {
			return c, fmt.Errorf("unknown volume %q; volumes are single rep3 rep3shard dist", v)
		}
	}
	for _, cl := range c.clients {
		bin, _ := variant(cl)
		ok := strings.HasPrefix(cl, brickfsVariant) && len(cl) > len(brickfsVariant) || cl == libClient ||
			strings.HasPrefix(cl, brickfsBuild) && bin != ""
		for _, k := range allClients {
			ok = ok || k == cl
		}
		if ok && bin != "" {
			if st, err := os.Stat(bin); err != nil || st.Mode()&0o111 == 0 || st.IsDir() {
				return c, fmt.Errorf("client %s: no brickfs binary at %s (%v); build one there, e.g. git worktree add /tmp/old main && (cd /tmp/old && go build -o /tmp/old/brickfs ./cmd/brickfs)", cl, bin, err)
			}
		}
		if !ok {
			return c, fmt.Errorf("unknown client %q; clients are %s, %sOPTIONS (brickfs with more mount options, e.g. %smemory-limit=64M, side by side with brickfs) and %sPATH[+OPTIONS] (another build of brickfs)",
				cl, strings.Join(allClients, " "), brickfsVariant, brickfsVariant, brickfsBuild)
		}
	}
	if len(c.volumes) == 0 || len(c.clients) == 0 {
		return c, fmt.Errorf("no volumes or no clients chosen")
	}
	if has(c.clients, libClient) && !slices.ContainsFunc(c.clients, func(cl string) bool { return cl != libClient && cl != "local" }) {
		return c, fmt.Errorf("%s writes no files of its own: add a client that writes them (brickfs, native or gfapi)", libClient)
	}
	var err error
	if c.jobs, err = SelectJobs(list(*jobList)); err != nil {
		return c, err
	}
	if c.repeats < 1 {
		return c, fmt.Errorf("-repeats %d: want 1 or more", c.repeats)
	}
	if n, err := strconv.Atoi(*runtimeF); err == nil {
		c.runtime = time.Duration(n) * time.Second
	} else if c.runtime, err = time.ParseDuration(*runtimeF); err != nil {
		return c, fmt.Errorf("-runtime %q: want seconds or a duration", *runtimeF)
	}
	if c.runtime < time.Second {
		return c, fmt.Errorf("-runtime %v: want 1s or more", c.runtime)
	}
	sb, err1 := parseSize(c.size)
	mb, err2 := parseSize(c.multi)
	if err := errors.Join(err1, err2); err != nil {
		return c, err
	}
	// Node 1 holds, per volume and for the local directory, the file and
	// the four multi-job files (both of dist's replica sets at worst).
	per := int((sb + 4*mb) >> 20)
	c.fsMiB = max(1024, (len(c.volumes)+1)*per*11/10+512)
	if c.out == "" {
		c.out = fmt.Sprintf("/tmp/brickfs-bench-%s.md", time.Now().Format("20060102-150405"))
	}
	c.rawDir = strings.TrimSuffix(c.out, ".md") + "-fio"
	c.libProfile = *libProfile
	c.cmdline = fmt.Sprintf("VOLUMES=%q CLIENTS=%q JOBS=%q REPEATS=%d RUNTIME=%d SIZE=%s MULTI_SIZE=%s",
		strings.Join(c.volumes, " "), strings.Join(c.clients, " "), jobNames(c.jobs), c.repeats, int(c.runtime.Seconds()), c.size, c.multi)
	if len(c.brickfsOpts) > 1 {
		c.cmdline += fmt.Sprintf(" BRICKFS_OPTS=%q", strings.Join(c.brickfsOpts[1:], ","))
	}
	return c, nil
}

func jobNames(js []Job) string {
	var n []string
	for _, j := range js {
		n = append(n, j.Name)
	}
	return strings.Join(n, " ")
}

func has(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// preflight checks what the run needs before anything is started, and says
// what to do about what is missing.
func preflight(c config) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root (FUSE mounts, glusterd, loop devices); run: sudo make bench-fio")
	}
	for _, p := range []string{"fio", "glusterd", "gluster", "mkfs.xfs"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found in PATH; install it with: sudo make deps (scripts/deps.sh)", p)
		}
	}
	if has(c.clients, "native") || has(c.clients, "native-strict") {
		if _, err := exec.LookPath("mount.glusterfs"); err != nil {
			if _, err := os.Stat("/sbin/mount.glusterfs"); err != nil {
				return fmt.Errorf("mount.glusterfs not found; install glusterfs-client (sudo make deps), or leave native out of CLIENTS")
			}
		}
	}
	// The bricks' filesystems are sparse image files in the run directory
	// (under the temp directory): what the files written into them take
	// must fit, or the fill fails late with ENOSPC on a brick.
	var st syscall.Statfs_t
	if err := syscall.Statfs(os.TempDir(), &st); err == nil {
		free := int64(st.Bavail) * int64(st.Bsize) >> 20
		if need := int64(3 * c.fsMiB); free < need {
			return fmt.Errorf("%s has %d MiB free; the three bricks' filesystems may take up to %d MiB: free space there, give a larger filesystem (sudo make bench-fio TMPDIR=/big/dir), or use smaller SIZE/MULTI_SIZE or fewer VOLUMES", os.TempDir(), free, need)
		}
	}
	if has(c.clients, "gfapi") {
		out, _ := exec.Command("fio", "--enghelp").CombinedOutput()
		if !strings.Contains(string(out), "gfapi_async") {
			return fmt.Errorf("this fio has no gfapi_async engine (built without libgfapi; Debian's fio has it); install Debian's fio (sudo make deps) or leave gfapi out of CLIENTS")
		}
	}
	return nil
}

// target is where a client's fio runs go.
type target struct {
	client string
	dir    string           // mount point or local directory; "" for gfapi
	engine []string         // fio's engine arguments
	pids   []int            // the FUSE daemon(s) to measure; none for gfapi and local
	bricks []int            // the volume's brick processes (glusterfsd); none for local
	lib    *failover.Volume // brickfs-lib: the graph in this process, no fio
}

func (t target) file(name string) string {
	if t.dir == "" {
		return name // gfapi: a name at the volume's root
	}
	return filepath.Join(t.dir, name)
}

func main() {
	log.SetFlags(log.Ltime)
	log.SetOutput(os.Stderr)
	cfg, err := parseConfig(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Fatalf("bench: %v", err)
	}
	if err := preflight(cfg); err != nil {
		log.Fatalf("bench: %v", err)
	}
	if has(cfg.clients, libClient) {
		// brickfs-lib runs in this process: under the mount's defaults
		// (procs=2 at most the CPUs, memory-limit=96M), unless the
		// environment says otherwise, as it wins for the mount too.
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(min(2, runtime.NumCPU()))
		}
		if os.Getenv("GOMEMLIMIT") == "" {
			debug.SetMemoryLimit(96 << 20)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	var (
		mu      sync.Mutex
		samples []Sample
	)
	load0 := loadavg()
	start := time.Now()
	// The tree as the run starts (the binary was built from it just before).
	revb, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	rev := strings.TrimSpace(string(revb))
	var meta []string
	work, err := os.MkdirTemp("", "brickfs-bench-fio-")
	if err != nil {
		log.Fatalf("bench: %v", err)
	}
	if err := os.MkdirAll(cfg.rawDir, 0o755); err != nil {
		os.RemoveAll(work)
		log.Fatalf("bench: %v", err)
	}

	d := integration.NewProgram("bench")
	code := d.Run(func() {
		c := integration.NewCluster(d, 3)
		var fss []*integration.BackingFS
		for n := 1; n <= 3; n++ {
			fss = append(fss, c.MakeFS(d, n, "xfs", cfg.fsMiB))
		}
		interrupted(ctx, d)
		targets := map[string][]target{} // by volume
		for _, vk := range volumeKinds {
			if !has(cfg.volumes, vk.name) {
				continue
			}
			on := fss
			if vk.kind.Bricks() == 1 {
				on = fss[:1]
			} else if vk.kind.Bricks() == 6 {
				on = []*integration.BackingFS{fss[0], fss[1], fss[2], fss[0], fss[1], fss[2]}
			}
			c.CreateVolumeOn(d, vk.name, vk.kind, on...)
			if vk.shard {
				c.Set(d, vk.name, "features.shard", "on")
			}
			c.Start(d, vk.name)
			interrupted(ctx, d)
			var bricks []int
			for _, b := range c.Bricks(d, vk.name) {
				if b.PID <= 0 {
					d.Fatalf("%s: brick %s on %s is not running after the volume started; its log is under %s", vk.name, b.Path, b.Host, c.LogDir())
				}
				if !slices.Contains(bricks, b.PID) { // one process for several bricks when multiplexed
					bricks = append(bricks, b.PID)
				}
			}
			for _, cl := range cfg.clients {
				t := target{client: cl, engine: []string{"--ioengine=libaio"}, bricks: bricks}
				switch cl {
				case "brickfs":
					t.dir = c.MountBrickfs(d, c.Spec(vk.name), cfg.brickfsOpts...)
				default: // a brickfsVariant or brickfsBuild
					bin, more := variant(cl)
					opts := append(append([]string(nil), cfg.brickfsOpts...), more...)
					if bin == "" {
						t.dir = c.MountBrickfs(d, c.Spec(vk.name), opts...)
					} else {
						t.dir = c.MountBrickfsWith(d, bin, c.Spec(vk.name), opts...)
					}
				case "native":
					t.dir = c.MountNative(d, vk.name)
				case "native-strict":
					t.dir = c.MountNative(d, vk.name, "xlator-option="+vk.name+"-write-behind.strict-O_DIRECT=on")
				case "gfapi":
					t.engine = []string{"--ioengine=gfapi_async", "--volume=" + vk.name, "--brick=" + c.Host(1)}
				case libClient:
					t.engine = nil
					t.lib = openLib(ctx, d, c, vk.name)
				case "local":
					t.dir, t.bricks = filepath.Join(fss[0].Dir, "local-bench"), nil
					if err := os.MkdirAll(t.dir, 0o755); err != nil {
						d.Fatalf("local directory: %v", err)
					}
				}
				if cl != "gfapi" && cl != "local" && cl != libClient {
					t.pids = daemonPids(t.dir)
					if len(t.pids) == 0 {
						d.Fatalf("%s on %s: no FUSE daemon found with the mount point in its command line; the mount may have died (its log is under %s)", cl, vk.name, c.LogDir())
					}
					d.Logf("%s: %s mounted on %s, daemon pid %v", vk.name, cl, t.dir, t.pids)
				}
				targets[vk.name] = append(targets[vk.name], t)
				interrupted(ctx, d)
			}
			fill(ctx, d, cfg, targets[vk.name], work)
			interrupted(ctx, d)
		}
		// The fill is setup, not a job: the client that wrote the files
		// settles (its idle buffers given back) before
		// the first job's peak is measured from it, as every client does
		// between its own runs while the others run.
		select {
		case <-ctx.Done():
		case <-time.After(fillSettle):
		}
		interrupted(ctx, d)
		meta = describe(c, fss[0], rev)
		d.Logf("cluster up, files written; %d runs of %v to go (about %v)", cfg.repeats*len(cfg.jobs)*len(cfg.volumes)*len(cfg.clients),
			cfg.runtime, time.Duration(cfg.repeats*len(cfg.jobs)*len(cfg.volumes)*len(cfg.clients))*(cfg.runtime+2*time.Second))

		total, done, t0 := cfg.repeats*len(cfg.jobs)*len(cfg.volumes)*len(cfg.clients), 0, time.Now()
		for _, j := range cfg.jobs {
			for rep := 1; rep <= cfg.repeats; rep++ {
				for _, vol := range Order(cfg.volumes, rep) {
					for _, cl := range Order(cfg.clients, rep) {
						var t target
						for _, x := range targets[vol] {
							if x.client == cl {
								t = x
							}
						}
						s := runOne(ctx, cfg, vol, j, t, rep, work)
						interrupted(ctx, d)
						mu.Lock()
						samples = append(samples, s)
						mu.Unlock()
						done++
						eta := time.Since(t0) / time.Duration(done) * time.Duration(total-done)
						if s.OK() {
							d.Logf("[%d/%d, %v to go] %s %s %s rep %d: %s %s, p99 %s ms, CPU %.2f s, peak RSS %.0f MiB (%.0f at start), load %.2f",
								done, total, eta.Round(time.Second), vol, j.Name, cl, rep, num(j.Value(s)), j.Unit(), ms(s.P99), s.CPU, float64(s.PeakRSS)/1024, float64(s.StartRSS)/1024, s.Load)
						} else {
							d.Errorf("%s %s %s rep %d: %s", vol, j.Name, cl, rep, s.Err)
						}
						if t.dir != "" && t.client != "local" && !mountedAt(t.dir) {
							d.Fatalf("%s on %s is no longer mounted (its daemon died?); client logs are under %s", cl, vol, c.LogDir())
						}
					}
				}
			}
		}
	})
	took := time.Since(start)
	mu.Lock()
	report := render(cfg, samples, meta, load0, loadavg(), took, ctx.Err() != nil)
	mu.Unlock()
	fmt.Print(report)
	if err := os.WriteFile(cfg.out, []byte(report), 0o644); err != nil {
		log.Printf("bench: write %s: %v", cfg.out, err)
		code = 1
	} else {
		log.Printf("bench: tables written to %s (took %v)", cfg.out, took.Round(time.Second))
	}
	failed := Failures(samples)
	switch {
	case ctx.Err() != nil:
		log.Printf("bench: interrupted after %v; everything it started is torn down", took.Round(time.Second))
		code = 130
	case len(failed) > 0:
		log.Printf("bench: FAILED: %d fio runs failed (listed at the end of the tables; the client and brick logs were printed above); fix the cause and run again", len(failed))
		code = 1
	case code != 0:
		log.Printf("bench: FAILED: the run stopped early: the ERROR line above says why; everything it started is torn down")
	}
	os.RemoveAll(work) // os.Exit runs no deferred calls
	os.Exit(code)
}

// fill writes every file the jobs use through the first client that is a
// mount (else gfapi), and the local directory's own copies.
func fill(ctx context.Context, d *integration.Program, cfg config, ts []target, work string) {
	// The local directory's own copies, once for all volumes, and the
	// volume's through its first mount (gfapi if none).
	var via []target
	var first *target
	for i, t := range ts {
		switch {
		case t.client == "local":
			via = append(via, t)
		case first == nil && t.client != "gfapi" && t.client != libClient:
			first = &ts[i]
		}
	}
	for i, t := range ts {
		if first == nil && t.client == "gfapi" {
			first = &ts[i]
		}
	}
	if first != nil {
		via = append(via, *first)
	}
	for _, t := range via {
		if t.client == "local" {
			if _, err := os.Stat(t.file(mainFile)); err == nil {
				continue // written for an earlier volume
			}
		}
		fillJobs := []Job{{Name: "fill", RW: "write", BS: "1M", Depth: 4}, {Name: "fill-vm", RW: "write", BS: "1M", Depth: 4, NumJobs: 4}}
		for _, fj := range fillJobs {
			tgt, size := t.file(mainFile), cfg.size
			if fj.NumJobs > 1 {
				tgt, size = t.dir, cfg.multi
			}
			args := fj.FioArgs(tgt, size, 0, t.engine, filepath.Join(work, "fill.json"))
			args = removeArgs(args, "--time_based", "--runtime=0", "--norandommap")
			start := time.Now()
			fctx, cancel := context.WithTimeout(ctx, fillTimeout(tgt, size, fj.NumJobs))
			out, err := fioOutput(fctx, fioCommand(args))
			timedOut := fctx.Err() != nil
			cancel()
			interrupted(ctx, d)
			if timedOut {
				d.Fatalf("writing the files through %s did not finish within %v (under 10 MiB/s); the client and brick logs printed below say why (BRICKFS_KEEP_RUN_DIR=1 keeps them in %s): fio %s: %s",
					t.client, fillTimeout(tgt, size, fj.NumJobs), filepath.Dir(t.dir), strings.Join(args, " "), lastLines(string(out), 5))
			}
			if err != nil {
				d.Fatalf("writing the files through %s: fio %s: %v: %s", t.client, strings.Join(args, " "), err, lastLines(string(out), 5))
			}
			d.Logf("wrote %s through %s in %v", fj.Name, t.client, time.Since(start).Round(time.Millisecond))
		}
	}
}

func removeArgs(args []string, drop ...string) []string {
	var out []string
	for _, a := range args {
		if !has(drop, a) {
			out = append(out, a)
		}
	}
	return out
}

// runOne runs job j through t once, sampling the client's CPU and RSS.
func runOne(ctx context.Context, cfg config, vol string, j Job, t target, rep int, work string) Sample {
	nan := math.NaN()
	s := Sample{Volume: vol, Job: j.Name, Client: t.client, Rep: rep, CPU: nan, BrickCPU: nan, AppCPU: nan, HostBusy: nan}
	if t.lib != nil {
		m := startMeter(t.bricks)
		stop := func() {}
		if cfg.libProfile {
			stop = startProfile(filepath.Join(cfg.rawDir, fmt.Sprintf("%s-%s-%s-%d.pprof", vol, j.Name, fileSafe(t.client), rep)))
		}
		libJob(ctx, t.lib, cfg, j, &s)
		stop()
		m.read(&s)
		return s
	}
	jsonOut := filepath.Join(cfg.rawDir, fmt.Sprintf("%s-%s-%s-%d.json", vol, j.Name, fileSafe(t.client), rep))
	tgt, size := t.file(mainFile), cfg.size
	if j.NumJobs > 1 {
		tgt, size = t.dir, cfg.multi
	}
	args := j.FioArgs(tgt, size, int(cfg.runtime.Seconds()), t.engine, jsonOut)
	rctx, cancel := context.WithTimeout(ctx, cfg.runtime+2*time.Minute)
	defer cancel()
	cmd := fioCommand(args)
	var outBuf strings.Builder
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf

	hwmOK := resetPeakRSS(t.pids)
	cpu0, cpuErr := cpuSeconds(t.pids)
	m := startMeter(t.bricks)
	stopRSS := make(chan struct{})
	rssDone := make(chan int64, 1)
	s.StartRSS = rssKiB(t.pids)
	go func() { rssDone <- sampleRSS(t.pids, stopRSS) }()
	appCPU, err := runFioCPU(rctx, cmd)
	cpu1, cpuErr1 := cpuSeconds(t.pids)
	m.read(&s)
	close(stopRSS)
	s.PeakRSS = <-rssDone
	if hwmOK {
		s.PeakRSS = max(s.PeakRSS, peakRSS(t.pids))
	} else if len(t.pids) > 0 {
		s.RSSSampled = true // VmHWM could not be reset: only the 100 ms samples
	}
	if len(t.pids) > 0 && cpuErr == nil && cpuErr1 == nil {
		s.CPU = cpu1 - cpu0
	}
	if ctx.Err() != nil {
		s.Err = "interrupted"
		return s
	}
	raw, rerr := os.ReadFile(jsonOut)
	switch {
	case rctx.Err() != nil:
		s.Err = fmt.Sprintf("fio did not finish within %v; killed", cfg.runtime+2*time.Minute)
	case err != nil:
		s.Err = fmt.Sprintf("fio: %v: %s", err, lastLines(outBuf.String(), 3))
	case rerr != nil:
		s.Err = fmt.Sprintf("fio wrote no JSON: %v", rerr)
	default:
		if perr := ParseFio(raw, &s); perr != nil {
			s.Err = perr.Error() + ": " + lastLines(outBuf.String(), 3)
		}
		if t.client != "gfapi" {
			// gfapi's job process escapes both fio's reaping and its
			// process group; fio's own report counts only the job's
			// thread, not gfapi's: none of it would be the client's.
			s.AppCPU = appCPU
		}
	}
	return s
}

// fillSettle is the pause between writing the files and the first job.
const fillSettle = 5 * time.Second

// fileSafe is a client's name as a part of a file name: a brickfsBuild's
// path has slashes.
func fileSafe(client string) string { return strings.ReplaceAll(client, "/", "_") }

// meter measures what a run costs the machine beside its client: the
// bricks' CPU and the host's busy share, from startMeter to read.
type meter struct {
	bricks        []int
	bcpu0         float64
	bcpuErr       error
	busy0, total0 int64
	hostErr       error
}

func startMeter(bricks []int) meter {
	m := meter{bricks: bricks}
	m.bcpu0, m.bcpuErr = cpuSeconds(bricks)
	m.busy0, m.total0, m.hostErr = hostTicks()
	return m
}

// read sets s's BrickCPU, HostBusy and Load; a figure that could not be
// read stays NaN.
func (m meter) read(s *Sample) {
	bcpu1, bcpuErr := cpuSeconds(m.bricks)
	busy1, total1, hostErr := hostTicks()
	s.Load = loadavg()[0]
	if len(m.bricks) > 0 && m.bcpuErr == nil && bcpuErr == nil {
		s.BrickCPU = bcpu1 - m.bcpu0
	}
	if m.hostErr == nil && hostErr == nil && total1 > m.total0 {
		s.HostBusy = float64(busy1-m.busy0) / float64(total1-m.total0)
	}
}

// fioCommand is fio with args in a process group of its own (fio forks a
// process per job). Run it with runFio.
func fioCommand(args []string) *exec.Cmd {
	cmd := exec.Command("fio", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A process of fio's outside its group (gfapi's job, as measured)
	// that kept the output pipe open must not hold Wait forever.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// runFio runs cmd (from fioCommand): once ctx ends, SIGINT goes to fio's
// group (fio then stops its jobs and exits; a SIGKILL to fio alone would
// leave its job processes running on the mount, which could then not be
// unmounted) and, if fio has not exited 10 s later, SIGKILL; after fio
// exits, whatever is left of its group is killed (a job process whose
// parent died would keep files open on the mount). The group is killed
// before fio is reaped, so its id cannot have been reused.
func runFio(ctx context.Context, cmd *exec.Cmd) error {
	_, err := runFioCPU(ctx, cmd)
	return err
}

// runFioCPU is runFio that also returns the CPU seconds of the children
// fio reaped (its job processes, each with all its threads), read from
// fio's /proc/PID/stat while it is a zombie; NaN if they could not be
// read. gfapi's job process is not among them: measured on fio 3.33, its
// CPU was neither in fio's cutime nor in a process of fio's group alive
// when fio exited.
func runFioCPU(ctx context.Context, cmd *exec.Cmd) (float64, error) {
	if err := cmd.Start(); err != nil {
		return math.NaN(), err
	}
	pid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		// cmd.Process.Wait would reap fio; waitid with WNOWAIT only waits.
		var info [128]byte
		syscall.Syscall6(syscall.SYS_WAITID, 1 /* P_PID */, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|0x1000000 /* WNOWAIT */, 0, 0)
		close(exited)
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		syscall.Kill(-pid, syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}
	children := math.NaN()
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		if t, err := ChildTicks(string(b)); err == nil {
			children = float64(t) / clkTck
		}
	}
	syscall.Kill(-pid, syscall.SIGKILL) // fio is a zombie at most: the group is still its
	return children, cmd.Wait()
}

// fioOutput is runFio with fio's output combined.
func fioOutput(ctx context.Context, cmd *exec.Cmd) ([]byte, error) {
	var b strings.Builder
	cmd.Stdout, cmd.Stderr = &b, &b
	err := runFio(ctx, cmd)
	return []byte(b.String()), err
}

// clkTck is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go runs on.
const clkTck = 100

func cpuSeconds(pids []int) (float64, error) {
	var ticks int64
	for _, p := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			return 0, err
		}
		t, err := CPUTicks(string(b))
		if err != nil {
			return 0, err
		}
		ticks += t
	}
	return float64(ticks) / clkTck, nil
}

// startProfile starts a CPU profile of this process into path and returns
// what stops it; a profile that cannot start is logged, not fatal.
func startProfile(path string) (stop func()) {
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		log.Printf("bench: no CPU profile %s: %v", path, err)
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// openLib opens volume through brickfs's graph in this process, logging to
// the cluster's log directory, and closes it before the cluster goes.
func openLib(ctx context.Context, d *integration.Program, c *integration.Cluster, volume string) *failover.Volume {
	logPath := filepath.Join(c.LogDir(), libClient+"-"+volume+".log")
	lc := zap.NewProductionConfig()
	lc.OutputPaths, lc.ErrorOutputPaths = []string{logPath}, []string{logPath}
	lc.Sampling = nil
	logger, err := lc.Build()
	if err != nil {
		d.Fatalf("%s: log to %s: %v", libClient, logPath, err)
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := libVolume(octx, c.Host(1), volume, logger)
	if err != nil {
		d.Fatalf("%v (its log: %s; check `gluster volume status %s`)", err, logPath, volume)
	}
	d.Cleanup(func() { v.Close(); logger.Sync() })
	d.Logf("%s: %s opened in this process (log %s)", volume, libClient, logPath)
	return v
}

// hostTicks is the machine's busy and total CPU ticks so far (/proc/stat).
func hostTicks() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return HostTicks(string(b))
}

// sampleRSS reads the summed VmRSS of pids every 100 ms until stop is
// closed, and returns the largest (KiB); 0 for no pids.
func sampleRSS(pids []int, stop <-chan struct{}) int64 {
	if len(pids) == 0 {
		return 0
	}
	var peak int64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		peak = max(peak, rssKiB(pids))
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// fillTimeout is how long writing numJobs files of size may take: at 10
// MiB/s, and at least 5 minutes.
func fillTimeout(_ string, size string, numJobs int) time.Duration {
	n, err := parseSize(size)
	if err != nil {
		return 5 * time.Minute
	}
	return max(5*time.Minute, time.Duration(n*int64(max(numJobs, 1))/(10<<20))*time.Second)
}

// resetPeakRSS resets the VmHWM of pids to their current RSS (writing "5"
// to /proc/PID/clear_refs), so that peakRSS after a run is that run's. It
// reports whether every reset took (not on kernels before 4.0, nor for a
// daemon that is gone).
func resetPeakRSS(pids []int) bool {
	ok := true
	for _, p := range pids {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p), []byte("5"), 0); err != nil {
			ok = false
		}
	}
	return ok
}

// peakRSS is the summed VmHWM of pids: each one's peak since resetPeakRSS.
// Summed peaks may not have been at the same moment: an upper bound for
// more than one pid.
func peakRSS(pids []int) int64 { return sumStatus(pids, VmHWM) }

// rssKiB is the summed VmRSS of pids.
func rssKiB(pids []int) int64 { return sumStatus(pids, VmRSS) }

// sumStatus sums what field reads from each pid's /proc/PID/status (KiB);
// a pid that is gone adds nothing.
func sumStatus(pids []int, field func(status string) (int64, error)) int64 {
	var sum int64
	for _, p := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p)); err == nil {
			if v, err := field(string(b)); err == nil {
				sum += v
			}
		}
	}
	return sum
}

// daemonPids are the FUSE daemons serving mnt: brickfs or glusterfs
// processes with mnt in their command line.
func daemonPids(mnt string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 2 || !has(args, mnt) || args[1] == "auto-unmount" {
			continue
		}
		switch filepath.Base(args[0]) {
		case "brickfs", "glusterfs":
			out = append(out, pid)
		}
	}
	return out
}

func mountedAt(dir string) bool {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return true
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == dir {
			return true
		}
	}
	return false
}

func loadavg() [3]float64 {
	var l [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// describe says what the run ran on, for the report's header.
func describe(c *integration.Cluster, fs *integration.BackingFS, rev string) []string {
	var m []string
	model := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m = append(m, fmt.Sprintf("machine: %d CPUs (%s), kernel %s", runtime.NumCPU(), model, strings.TrimSpace(string(kernel))))
	gv, _ := exec.Command("glusterfs", "--version").Output()
	fv, _ := exec.Command("fio", "--version").Output()
	m = append(m, fmt.Sprintf("brickfs %s; %s; %s", rev, lastLines(firstLine(string(gv)), 1), strings.TrimSpace(string(fv))))
	backing := "?"
	if out, err := exec.Command("df", "--output=source,fstype", filepath.Dir(fs.Image)).Output(); err == nil {
		backing = strings.Join(strings.Fields(lastLines(string(out), 1)), " ")
	}
	m = append(m, fmt.Sprintf("cluster: 3 glusterds on %s.1-3 (loopback); bricks on one loop-mounted XFS per node (reflink=1), image files on %s; bricks, clients and fio share the machine", c.Prefix, backing))
	return m
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// render is the report: a header saying what ran, then a table per volume.
func render(cfg config, samples []Sample, meta []string, load0, load1 [3]float64, took time.Duration, stopped bool) string {
	var b strings.Builder
	b.WriteString("# fio: brickfs, the native client, libgfapi and the local disk on the same volumes\n\n")
	fmt.Fprintf(&b, "`sudo make bench-fio %s`\n\n", cfg.cmdline)
	for _, m := range meta {
		fmt.Fprintf(&b, "- %s\n", m)
	}
	fmt.Fprintf(&b, "- each run: direct=1, %v time-based, no ramp; libaio on the mounts and the local directory, gfapi_async for gfapi; one %s file for the single-file jobs and four of %s for multi4, written once, shared by all clients\n", cfg.runtime, cfg.size, cfg.multi)
	fmt.Fprintf(&b, "- %d repeat(s), interleaved (per job, repeat and volume every client in turn, the order reversed on even repeats); throughput is the median with min-max, latencies the medians of fio's total latency percentiles (lat_ns: submission plus completion, what the application waited)\n", cfg.repeats)
	b.WriteString("- CPU: the FUSE daemon's utime+stime over the fio run, per GiB moved and per 10k I/Os (median over repeats); peak RSS: the daemon's VmHWM after the run, reset through /proc/PID/clear_refs just before it, the largest of any repeat, with in parentheses its VmRSS when that run started (the mounts stay up for the whole benchmark, so memory a daemon kept from an earlier job shows there). gfapi's client is fio itself and local has none: `-`\n")
	b.WriteString("- where the machine's CPU went: the volume's brick processes' (glusterfsd) utime+stime over the run, and fio's job processes' (the children fio reaped: cutime+cstime of its /proc/PID/stat; not for gfapi, whose job process, where its client stack runs, escapes that account); host CPU busy: the share of all CPUs' time (/proc/stat) that was not idle or waiting for I/O over the run, every process and the kernel's threads (the loop devices' among them) included. Near 100 %, the CPUs bound every client: what one client saves in CPU per GiB, the others can use\n")
	if has(cfg.clients, libClient) {
		fmt.Fprintf(&b, "- brickfs-lib: brickfs's graph in the bench's process (GOMAXPROCS %d, memory limit %d MiB), a goroutine per I/O in flight instead of fio, no FUSE; latency measured around each call; its CPU is the process's, the graph and the goroutines that stand in for fio: compare it with brickfs's CPU plus fio's\n", runtime.GOMAXPROCS(0), debug.SetMemoryLimit(-1)>>20)
	}
	b.WriteString("- markers: `clat` after a p50: fio gave completion latency only for some run of the cell; `sampled` after a peak RSS: VmHWM could not be reset, so the peak is the largest 100 ms sample\n")
	fmt.Fprintf(&b, "- load average before %.2f %.2f %.2f, after %.2f %.2f %.2f; took %v\n", load0[0], load0[1], load0[2], load1[0], load1[1], load1[2], took.Round(time.Second))
	fmt.Fprintf(&b, "- fio's JSON of every run: %s\n", cfg.rawDir)
	if stopped {
		b.WriteString("- **interrupted**: the tables hold only the runs that finished\n")
	}
	b.WriteString("\n")
	for _, vk := range volumeKinds {
		if !has(cfg.volumes, vk.name) {
			continue
		}
		fmt.Fprintf(&b, "## %s (%s)\n\n", vk.name, vk.desc)
		b.WriteString(Table(samples, vk.name, cfg.jobs, cfg.clients))
		b.WriteString("\n")
		if has(cfg.clients, "brickfs") && (has(cfg.clients, "native-strict") || has(cfg.clients, "gfapi")) {
			fmt.Fprintf(&b, "brickfs against issue 14's targets on %s (ratios of the medians):\n\n", vk.name)
			b.WriteString(Targets(samples, vk.name, cfg.jobs))
			b.WriteString("\n")
		}
	}
	if f := Failures(samples); len(f) > 0 {
		b.WriteString("## Failed runs\n\n")
		for _, l := range f {
			fmt.Fprintf(&b, "- %s\n", l)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// interrupted stops the body once a signal came.
func interrupted(ctx context.Context, d *integration.Program) {
	if ctx.Err() != nil {
		d.Fatalf("interrupted; tearing down")
	}
}

// parseSize reads fio's sizes: 512K, 128M, 1G (powers of 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult = 1 << 10
	case strings.HasSuffix(s, "M"):
		mult = 1 << 20
	case strings.HasSuffix(s, "G"):
		mult = 1 << 30
	}
	n, err := strconv.ParseInt(strings.TrimRight(s, "KMG"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a size such as 256M or 1G", s)
	}
	return n * mult, nil
}
