// Command soak runs mixed fio with verification on a brickfs mount of a
// replica-3 volume for a long time, with a brick fault every period, and
// prints a markdown table: one row per period and a summary. It is a soak,
// not a CI test: it asserts correctness (no I/O error, no verify mismatch,
// every heal done, the bricks identical at the end) and reports memory,
// goroutines and fds so that a leak shows.
//
//	soak [-duration 1h] [-period 3m] [-fault-at 45s] [-hold 20s] [-down 5s]
//	     [-faults kill,stop,drop,freeze] [-size 128M] [-heal-wait 5m] [-o FILE]
//
// It brings up a 3-node cluster on loopback with the integration harness,
// one loop-mounted XFS filesystem per node (so that a brick can be frozen),
// a default replica-3 volume on them, and one brickfs mount. Four files of
// -size are filled with fio's verify headers, then the soak runs
// duration/period periods. In each, four fio jobs run at once for the
// whole period, each on its own file, all with --verify=crc32c
// --verify_fatal=1 --continue_on_error=none (a mismatch or an I/O error
// ends the job and counts):
//
//	randwrite4k  4 KiB random writes, QD4, read back behind (verify_backlog)
//	write64k     64 KiB sequential writes, QD2, read back behind
//	randread4k   4 KiB random reads, QD8, every block's header checked
//	read1m       1 MiB sequential reads, QD2, every block's header checked
//
// -fault-at into the period a fault starts on one brick; the faults are
// taken from -faults in turn and the victim brick cycles 0, 1, 2:
//
//	kill    SIGKILL, restarted (new port) after -down
//	stop    SIGSTOP for -hold, then SIGCONT
//	drop    iptables DROP of the brick's node (glusterd included) for -hold
//	freeze  fsfreeze of the brick's XFS for -hold; a brick that stopped
//	        itself meanwhile (posix health check) is restarted
//
// After each period: the fault is cleared, the self-heal daemon is made to
// heal the files (at most -heal-wait; a heal that does not finish ends the
// soak), and a statedump of the mount gives its RSS, goroutines and fds.
// At the end every file is read whole with verify and compared across the
// bricks. Every 4 KiB of every file carries a verify header
// (verify_interval=4096 for the larger blocks), so one check reads them all.
//
// It exits non-zero on any error, mismatch or unfinished heal. Everything is
// torn down at the end, also on error or SIGINT. Must run as root with
// bin/brickfs built (scripts/soak.sh does both).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/integration"
)

const vol = "soak"

// eilseq is the error fio gives a job that found a verify mismatch.
const eilseq = int(syscall.EILSEQ)

// soakJob is one of the fio jobs every period runs.
type soakJob struct {
	name   string
	rw     string
	bs     string
	depth  int
	filled bool // read job: its file keeps the fill's contents
}

var jobs = []soakJob{
	{name: "randwrite4k", rw: "randwrite", bs: "4k", depth: 4},
	{name: "write64k", rw: "write", bs: "64k", depth: 2},
	{name: "randread4k", rw: "randread", bs: "4k", depth: 8, filled: true},
	{name: "read1m", rw: "read", bs: "1M", depth: 2, filled: true},
}

// fio is the job's fio run on file for runtime.
func (j soakJob) fio(file, size string, runtime time.Duration) integration.Fio {
	return integration.Fio{Name: j.name, File: file, Size: size, RW: j.rw, BS: j.bs, IODepth: j.depth,
		Runtime: runtime, Verify: true, Extra: []string{"--verify_interval=4096", "--continue_on_error=none"}}
}

// row is one period of the soak.
type row struct {
	n        int
	fault    string
	victim   int
	stall    time.Duration
	stallJob string
	ios      int64
	errs     int64
	mism     int64
	heal     time.Duration
	healed   bool
	dump     map[string]int64
	notes    []string
}

// tally counts what a fio run reports as errors and as verify mismatches.
// With verify_fatal and continue_on_error=none the first of either ends the
// job: its "error" is EILSEQ for a mismatch, the errno otherwise.
func tally(r integration.FioResult) (errs, mism int64, note string) {
	for _, l := range strings.Split(r.Stderr, "\n") {
		if strings.Contains(l, "verify") && (strings.Contains(l, "bad") || strings.Contains(l, "fail")) {
			mism++
		}
	}
	errs = r.TotalErr
	switch {
	case r.Err == eilseq && mism == 0:
		mism = 1
	case r.Err != 0 && r.Err != eilseq:
		errs++
	}
	if errs == 0 && mism == 0 && (r.ExitErr != nil || r.JSONError != nil) {
		errs = 1
	}
	if errs > 0 || mism > 0 {
		note = fmt.Sprintf("%v: %.300s", r, r.Stderr)
	}
	return errs, mism, note
}

func main() {
	duration := flag.Duration("duration", time.Hour, "total fio time: duration/period periods")
	period := flag.Duration("period", 3*time.Minute, "one fio segment with one fault in it")
	faultAt := flag.Duration("fault-at", 45*time.Second, "the fault starts this long into a period")
	hold := flag.Duration("hold", 20*time.Second, "how long a stop, drop or freeze lasts")
	down := flag.Duration("down", 5*time.Second, "a killed brick is restarted after this long")
	faultList := flag.String("faults", "kill,stop,drop,freeze", "comma-separated, taken in turn: kill, stop, drop, freeze")
	size := flag.String("size", "128M", "size of each of the four fio files")
	healWait := flag.Duration("heal-wait", 5*time.Minute, "a heal not done after this long fails the soak")
	out := flag.String("o", "", "write the table to this file too")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetOutput(os.Stderr)

	faults := strings.Split(*faultList, ",")
	for _, f := range faults {
		if f != "kill" && f != "stop" && f != "drop" && f != "freeze" {
			log.Fatalf("soak: unknown fault %q (want kill, stop, drop, freeze)", f)
		}
	}
	sizeB, err := parseSize(*size)
	if err != nil {
		log.Fatalf("soak: -size %q: %v", *size, err)
	}
	if lasts := max(*hold, *down+15*time.Second); *faultAt+lasts+10*time.Second > *period {
		log.Fatalf("soak: -period %v is too short for a fault at %v lasting about %v; lengthen -period or shorten -fault-at/-hold", *period, *faultAt, lasts)
	}
	periods := int((*duration + *period - 1) / *period)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	d := integration.NewProgram("soak")
	var rows []*row
	var final []string
	var bad []string
	start := time.Now()
	code := d.Run(func() {
		c := integration.NewCluster(d, 3)
		// Four files on each brick, with room for XFS's own.
		fsMiB := max(512, int(4*sizeB>>20)*3/2+256)
		var fss []*integration.BackingFS
		for n := 1; n <= 3; n++ {
			fss = append(fss, c.MakeFS(d, n, "xfs", fsMiB))
		}
		c.CreateVolumeOn(d, vol, integration.Replica3, fss...)
		c.Start(d, vol)
		dumps := tempDir(d, "brickfs-soak-dumps-")
		work := tempDir(d, "brickfs-soak-fio-")
		mnt := c.MountBrickfs(d, c.Spec(vol), "log-level=info", "statedump-dir="+dumps,
			"backup-volfile-servers="+c.BackupVolfileServers())
		var files []string
		for _, j := range jobs {
			files = append(files, j.name)
			f := integration.Fio{Name: "fill", File: filepath.Join(mnt, j.name), Size: *size, RW: "write", IODepth: 16,
				Verify: true, Extra: []string{"--do_verify=0"}}
			if r := f.Run(ctx, work); !r.Clean() {
				interrupted(ctx, d)
				d.Fatalf("fill %s: %v\n%s", j.name, r, r.Stderr)
			}
		}
		d.Logf("filled %d files of %s; %d periods of %v", len(files), *size, periods, *period)
		before := c.Statedump(d, mnt, dumps)
		d.Logf("before the soak: RSS %.1f MiB, %d goroutines, %d fds", mib(before["rss_kib"]), before["goroutines"], before["fds"])

		for i := 0; i < periods; i++ {
			r := &row{n: i + 1, fault: faults[i%len(faults)], victim: i % 3}
			rows = append(rows, r)
			runPeriod(ctx, d, c, mnt, work, fss, r, *size, *period, *faultAt, *hold, *down)
			interrupted(ctx, d)
			var herr error
			r.heal, r.healed, herr = waitHealed(ctx, d, c, files, *healWait)
			interrupted(ctx, d)
			if !r.healed {
				r.notes = append(r.notes, "not healed: "+herr.Error())
			}
			r.dump = c.Statedump(d, mnt, dumps)
			d.Logf("PERIOD %d/%d %s brick %d: stall %.2f s (%s), %d I/Os, %d errors, %d mismatches, healed %v in %v, RSS %.1f MiB, %d goroutines, %d fds",
				r.n, periods, r.fault, r.victim, r.stall.Seconds(), r.stallJob, r.ios, r.errs, r.mism, r.healed,
				r.heal.Round(100*time.Millisecond), mib(r.dump["rss_kib"]), r.dump["goroutines"], r.dump["fds"])
			for _, n := range r.notes {
				d.Logf("  %s", n)
			}
			if !r.healed {
				d.Errorf("period %d: heal not done after %v; the soak ends here", r.n, *healWait)
				break
			}
		}

		// Every block of every file, and every brick's copy.
		for _, name := range files {
			r := integration.Fio{Name: "check", File: filepath.Join(mnt, name), Size: *size, RW: "read", IODepth: 16,
				Verify: true, Extra: []string{"--continue_on_error=none"}}.Run(ctx, work)
			interrupted(ctx, d)
			if e, m, note := tally(r); e+m > 0 {
				final = append(final, fmt.Sprintf("%s: %d errors, %d mismatches", name, e, m))
				d.Errorf("final verify of %s: %s", name, note)
			}
		}
		ct := &countingT{Program: d}
		for _, name := range files {
			c.CheckBackends(ct, vol, integration.Replica3, name, mnt)
		}
		if ct.errors > 0 {
			final = append(final, fmt.Sprintf("%d differences between the bricks' copies", ct.errors))
		}
	})

	var errs, mism int64
	for _, r := range rows {
		errs += r.errs
		mism += r.mism
		if !r.healed {
			bad = append(bad, fmt.Sprintf("period %d not healed", r.n))
		}
	}
	if errs > 0 || mism > 0 {
		bad = append(bad, fmt.Sprintf("%d errors, %d mismatches", errs, mism))
	}
	bad = append(bad, final...)
	if ctx.Err() != nil {
		bad = append(bad, "interrupted")
	} else if len(rows) < periods {
		bad = append(bad, fmt.Sprintf("ended after %d of %d periods", len(rows), periods))
	}
	table := render(rows, bad, *size, *period, *faultAt, *hold, *down, time.Since(start))
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			log.Printf("write %s: %v", *out, err)
			code = 1
		}
	}
	if len(bad) > 0 {
		code = 1
	}
	os.Exit(code)
}

// runPeriod runs the four fio jobs for period and the fault of r in the
// middle of them, and fills r with what fio saw.
func runPeriod(ctx context.Context, d *integration.Program, c *integration.Cluster, mnt, work string, fss []*integration.BackingFS,
	r *row, size string, period, faultAt, hold, down time.Duration) {
	// The jobs are stopped and waited for however this returns, so that
	// a failed fault step leaves no fio on the mount for teardown.
	pctx, cancel := context.WithTimeout(ctx, period+5*time.Minute)
	results := make([]integration.FioResult, len(jobs))
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = j.fio(filepath.Join(mnt, j.name), size, period).Run(pctx, work)
		}()
	}
	if !sleep(ctx, faultAt) {
		return
	}
	victim := r.victim
	d.Logf("period %d: fault %s on brick %d", r.n, r.fault, victim)
	t0 := time.Now()
	switch r.fault {
	case "kill":
		c.KillBrick(d, vol, victim)
		if !sleep(ctx, down) {
			return // teardown clears what is left of the fault
		}
		c.RestartBrick(d, vol, victim)
	case "stop":
		c.StopBrick(d, vol, victim)
		if !sleep(ctx, hold) {
			return
		}
		c.ContBrick(d, vol, victim)
	case "drop":
		node := c.Brick(d, vol, victim).Node
		c.DropHost(d, node)
		if !sleep(ctx, hold) {
			return
		}
		c.UndropHost(d, node)
	case "freeze":
		c.Freeze(d, fss[victim])
		if !sleep(ctx, hold) {
			return
		}
		c.Thaw(d, fss[victim])
	}
	d.Logf("period %d: fault %s cleared after %v", r.n, r.fault, time.Since(t0).Round(time.Millisecond))
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	// A brick whose filesystem stayed frozen past the posix health check's
	// timeout stops itself, as GlusterFS bricks do.
	if c.Brick(d, vol, victim).PID == 0 {
		r.notes = append(r.notes, fmt.Sprintf("brick %d had stopped itself; restarted", victim))
		c.RestartBrick(d, vol, victim)
	}
	for i, res := range results {
		j := jobs[i]
		if s := res.MaxStall(); s > r.stall {
			r.stall, r.stallJob = s, j.name
		}
		r.ios += res.WriteIOs + res.ReadIOs
		e, m, note := tally(res)
		r.errs += e
		r.mism += m
		if note != "" {
			r.notes = append(r.notes, j.name+": "+note)
		}
		if res.WriteIOs+res.ReadIOs == 0 && e+m == 0 {
			r.errs++
			r.notes = append(r.notes, j.name+": no I/O at all: "+res.String())
		}
	}
}

// waitHealed has the self-heal daemon heal the volume (an index heal every
// 5 s) until no brick blames another on the files, no brick's index lists
// anything and heal info shows every brick connected with no entries. It
// gives up after limit instead of failing the program, so that the table
// is still printed.
func waitHealed(ctx context.Context, d *integration.Program, c *integration.Cluster, files []string, limit time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	var last time.Time
	for {
		why := c.PendingHeal(d, vol, files)
		if len(why) == 0 {
			why = healInfoPending(c)
		}
		if len(why) == 0 {
			return time.Since(start), true, nil
		}
		if time.Since(start) > limit || ctx.Err() != nil {
			return time.Since(start), false, fmt.Errorf("%s", strings.Join(why, "; "))
		}
		if time.Since(last) > 5*time.Second {
			last = time.Now()
			if _, err := c.Gluster(1, "volume", "heal", vol); err != nil {
				d.Logf("heal trigger: %v", err)
			}
		}
		sleep(ctx, time.Second)
	}
}

// healInfoPending lists why `gluster volume heal VOL info` is not drained.
func healInfoPending(c *integration.Cluster) []string {
	info, err := c.HealInfo(1, vol)
	if err != nil {
		return []string{"heal info: " + err.Error()}
	}
	var why []string
	for _, e := range info {
		if e.Status != "Connected" || e.Entries != 0 {
			why = append(why, fmt.Sprintf("heal info: %s: %s, %d entries", e.Brick, e.Status, e.Entries))
		}
	}
	if len(info) == 0 {
		why = append(why, "heal info listed no bricks")
	}
	return why
}

func render(rows []*row, bad []string, size string, period, faultAt, hold, down, took time.Duration) string {
	var b strings.Builder
	name := map[string]string{
		"kill":   fmt.Sprintf("SIGKILL, restart after %v", down),
		"stop":   fmt.Sprintf("SIGSTOP %v", hold),
		"drop":   fmt.Sprintf("DROP node %v", hold),
		"freeze": fmt.Sprintf("fsfreeze %v", hold),
	}
	fmt.Fprintf(&b, "| period | fault | brick | longest stall | I/Os | errors | verify mismatches | heal | RSS MiB | goroutines | fds |\n")
	fmt.Fprintf(&b, "|---:|---|---:|---|---:|---:|---:|---|---:|---:|---:|\n")
	for _, r := range rows {
		heal := fmt.Sprintf("%.1f s", r.heal.Seconds())
		if !r.healed {
			heal = "NOT HEALED after " + heal
		}
		rss, gor, fds := "n/a", "n/a", "n/a"
		if r.dump != nil {
			rss = fmt.Sprintf("%.1f", mib(r.dump["rss_kib"]))
			gor = strconv.FormatInt(r.dump["goroutines"], 10)
			fds = strconv.FormatInt(r.dump["fds"], 10)
		}
		stall := "n/a"
		if r.stallJob != "" {
			stall = fmt.Sprintf("%.2f s (%s)", r.stall.Seconds(), r.stallJob)
		}
		fmt.Fprintf(&b, "| %d | %s | %d | %s | %d | %d | %d | %s | %s | %s | %s |\n",
			r.n, name[r.fault], r.victim, stall, r.ios, r.errs, r.mism, heal, rss, gor, fds)
	}
	var errs, mism int64
	for _, r := range rows {
		errs += r.errs
		mism += r.mism
	}
	fmt.Fprintf(&b, "\n%d periods, %d errors, %d verify mismatches", len(rows), errs, mism)
	var dumped []*row
	for _, r := range rows {
		if r.dump != nil {
			dumped = append(dumped, r)
		}
	}
	if len(dumped) > 0 {
		w := dumped[min(1, len(dumped)-1)]
		e := dumped[len(dumped)-1]
		fmt.Fprintf(&b, "; after warm-up (period %d) RSS %.1f MiB, %d goroutines, %d fds; at the end (period %d) RSS %.1f MiB, %d goroutines, %d fds",
			w.n, mib(w.dump["rss_kib"]), w.dump["goroutines"], w.dump["fds"],
			e.n, mib(e.dump["rss_kib"]), e.dump["goroutines"], e.dump["fds"])
	}
	if len(bad) == 0 {
		fmt.Fprintf(&b, "; final verify of every file and the bricks' copies: identical.\n")
	} else {
		fmt.Fprintf(&b, ".\nFAILED: %s.\n", strings.Join(bad, "; "))
	}
	for _, r := range rows {
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- period %d: %s\n", r.n, strings.ReplaceAll(n, "\n", " "))
		}
	}
	fmt.Fprintf(&b, "\nreplica 3 on 3 loopback nodes (XFS bricks), GlusterFS defaults; one brickfs mount with its defaults (log-level=info, backup-volfile-servers). "+
		"Each period: %v of fio on four %s files at once (4k randwrite QD4, 64k write QD2, both read back behind; 4k randread QD8; 1M read QD2; "+
		"all libaio direct=1, verify=crc32c, verify_fatal), the fault %v into it on the brick shown, then heal and a statedump. "+
		"Stall = the longest single I/O of any job in the period. Measured in %v.\n",
		period, size, faultAt, took.Round(time.Second))
	return b.String()
}

// countingT counts the errors a harness check reports.
type countingT struct {
	*integration.Program
	errors int
}

func (t *countingT) Errorf(format string, args ...any) {
	t.errors++
	t.Program.Errorf(format, args...)
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// interrupted stops the body once a signal came.
func interrupted(ctx context.Context, d *integration.Program) {
	if ctx.Err() != nil {
		d.Fatalf("interrupted; stopping")
	}
}

func tempDir(d *integration.Program, pattern string) string {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		d.Fatalf("%v", err)
	}
	d.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

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
		return 0, fmt.Errorf("want a size such as 128M or 1G")
	}
	return n * mult, nil
}
