package main

// This file is the pure part of the benchmark: fio's JSON read into a
// sample, the statistics over repeats, the ratios and CPU figures, and the
// markdown table. It touches no process, mount or file (table_test.go).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Metric is how a job's throughput is counted.
type Metric int

const (
	IOPS Metric = iota // I/Os per second, reads and writes together
	MiBs               // MiB per second, reads and writes together
)

// Job is one fio workload of the table.
type Job struct {
	Name    string // as in JOBS
	Desc    string // as in the table
	RW      string // fio --rw
	BS      string // fio --bs, or a range for --bsrange
	Depth   int
	MixRead int // with RW randrw: the percentage of reads
	NumJobs int // > 1: that many fio jobs at once, one file each (the multi-VM run)
	Metric  Metric
	OptIn   bool // run only when named (not in the default all)
}

// jobs are every job, in table order.
var jobs = []Job{
	{Name: "randread4k-qd1", Desc: "4k randread QD1", RW: "randread", BS: "4k", Depth: 1, Metric: IOPS},
	{Name: "randread4k-qd16", Desc: "4k randread QD16", RW: "randread", BS: "4k", Depth: 16, Metric: IOPS},
	{Name: "randwrite4k-qd1", Desc: "4k randwrite QD1", RW: "randwrite", BS: "4k", Depth: 1, Metric: IOPS},
	{Name: "randwrite4k-qd16", Desc: "4k randwrite QD16", RW: "randwrite", BS: "4k", Depth: 16, Metric: IOPS},
	{Name: "randrw64k-qd8", Desc: "64k randrw 70/30 QD8", RW: "randrw", BS: "64k", Depth: 8, MixRead: 70, Metric: IOPS},
	{Name: "seqread1m-qd4", Desc: "1M seq read QD4", RW: "read", BS: "1M", Depth: 4, Metric: MiBs},
	{Name: "seqwrite1m-qd4", Desc: "1M seq write QD4", RW: "write", BS: "1M", Depth: 4, Metric: MiBs},
	{Name: "multi4", Desc: "4 VMs: randrw 4k-1M 60/40 QD8 x4", RW: "randrw", BS: "4k-1M", Depth: 8, MixRead: 60, NumJobs: 4, Metric: MiBs},
	// The memory bound: 64 I/Os of up to 1 MiB in flight at once.
	{Name: "multi4-qd64", Desc: "4 VMs: randrw 4k-1M 60/40 QD16 x4", RW: "randrw", BS: "4k-1M", Depth: 16, MixRead: 60, NumJobs: 4, Metric: MiBs, OptIn: true},
}

// jobAliases are the job names of the older scripts/bench-fio.sh.
var jobAliases = map[string]string{
	"randread4k":  "randread4k-qd16",
	"randwrite4k": "randwrite4k-qd16",
	"seqread1m":   "seqread1m-qd4",
	"seqwrite1m":  "seqwrite1m-qd4",
}

// Sample is one fio run of one job through one client.
type Sample struct {
	Volume, Job, Client string
	Rep                 int
	Err                 string // why the run failed; "" if it did not

	IOPS    float64 // reads and writes per second
	BW      float64 // bytes per second, reads and writes
	IOs     int64   // I/Os completed
	Bytes   int64   // bytes moved
	P50     float64 // total latency percentiles (submission + completion), microseconds
	P99     float64
	P999    float64
	CPU     float64 // client process CPU seconds (utime+stime) over the run; NaN if not measured
	PeakRSS int64   // client process peak RSS over the run (KiB: VmHWM reset at the start); 0 if not measured
	// StartRSS is the client's VmRSS when fio started (KiB): what it kept
	// from earlier runs, since the mounts stay up for the whole benchmark.
	StartRSS int64
	// RSSSampled: VmHWM could not be reset before the run, so PeakRSS is
	// the largest of the 100 ms samples only.
	RSSSampled bool
	// ClatOnly: fio gave no total latency percentiles (lat_ns), so the
	// percentiles are completion latency only.
	ClatOnly bool
	Load     float64 // 1-minute load average at the end of the run
	// BrickCPU is the volume's brick processes' (glusterfsd) CPU seconds
	// over the run; AppCPU fio's job processes' (the children fio reaped;
	// NaN for gfapi, whose job process escapes fio's reaping); HostBusy the share of the
	// machine's CPU time that was not idle over the run (every process and
	// the kernel's own threads, the loop devices' among them), 0 to 1.
	// NaN if not measured.
	BrickCPU, AppCPU, HostBusy float64
}

// OK reports whether the run succeeded.
func (s Sample) OK() bool { return s.Err == "" }

type fioDirJSON struct {
	TotalIOs int64      `json:"total_ios"`
	IOBytes  int64      `json:"io_bytes"`
	BWBytes  float64    `json:"bw_bytes"`
	IOPS     float64    `json:"iops"`
	Lat      fioLatJSON `json:"lat_ns"`  // submission + completion: what the application waited
	Clat     fioLatJSON `json:"clat_ns"` // completion only (older runs without --lat_percentiles)
}

type fioLatJSON struct {
	N          int64              `json:"N"`
	Percentile map[string]float64 `json:"percentile"`
}

type fioJobJSON struct {
	Error int         `json:"error"`
	Read  *fioDirJSON `json:"read"`
	Write *fioDirJSON `json:"write"`
	Mixed *fioDirJSON `json:"mixed"`
}

type fioOutJSON struct {
	Jobs []fioJobJSON `json:"jobs"`
}

// ParseFio reads fio's --output-format=json of one job (numjobs>1 with
// group_reporting is one job too) into s: IOPS, bandwidth, I/Os and bytes
// summed over reads and writes, total latency percentiles (submission plus
// completion) in microseconds. With --unified_rw_reporting=mixed fio reports reads and
// writes as one "mixed" direction whose percentiles cover both; without it,
// a job that both reads and writes gets the larger of each percentile (a
// bound, not the mixture). fio may print warnings before the JSON.
func ParseFio(raw []byte, s *Sample) error {
	if i := bytes.IndexByte(raw, '{'); i > 0 {
		raw = raw[i:]
	}
	var out fioOutJSON
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("fio JSON: %v", err)
	}
	if len(out.Jobs) != 1 {
		return fmt.Errorf("fio JSON has %d jobs; want 1 (group_reporting)", len(out.Jobs))
	}
	j := out.Jobs[0]
	if j.Error != 0 {
		return fmt.Errorf("fio job error %d (%s)", j.Error, errnoName(j.Error))
	}
	dirs := []*fioDirJSON{j.Mixed}
	if j.Mixed == nil || j.Mixed.TotalIOs == 0 {
		dirs = []*fioDirJSON{j.Read, j.Write}
	}
	s.IOPS, s.BW, s.IOs, s.Bytes, s.P50, s.P99, s.P999 = 0, 0, 0, 0, 0, 0, 0
	for _, d := range dirs {
		if d == nil || d.TotalIOs == 0 {
			continue
		}
		s.IOPS += d.IOPS
		s.BW += d.BWBytes
		s.IOs += d.TotalIOs
		s.Bytes += d.IOBytes
		s.P50 = max(s.P50, percentile(d, "50.000000", &s.ClatOnly))
		s.P99 = max(s.P99, percentile(d, "99.000000", &s.ClatOnly))
		s.P999 = max(s.P999, percentile(d, "99.900000", &s.ClatOnly))
	}
	if s.IOs == 0 {
		return fmt.Errorf("fio completed no I/O")
	}
	return nil
}

// percentile is the total latency's (lat_ns, present with
// --lat_percentiles=1): submission plus completion. Completion latency
// alone (clat) leaves out the submission time, which for a client that
// acknowledges a write while io_submit is still in the kernel (the native
// client's write-behind, libgfapi) is most of what the application waits,
// so comparing clat would favour exactly those clients.
func percentile(d *fioDirJSON, key string, clatOnly *bool) float64 {
	if v, ok := d.Lat.Percentile[key]; ok {
		return v / 1000
	}
	*clatOnly = true
	return d.Clat.Percentile[key] / 1000
}

func errnoName(n int) string {
	switch n {
	case 5:
		return "EIO"
	case 107:
		return "ENOTCONN"
	case 28:
		return "ENOSPC"
	case 2:
		return "ENOENT"
	case 22:
		return "EINVAL"
	}
	return "errno " + strconv.Itoa(n)
}

// CPUTicks is utime+stime (fields 14 and 15) of a /proc/PID/stat line, in
// clock ticks. The command name in parentheses may hold spaces and ')'.
func CPUTicks(stat string) (int64, error) { return statSum(stat, 14, "utime", "stime") }

// ChildTicks is cutime+cstime (fields 16 and 17) of a /proc/PID/stat
// line, in clock ticks: the CPU of the children the process reaped.
func ChildTicks(stat string) (int64, error) { return statSum(stat, 16, "cutime", "cstime") }

// statSum is the sum of fields n and n+1 (1-based, as in proc(5)) of a
// /proc/PID/stat line, named a and b for errors.
func statSum(stat string, n int, a, b string) (int64, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/PID/stat: no ')' in %.80q", stat)
	}
	f := strings.Fields(stat[i+1:]) // f[0] is field 3 (state)
	if len(f) < n-1 {
		return 0, fmt.Errorf("/proc/PID/stat: %d fields after the name", len(f))
	}
	x, err1 := strconv.ParseInt(f[n-3], 10, 64)
	y, err2 := strconv.ParseInt(f[n-2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/PID/stat: %s %q %s %q", a, f[n-3], b, f[n-2])
	}
	return x + y, nil
}

// HostTicks is the machine's CPU time from /proc/stat's first line ("cpu
// user nice system idle iowait irq softirq steal ..."), in clock ticks:
// busy (all but idle and iowait) and the total of those eight.
func HostTicks(stat string) (busy, total int64, err error) {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: first line %.80q is not the cpu totals", line)
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: cpu field %d %q", i+1, f[i+1])
		}
		total += v[i]
	}
	return total - v[3] - v[4], total, nil
}

// VmRSS is the VmRSS line of /proc/PID/status, in KiB.
func VmRSS(status string) (int64, error) { return statusKiB(status, "VmRSS") }

// VmHWM is the VmHWM line of /proc/PID/status (the peak RSS since the
// process started or since "5" was written to /proc/PID/clear_refs), in KiB.
func VmHWM(status string) (int64, error) { return statusKiB(status, "VmHWM") }

func statusKiB(status, field string) (int64, error) {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				return strconv.ParseInt(f[0], 10, 64)
			}
			return 0, fmt.Errorf("/proc/PID/status: %s %q", field, v)
		}
	}
	return 0, fmt.Errorf("/proc/PID/status: no %s (a kernel thread, or the process is gone)", field)
}

// Stat is the median, least and largest of values.
type Stat struct {
	N             int
	Med, Min, Max float64
}

// Summarize is the Stat of the values that are not NaN.
func Summarize(values []float64) Stat {
	var v []float64
	for _, x := range values {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Stat{Med: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	sort.Float64s(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Stat{N: n, Med: med, Min: v[0], Max: v[n-1]}
}

// Ratio is a/b, NaN when either is missing or b is 0.
func Ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// CPUPerGiB is CPU seconds per GiB moved; NaN if nothing was measured.
func CPUPerGiB(cpu float64, bytes int64) float64 {
	if math.IsNaN(cpu) || bytes <= 0 {
		return math.NaN()
	}
	return cpu / (float64(bytes) / (1 << 30))
}

// CPUPer10k is CPU seconds per 10,000 I/Os; NaN if nothing was measured.
func CPUPer10k(cpu float64, ios int64) float64 {
	if math.IsNaN(cpu) || ios <= 0 {
		return math.NaN()
	}
	return cpu / (float64(ios) / 1e4)
}

// Value is the job's throughput in its metric: IOPS, or MiB/s.
func (j Job) Value(s Sample) float64 {
	if j.Metric == MiBs {
		return s.BW / (1 << 20)
	}
	return s.IOPS
}

// Unit is the metric's unit.
func (j Job) Unit() string {
	if j.Metric == MiBs {
		return "MiB/s"
	}
	return "IOPS"
}

// Cell is one (job, client) row of a volume's table.
type Cell struct {
	Value, P50, P99, P999  Stat
	CPUGiB, CPU10k         Stat
	BrickGiB, AppGiB, Busy Stat  // bricks' and fio's CPU s/GiB, the host's busy share
	PeakRSS                int64 // KiB, the largest over the repeats; 0 if not measured
	StartRSS               int64 // KiB, VmRSS at the start of the run whose peak that was
	RSSSampled, ClatOnly   bool  // some run's peak RSS was sampled only / its latency completion only
	Runs, Failed           int
	Errs                   []string
}

// Summarize the samples of one volume, job and client.
func summarizeCell(j Job, samples []Sample) Cell {
	var c Cell
	var val, p50, p99, p999, cg, ck, bg, ag, busy []float64
	for _, s := range samples {
		c.Runs++
		if !s.OK() {
			c.Failed++
			c.Errs = append(c.Errs, s.Err)
			continue
		}
		c.RSSSampled = c.RSSSampled || s.RSSSampled
		c.ClatOnly = c.ClatOnly || s.ClatOnly
		val = append(val, j.Value(s))
		p50 = append(p50, s.P50)
		p99 = append(p99, s.P99)
		p999 = append(p999, s.P999)
		cg = append(cg, CPUPerGiB(s.CPU, s.Bytes))
		ck = append(ck, CPUPer10k(s.CPU, s.IOs))
		bg = append(bg, CPUPerGiB(s.BrickCPU, s.Bytes))
		ag = append(ag, CPUPerGiB(s.AppCPU, s.Bytes))
		busy = append(busy, s.HostBusy)
		if s.PeakRSS > c.PeakRSS {
			c.PeakRSS, c.StartRSS = s.PeakRSS, s.StartRSS
		}
	}
	c.Value, c.P50, c.P99, c.P999 = Summarize(val), Summarize(p50), Summarize(p99), Summarize(p999)
	c.CPUGiB, c.CPU10k = Summarize(cg), Summarize(ck)
	c.BrickGiB, c.AppGiB, c.Busy = Summarize(bg), Summarize(ag), Summarize(busy)
	return c
}

// Table is one volume's markdown table: a row per job and client, in the
// order given, with the median over the repeats and its range, latency,
// ratios to native-strict and gfapi (of the medians), CPU and peak RSS,
// and where the machine's CPU went: the bricks', fio's and how busy the
// host was.
func Table(samples []Sample, volume string, js []Job, clients []string) string {
	by := map[[2]string][]Sample{}
	for _, s := range samples {
		if s.Volume == volume {
			k := [2]string{s.Job, s.Client}
			by[k] = append(by[k], s)
		}
	}
	var b strings.Builder
	b.WriteString("| job | client | throughput: median (min-max) | p50 ms | p99 ms | p99.9 ms | vs native-strict | vs gfapi | CPU s/GiB | CPU s/10k I/O | peak RSS MiB (at start) | bricks CPU s/GiB | fio CPU s/GiB | host CPU busy |\n")
	b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, j := range js {
		cells := map[string]Cell{}
		for _, c := range clients {
			cells[c] = summarizeCell(j, by[[2]string{j.Name, c}])
		}
		strict, hasStrict := cells["native-strict"]
		gfapi, hasGfapi := cells["gfapi"]
		for _, c := range clients {
			cell := cells[c]
			if cell.Runs == 0 {
				continue
			}
			val := "**FAIL**"
			if cell.Value.N > 0 {
				val = fmt.Sprintf("%s %s (%s-%s)", num(cell.Value.Med), j.Unit(), num(cell.Value.Min), num(cell.Value.Max))
				if cell.Failed > 0 {
					val += fmt.Sprintf(", %d of %d failed", cell.Failed, cell.Runs)
				}
			}
			vsStrict, vsGfapi := "-", "-"
			if hasStrict && c != "native-strict" {
				vsStrict = ratio(Ratio(cell.Value.Med, strict.Value.Med))
			}
			if hasGfapi && c != "gfapi" {
				vsGfapi = ratio(Ratio(cell.Value.Med, gfapi.Value.Med))
			}
			rss := "-"
			if cell.PeakRSS > 0 {
				rss = fmt.Sprintf("%.0f (%.0f)", float64(cell.PeakRSS)/1024, float64(cell.StartRSS)/1024)
				if cell.RSSSampled {
					rss += " sampled"
				}
			}
			p50 := ms(cell.P50.Med)
			if cell.ClatOnly {
				p50 += " clat"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				j.Desc, c, val, p50, ms(cell.P99.Med), ms(cell.P999.Med), vsStrict, vsGfapi,
				cpu(cell.CPUGiB.Med), cpu(cell.CPU10k.Med), rss, cpu(cell.BrickGiB.Med), cpu(cell.AppGiB.Med), pct(cell.Busy.Med))
		}
	}
	return b.String()
}

// Failures lists every failed run with its error.
func Failures(samples []Sample) []string {
	var out []string
	for _, s := range samples {
		if !s.OK() {
			out = append(out, fmt.Sprintf("%s %s %s repeat %d: %s", s.Volume, s.Job, s.Client, s.Rep, s.Err))
		}
	}
	return out
}

// num formats a throughput: no decimals from 100 up, one below.
func num(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// ms formats microseconds as milliseconds with three significant digits.
func ms(us float64) string {
	if math.IsNaN(us) {
		return "-"
	}
	v := us / 1000
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func ratio(r float64) string {
	if math.IsNaN(r) {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 2, 64) + "x"
}

// pct formats a share (0 to 1) as a whole percentage.
func pct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return strconv.FormatFloat(100*v, 'f', 0, 64) + " %"
}

func cpu(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	if v >= 10 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// Order is the client order of repeat rep (1-based): as given on odd
// repeats, reversed on even ones, so that drift of the machine falls on
// every client alike.
func Order(items []string, rep int) []string {
	out := append([]string(nil), items...)
	if rep%2 == 0 {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// SelectJobs resolves a JOBS list (names or the old script's aliases;
// empty: all) in table order.
func SelectJobs(list []string) ([]Job, error) {
	if len(list) == 0 {
		var all []Job
		for _, j := range jobs {
			if !j.OptIn {
				all = append(all, j)
			}
		}
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range list {
		if a, ok := jobAliases[n]; ok {
			n = a
		}
		found := false
		for _, j := range jobs {
			found = found || j.Name == n
		}
		if !found {
			var names []string
			for _, j := range jobs {
				names = append(names, j.Name)
			}
			return nil, fmt.Errorf("unknown job %q; jobs are %s", n, strings.Join(names, " "))
		}
		want[n] = true
	}
	var out []Job
	for _, j := range jobs {
		if want[j.Name] {
			out = append(out, j)
		}
	}
	return out, nil
}

// FioArgs is fio's command line for job j on one client: target is the
// file (for a mount or the local directory: a path; for gfapi: a name at
// the volume's root) or, for a multi-job run, the directory ("" for gfapi),
// engine the I/O engine's arguments.
func (j Job) FioArgs(target string, size string, runtimeSec int, engine []string, jsonOut string) []string {
	a := []string{"--name=" + j.Name, "--rw=" + j.RW, "--iodepth=" + strconv.Itoa(j.Depth),
		"--direct=1", "--time_based", "--runtime=" + strconv.Itoa(runtimeSec), "--size=" + size,
		"--norandommap", "--randrepeat=0", "--group_reporting", "--lat_percentiles=1", "--output-format=json", "--output=" + jsonOut}
	if strings.Contains(j.BS, "-") {
		a = append(a, "--bsrange="+j.BS)
	} else {
		a = append(a, "--bs="+j.BS)
	}
	if j.MixRead > 0 {
		a = append(a, "--rwmixread="+strconv.Itoa(j.MixRead), "--unified_rw_reporting=mixed")
	}
	if j.NumJobs > 1 {
		a = append(a, "--numjobs="+strconv.Itoa(j.NumJobs), "--filename_format="+MultiFilePattern)
		if target != "" {
			a = append(a, "--directory="+target)
		}
	} else {
		a = append(a, "--filename="+target)
	}
	return append(a, engine...)
}

// MultiFilePattern names the multi-job run's files: vm.0 ... vm.N-1.
const MultiFilePattern = "vm.$jobnum"

// Targets is a volume's table of brickfs against issue 14's targets, per
// job: throughput at least 1.5x native-strict's and at least gfapi's, p99
// below both of theirs, CPU per I/O below native-strict's, peak RSS at
// most twice native-strict's. A figure that is missing (a client not run,
// a run failed) is "-"; "yes"/"no" says whether the target is met.
func Targets(samples []Sample, volume string, js []Job) string {
	cell := func(j Job, client string) (Cell, bool) {
		var ss []Sample
		for _, s := range samples {
			if s.Volume == volume && s.Job == j.Name && s.Client == client {
				ss = append(ss, s)
			}
		}
		c := summarizeCell(j, ss)
		return c, c.Value.N > 0
	}
	// verdict is r with whether it meets the target: r >= limit, r < limit
	// or r <= limit, as cmp says.
	verdict := func(r, limit float64, cmp string) string {
		if math.IsNaN(r) {
			return "-"
		}
		ok := r >= limit
		switch cmp {
		case "<":
			ok = r < limit
		case "<=":
			ok = r <= limit
		}
		if ok {
			return ratio(r) + " yes"
		}
		return ratio(r) + " no"
	}
	var b strings.Builder
	b.WriteString("| job | brickfs / native-strict (>= 1.5x) | brickfs / gfapi (>= 1x) | p99 / native-strict's (< 1x) | p99 / gfapi's (< 1x) | CPU per I/O / native-strict's (< 1x) | peak RSS / native-strict's (<= 2x) |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	for _, j := range js {
		bf, ok := cell(j, "brickfs")
		if !ok {
			continue
		}
		st, _ := cell(j, "native-strict")
		gf, _ := cell(j, "gfapi")
		rss := math.NaN()
		if bf.PeakRSS > 0 && st.PeakRSS > 0 {
			rss = float64(bf.PeakRSS) / float64(st.PeakRSS)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", j.Desc,
			verdict(Ratio(bf.Value.Med, st.Value.Med), 1.5, ">="),
			verdict(Ratio(bf.Value.Med, gf.Value.Med), 1, ">="),
			verdict(Ratio(bf.P99.Med, st.P99.Med), 1, "<"),
			verdict(Ratio(bf.P99.Med, gf.P99.Med), 1, "<"),
			verdict(Ratio(bf.CPU10k.Med, st.CPU10k.Med), 1, "<"),
			verdict(rss, 2, "<="))
	}
	return b.String()
}
