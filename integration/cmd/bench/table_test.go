package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestParseFio(t *testing.T) {
	for _, tc := range []struct {
		file           string
		iops, bw       float64
		ios, bytes     int64
		p50, p99, p999 float64
	}{
		// Warnings before the JSON are skipped; the empty write side adds nothing.
		{"randread.json", 10000.5, 40960000, 100000, 409600000, 1500, 4000, 9000},
		// unified_rw_reporting=mixed: one direction for both.
		{"mixed.json", 500, 107374182, 5000, 1 << 30, 2000, 30000, 60000},
		// Reads and writes apart: summed, and the larger of each percentile.
		{"readwrite.json", 10, 100, 10, 1000, 2, 5, 10},
		// --lat_percentiles=1: the total latency (submission + completion)
		// is read, not the completion latency alone.
		{"latpct.json", 1000, 4096000, 10000, 40960000, 1000, 1800, 3000},
	} {
		var s Sample
		if err := ParseFio(read(t, tc.file), &s); err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if !near(s.IOPS, tc.iops) || !near(s.BW, tc.bw) || s.IOs != tc.ios || s.Bytes != tc.bytes ||
			!near(s.P50, tc.p50) || !near(s.P99, tc.p99) || !near(s.P999, tc.p999) {
			t.Errorf("%s: got IOPS %v BW %v IOs %d bytes %d p50 %v p99 %v p99.9 %v; want %v %v %d %d %v %v %v",
				tc.file, s.IOPS, s.BW, s.IOs, s.Bytes, s.P50, s.P99, s.P999, tc.iops, tc.bw, tc.ios, tc.bytes, tc.p50, tc.p99, tc.p999)
		}
		// Only latpct.json has total latency: the others are marked.
		if s.ClatOnly != (tc.file != "latpct.json") {
			t.Errorf("%s: ClatOnly %v", tc.file, s.ClatOnly)
		}
		s.Job, s.Client = jobs[0].Name, "brickfs"
		if tbl := Table([]Sample{s}, "", jobs[:1], []string{"brickfs"}); strings.Contains(tbl, " clat |") != s.ClatOnly {
			t.Errorf("%s: the table does not mark completion-only latency as such:\n%s", tc.file, tbl)
		}
	}
}

func TestFioArgsAskForTotalLatency(t *testing.T) {
	for _, j := range jobs {
		if !slices.Contains(j.FioArgs("/mnt/f", "1G", 10, []string{"--ioengine=libaio"}, "/tmp/o.json"), "--lat_percentiles=1") {
			t.Errorf("%s: fio is not asked for total latency percentiles", j.Name)
		}
	}
}

func TestParseFioErrors(t *testing.T) {
	for name, raw := range map[string]string{
		"not JSON":  "fio: failed to open file",
		"no jobs":   `{"jobs": []}`,
		"two jobs":  `{"jobs": [{"read": {"total_ios": 1}}, {"read": {"total_ios": 1}}]}`,
		"job error": `{"jobs": [{"error": 5, "read": {"total_ios": 1}}]}`,
		"no I/O":    `{"jobs": [{"error": 0, "read": {"total_ios": 0}, "write": {"total_ios": 0}}]}`,
	} {
		var s Sample
		err := ParseFio([]byte(raw), &s)
		if err == nil {
			t.Errorf("%s: no error", name)
		}
		if name == "job error" && !strings.Contains(err.Error(), "EIO") {
			t.Errorf("%s: %v does not name EIO", name, err)
		}
	}
}

func TestCPUTicks(t *testing.T) {
	// A name with spaces and a parenthesis; utime 1234, stime 567.
	stat := "4242 (glusterfs) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 0 0 20 0 12 0 100 1000000 2000 18446744073709551615"
	got, err := CPUTicks(stat)
	if err != nil || got != 1234+567 {
		t.Errorf("CPUTicks = %d, %v; want 1801", got, err)
	}
	if got, err := ChildTicks(stat); err != nil || got != 0 {
		t.Errorf("ChildTicks = %d, %v; want 0", got, err)
	}
	// The children's: cutime 89, cstime 11.
	reaped := "4242 (fio) Z 1 4242 4242 0 -1 4194560 1000 0 0 0 1234 567 89 11 20 0 1 0 100 0 0 0"
	if got, err := ChildTicks(reaped); err != nil || got != 100 {
		t.Errorf("ChildTicks = %d, %v; want 100", got, err)
	}
	if _, err := ChildTicks("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13"); err == nil {
		t.Error("ChildTicks of a short line: no error")
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 (x) S 1 2 3 4 5 6 7 8 9 10 u s 0"} {
		if _, err := CPUTicks(bad); err == nil {
			t.Errorf("CPUTicks(%q): no error", bad)
		}
	}
}

func TestVmRSS(t *testing.T) {
	status := "Name:\tbrickfs\nVmPeak:\t 1000 kB\nVmHWM:\t  900 kB\nVmRSS:\t   34816 kB\nThreads:\t12\n"
	if got, err := VmRSS(status); err != nil || got != 34816 {
		t.Errorf("VmRSS = %d, %v; want 34816", got, err)
	}
	if got, err := VmHWM(status); err != nil || got != 900 {
		t.Errorf("VmHWM = %d, %v; want 900", got, err)
	}
	if _, err := VmRSS("Name:\tkthreadd\n"); err == nil {
		t.Error("VmRSS of a kernel thread: no error")
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in            []float64
		n             int
		med, min, max float64
	}{
		{[]float64{3, 1, 2}, 3, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 4, 2.5, 1, 4},
		{[]float64{5}, 1, 5, 5, 5},
		{[]float64{math.NaN(), 7, 9}, 2, 8, 7, 9},
	} {
		s := Summarize(tc.in)
		if s.N != tc.n || s.Med != tc.med || s.Min != tc.min || s.Max != tc.max {
			t.Errorf("Summarize(%v) = %+v; want n %d med %v min %v max %v", tc.in, s, tc.n, tc.med, tc.min, tc.max)
		}
	}
	if s := Summarize(nil); s.N != 0 || !math.IsNaN(s.Med) {
		t.Errorf("Summarize(nil) = %+v", s)
	}
}

func TestRatioAndCPU(t *testing.T) {
	if r := Ratio(3, 2); r != 1.5 {
		t.Errorf("Ratio(3, 2) = %v", r)
	}
	for _, r := range []float64{Ratio(1, 0), Ratio(math.NaN(), 1), Ratio(1, math.NaN())} {
		if !math.IsNaN(r) {
			t.Errorf("Ratio of a missing value = %v; want NaN", r)
		}
	}
	if v := CPUPerGiB(3, 2<<30); v != 1.5 {
		t.Errorf("CPUPerGiB(3 s, 2 GiB) = %v", v)
	}
	if v := CPUPer10k(2, 40000); v != 0.5 {
		t.Errorf("CPUPer10k(2 s, 40k) = %v", v)
	}
	if !math.IsNaN(CPUPerGiB(math.NaN(), 1)) || !math.IsNaN(CPUPer10k(1, 0)) {
		t.Error("CPU per unit of nothing is not NaN")
	}
}

func TestOrder(t *testing.T) {
	in := []string{"a", "b", "c"}
	if got := Order(in, 1); !slices.Equal(got, in) {
		t.Errorf("Order(rep 1) = %v", got)
	}
	if got := Order(in, 2); !slices.Equal(got, []string{"c", "b", "a"}) {
		t.Errorf("Order(rep 2) = %v", got)
	}
	if !slices.Equal(in, []string{"a", "b", "c"}) {
		t.Errorf("Order changed its input: %v", in)
	}
}

func TestSelectJobs(t *testing.T) {
	js, err := SelectJobs([]string{"multi4", "randwrite4k", "randread4k-qd1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := jobNames(js); got != "randread4k-qd1 randwrite4k-qd16 multi4" {
		t.Errorf("SelectJobs = %s; want table order, aliases resolved", got)
	}
	if all, _ := SelectJobs(nil); jobNames(all) != "randread4k-qd1 randread4k-qd16 randwrite4k-qd1 randwrite4k-qd16 randrw64k-qd8 seqread1m-qd4 seqwrite1m-qd4 multi4" {
		t.Errorf("SelectJobs(nil) = %s; want all but the opt-in multi4-qd64", jobNames(all))
	}
	if js, _ := SelectJobs([]string{"multi4-qd64"}); jobNames(js) != "multi4-qd64" || js[0].Depth*js[0].NumJobs != 64 {
		t.Errorf("SelectJobs(multi4-qd64) = %+v; want the one job, 64 in flight", js)
	}
	if _, err := SelectJobs([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "randrw64k-qd8") {
		t.Errorf("SelectJobs(nope): %v; want an error listing the jobs", err)
	}
}

func TestFioArgs(t *testing.T) {
	var multi, rw64, rr Job
	for _, j := range jobs {
		switch j.Name {
		case "multi4":
			multi = j
		case "randrw64k-qd8":
			rw64 = j
		case "randread4k-qd16":
			rr = j
		}
	}
	a := strings.Join(multi.FioArgs("/mnt/x", "256M", 15, []string{"--ioengine=libaio"}, "/o.json"), " ")
	for _, want := range []string{"--rw=randrw", "--bsrange=4k-1M", "--rwmixread=60", "--numjobs=4", "--iodepth=8",
		"--directory=/mnt/x", "--filename_format=vm.$jobnum", "--group_reporting", "--unified_rw_reporting=mixed", "--direct=1",
		"--runtime=15", "--size=256M", "--ioengine=libaio"} {
		if !strings.Contains(a, want) {
			t.Errorf("multi4 args %q lack %s", a, want)
		}
	}
	// gfapi: the files at the volume's root, no directory.
	if a := strings.Join(multi.FioArgs("", "256M", 15, []string{"--ioengine=gfapi_async"}, "/o.json"), " "); strings.Contains(a, "--directory") {
		t.Errorf("gfapi multi4 args %q have a directory", a)
	}
	a = strings.Join(rw64.FioArgs("/mnt/x/f", "1G", 15, nil, "/o.json"), " ")
	for _, want := range []string{"--bs=64k", "--rwmixread=70", "--filename=/mnt/x/f"} {
		if !strings.Contains(a, want) {
			t.Errorf("randrw64k args %q lack %s", a, want)
		}
	}
	a = strings.Join(rr.FioArgs("f", "1G", 15, nil, "/o.json"), " ")
	if strings.Contains(a, "rwmix") || strings.Contains(a, "unified") || strings.Contains(a, "numjobs") {
		t.Errorf("randread args %q have mixed or multi-job options", a)
	}
}

func TestTable(t *testing.T) {
	mk := func(client string, rep int, iops, cpu float64, rss int64) Sample {
		return Sample{Volume: "rep3", Job: "randwrite4k-qd16", Client: client, Rep: rep, IOPS: iops, BW: iops * 4096,
			IOs: int64(iops * 10), Bytes: int64(iops * 10 * 4096), P50: 1000, P99: 12345, P999: 250000, CPU: cpu, PeakRSS: rss, StartRSS: rss / 2,
			BrickCPU: 3 * cpu, AppCPU: 1, HostBusy: 0.5 + float64(rep)/10}
	}
	nan := math.NaN()
	samples := []Sample{
		mk("brickfs", 1, 3000, 2, 40<<10), mk("brickfs", 2, 3300, 2, 50<<10), mk("brickfs", 3, 2700, 2, 45<<10),
		mk("native-strict", 1, 2000, 4, 30<<10), mk("native-strict", 2, 2000, 4, 30<<10),
		{Volume: "rep3", Job: "randwrite4k-qd16", Client: "native-strict", Rep: 3, Err: "fio: exit status 1", CPU: nan},
		mk("gfapi", 1, 2500, nan, 0).withBricks(1.5), mk("gfapi", 2, 3000, nan, 0).withBricks(1.5), mk("gfapi", 3, 3500, nan, 0).withBricks(1.5),
		{Volume: "rep3", Job: "randread4k-qd1", Client: "brickfs", Rep: 1, Err: "fio did not finish", CPU: nan},
		mk("brickfs", 1, 99999, 1, 1).withVolume("single"),
	}
	js, _ := SelectJobs([]string{"randwrite4k-qd16", "randread4k-qd1"})
	got := Table(samples, "rep3", js, []string{"brickfs", "native-strict", "gfapi", "local"})
	want := "| job | client | throughput: median (min-max) | p50 ms | p99 ms | p99.9 ms | vs native-strict | vs gfapi | CPU s/GiB | CPU s/10k I/O | peak RSS MiB (at start) | bricks CPU s/GiB | fio CPU s/GiB | host CPU busy |\n" +
		"|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| 4k randread QD1 | brickfs | **FAIL** | - | - | - | - | - | - | - | - | - | - | - |\n" +
		// 2 CPU s for 30000 I/Os of 4 KiB: 2/(30000*4096/2^30) s/GiB, 2/3 s
		// per 10k; the bricks 3 times that, fio 1 s (the median of 1 s over
		// 27000, 30000 and 33000 I/Os); the host busy 60-80 %.
		"| 4k randwrite QD16 | brickfs | 3000 IOPS (2700-3300) | 1.00 | 12.3 | 250 | 1.50x | 1.00x | 17.5 | 0.67 | 50 (25) | 52.4 | 8.74 | 70 % |\n" +
		"| 4k randwrite QD16 | native-strict | 2000 IOPS (2000-2000), 1 of 3 failed | 1.00 | 12.3 | 250 | - | 0.67x | 52.4 | 2.00 | 30 (15) | 157.3 | 13.1 | 65 % |\n" +
		"| 4k randwrite QD16 | gfapi | 3000 IOPS (2500-3500) | 1.00 | 12.3 | 250 | 1.50x | - | - | - | - | 13.1 | 8.74 | 70 % |\n"
	if got != want {
		t.Errorf("Table:\n%s\nwant:\n%s", got, want)
	}
	got = Targets(samples, "rep3", js)
	want = "| job | brickfs / native-strict (>= 1.5x) | brickfs / gfapi (>= 1x) | p99 / native-strict's (< 1x) | p99 / gfapi's (< 1x) | CPU per I/O / native-strict's (< 1x) | peak RSS / native-strict's (<= 2x) |\n" +
		"|---|---:|---:|---:|---:|---:|---:|\n" +
		"| 4k randwrite QD16 | 1.50x yes | 1.00x yes | 1.00x no | 1.00x no | 0.33x yes | 1.67x yes |\n"
	if got != want {
		t.Errorf("Targets:\n%s\nwant:\n%s", got, want)
	}
	if f := Failures(samples); len(f) != 2 || !strings.Contains(f[0], "rep3 randwrite4k-qd16 native-strict repeat 3: fio: exit status 1") {
		t.Errorf("Failures = %q", f)
	}
}

func (s Sample) withVolume(v string) Sample { s.Volume = v; return s }

func (s Sample) withBricks(cpu float64) Sample { s.BrickCPU = cpu; return s }

func TestHostTicks(t *testing.T) {
	stat := "cpu  100 5 50 1000 20 3 2 1 7 0\ncpu0 50 2 25 500 10 1 1 0 3 0\nintr 1\n"
	busy, total, err := HostTicks(stat)
	// busy: user+nice+system+irq+softirq+steal; guest is inside user.
	if err != nil || busy != 161 || total != 1181 {
		t.Errorf("HostTicks = %d, %d, %v; want 161, 1181", busy, total, err)
	}
	for _, bad := range []string{"", "intr 1 2 3 4 5 6 7 8 9", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, _, err := HostTicks(bad); err == nil {
			t.Errorf("HostTicks(%q): no error", bad)
		}
	}
}

func TestFormat(t *testing.T) {
	for us, want := range map[float64]string{123: "0.123", 1234: "1.23", 12345: "12.3", 123456: "123", math.NaN(): "-"} {
		if got := ms(us); got != want {
			t.Errorf("ms(%v) = %q; want %q", us, got, want)
		}
	}
	for v, want := range map[float64]string{9809.4: "9809", 97.25: "97.2", math.NaN(): "-"} {
		if got := num(v); got != want {
			t.Errorf("num(%v) = %q; want %q", v, got, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	for _, e := range []string{"VOLUMES", "CLIENTS", "JOBS", "REPEATS", "RUNTIME", "SIZE", "MULTI_SIZE", "OUT"} {
		t.Setenv(e, "")
	}
	c, err := parseConfig(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.volumes) != 4 || len(c.clients) != 5 || len(c.jobs) != len(jobs)-1 || c.repeats != 3 || c.runtime.Seconds() != 15 {
		t.Errorf("defaults: %+v", c)
	}
	t.Setenv("VOLUMES", "rep3")
	t.Setenv("REPEATS", "1")
	t.Setenv("RUNTIME", "5")
	t.Setenv("CLIENTS", "brickfs,native-strict")
	c, err = parseConfig([]string{"-o", "/tmp/x.md"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.volumes, []string{"rep3"}) || c.repeats != 1 || c.runtime.Seconds() != 5 || len(c.clients) != 2 || c.out != "/tmp/x.md" {
		t.Errorf("from the environment: %+v", c)
	}
	if c, err := parseConfig([]string{"-clients", "brickfs brickfs+memory-limit=64M+lag-timeout=1s"}); err != nil || len(c.clients) != 2 {
		t.Errorf("a brickfs variant beside brickfs: %v, %q", err, c.clients)
	}
	old := filepath.Join(t.TempDir(), "brickfs")
	if err := os.WriteFile(old, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if c, err := parseConfig([]string{"-clients", "brickfs brickfs@" + old + " brickfs@" + old + "+procs=1"}); err != nil || len(c.clients) != 3 {
		t.Errorf("other builds of brickfs beside brickfs: %v, %q", err, c.clients)
	}
	if _, err := parseConfig([]string{"-clients", "brickfs@" + old + ".missing"}); err == nil || !strings.Contains(err.Error(), "no brickfs binary") {
		t.Errorf("a build that is not there: %v", err)
	}
	for _, c := range []struct {
		client, bin string
		opts        []string
	}{
		{"brickfs+memory-limit=64M+lag-timeout=1s", "", []string{"memory-limit=64M", "lag-timeout=1s"}},
		{"brickfs@/tmp/old/brickfs", "/tmp/old/brickfs", nil},
		{"brickfs@/tmp/old/brickfs+procs=1", "/tmp/old/brickfs", []string{"procs=1"}},
	} {
		if bin, opts := variant(c.client); bin != c.bin || !slices.Equal(opts, c.opts) {
			t.Errorf("variant(%q) = %q %q, want %q %q", c.client, bin, opts, c.bin, c.opts)
		}
	}
	if f := fileSafe("brickfs@/tmp/old/brickfs+procs=1"); strings.Contains(f, "/") {
		t.Errorf("fileSafe left a slash: %q", f)
	}
	for _, args := range [][]string{{"-volumes", "rep4"}, {"-clients", "nfs"}, {"-clients", "brickfs+"}, {"-clients", "brickfs@"}, {"-clients", "brickfs@+procs=1"}, {"-jobs", "x"}, {"-repeats", "0"}, {"-runtime", "soon"}, {"-size", "1T"}} {
		if _, err := parseConfig(args); err == nil {
			t.Errorf("parseConfig(%q): no error", args)
		}
	}
}

func TestLibPlan(t *testing.T) {
	const size = 64 << 20
	for _, j := range jobs {
		p, err := newLibPlan(j, size, new(atomic.Int64), 7)
		if err != nil {
			t.Fatalf("%s: %v", j.Name, err)
		}
		lo, hi, _ := blockRange(j.BS)
		reads, sizes := 0, map[int64]int{}
		var sum int64
		var offs []int64
		for range 10000 {
			io := p.draw()
			if io.size < lo || io.size > hi || io.size%lo != 0 || io.off%lo != 0 || io.off < 0 || io.off+io.size > size {
				t.Fatalf("%s: I/O at %d of %d bytes: outside the file or the job's blocks", j.Name, io.off, io.size)
			}
			if io.read {
				reads++
			}
			sizes[io.size]++
			sum += io.size
			offs = append(offs, io.off)
		}
		want := map[string]int{"randread": 100, "read": 100, "randwrite": 0, "write": 0, "randrw": j.MixRead}[j.RW]
		if got := reads / 100; got < want-3 || got > want+3 {
			t.Errorf("%s: %d %% reads; want %d", j.Name, got, want)
		}
		if strings.HasPrefix(j.RW, "rand") {
			// Random: offsets all over the file, not in order.
			seen, ordered := map[int64]bool{}, 0
			for k, o := range offs {
				seen[o] = true
				if k > 0 && o > offs[k-1] {
					ordered++
				}
			}
			// Drawn with replacement from (size-hi)/lo+1 slots or more.
			slots := float64((size-hi)/lo + 1)
			expect := slots * (1 - math.Pow(1-1/slots, 10000))
			if float64(len(seen)) < 0.95*expect || ordered > 5300 || ordered < 4700 {
				t.Errorf("%s: %d distinct offsets, %d of 10000 above the one before: not random", j.Name, len(seen), ordered)
			}
		} else {
			// Sequential: block after block from 0, wrapping at the end.
			for k, o := range offs {
				if want := int64(k) * lo % size; o != want {
					t.Fatalf("%s: I/O %d at %d; want %d", j.Name, k, o, want)
				}
			}
		}
		if hi > lo {
			// Sizes uniform over the multiples of lo: both ends drawn, the
			// mean near the middle.
			mean, mid := float64(sum)/10000, float64(lo+hi)/2
			if sizes[lo] == 0 || sizes[hi] == 0 || math.Abs(mean-mid) > 0.05*mid {
				t.Errorf("%s: %d of %d, %d of %d bytes, mean %.0f; want both ends and a mean near %.0f", j.Name, sizes[lo], lo, sizes[hi], hi, mean, mid)
			}
		} else if len(sizes) != 1 {
			t.Errorf("%s: sizes %v; want only %d", j.Name, sizes, lo)
		}
	}
	// Sequential workers of one file share its cursor: four of them
	// together read blocks 0, 1, 2, ... in turn, whoever asks, and wrap.
	cur := new(atomic.Int64)
	var ws []*libPlan
	for w := range 4 {
		p, _ := newLibPlan(Job{RW: "read", BS: "1M"}, 6<<20, cur, uint64(w))
		ws = append(ws, p)
	}
	var got []int64
	for _, w := range []int{0, 3, 3, 1, 2, 0, 0, 1} {
		got = append(got, ws[w].draw().off>>20)
	}
	if !slices.Equal(got, []int64{0, 1, 2, 3, 4, 5, 0, 1}) {
		t.Errorf("sequential offsets (MiB) %v; want [0 1 2 3 4 5 0 1]", got)
	}
	if _, err := newLibPlan(Job{RW: "read", BS: "1M"}, 1<<10, cur, 1); err == nil || !strings.Contains(err.Error(), "SIZE") {
		t.Errorf("a file smaller than a block: %v", err)
	}
}

// fakeLib is a volume of one file for libRun: reads answer short past
// short (if set), every I/O fails once fail is set, the 5th hangs if hang
// is set. It counts the I/Os, the reads that had a buffer of the request's
// size to land in (fop.ReadDest), and the reads of each offset.
type fakeLib struct {
	mu          sync.Mutex
	reads       int
	writes      int
	inDest      int
	offs        map[uint64]int
	short, fail int64
	hang        chan struct{}
}

func (f *fakeLib) io(ctx context.Context, read bool) error {
	f.mu.Lock()
	if read {
		f.reads++
	} else {
		f.writes++
	}
	n := int64(f.reads + f.writes)
	f.mu.Unlock()
	if f.hang != nil && n == 5 {
		select {
		case <-f.hang:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail > 0 && n >= f.fail {
		return syscall.EIO
	}
	return nil
}

func (f *fakeLib) Read(ctx context.Context, _ *fop.Fd, off uint64, size uint32, _ xdr.Dict) ([]byte, xdr.Dict, error) {
	if err := f.io(ctx, true); err != nil {
		return nil, nil, err
	}
	if f.short > 0 && int64(off)+int64(size) > f.short {
		size = uint32(max(0, f.short-int64(off)))
	}
	data := make([]byte, size)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.offs == nil {
		f.offs = map[uint64]int{}
	}
	f.offs[off]++
	if rd := fop.ReadDestOf(ctx); rd != nil {
		if dest := rd.Take(int(size)); dest != nil {
			f.inDest++
			rd.Give()
		}
	}
	return data, nil, nil
}

func (f *fakeLib) Write(ctx context.Context, _ *fop.Fd, _ uint64, _ []byte, _ xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return xdr.Iatt{}, xdr.Iatt{}, nil, f.io(ctx, false)
}

func TestLibRun(t *testing.T) {
	j, _ := SelectJobs([]string{"randrw64k-qd8"})
	fd := []*fop.Fd{{}}
	var s Sample
	f := &fakeLib{}
	libRun(context.Background(), f, fd, 1<<20, 100*time.Millisecond, j[0], &s)
	f.mu.Lock()
	reads, writes := f.reads, f.writes
	f.mu.Unlock()
	// Every I/O counted once, with its bytes, latency and a share of reads.
	if !s.OK() || s.IOs != int64(reads+writes) || s.Bytes != s.IOs*64<<10 || s.IOPS <= 0 || !near(s.BW, s.IOPS*65536) || s.P50 <= 0 || s.P999 < s.P50 {
		t.Errorf("sample %+v after %d reads and %d writes", s, reads, writes)
	}
	if reads < writes {
		t.Errorf("%d reads, %d writes: want 70 %% reads", reads, writes)
	}
	// Every read has a buffer to land in, as fuse's reply buffer.
	if f.inDest != reads {
		t.Errorf("%d reads, %d of them with a buffer to land in: want all", reads, f.inDest)
	}
	// Sequential workers share the file's cursor: no block is read twice
	// before the file wraps (16 blocks of 64k, 4 workers).
	seq := &fakeLib{}
	sj := Job{Name: "seq", RW: "read", BS: "64k", Depth: 4}
	s = Sample{}
	libRun(context.Background(), seq, fd, 1<<20, 20*time.Millisecond, sj, &s)
	seq.mu.Lock()
	lo, hi := math.MaxInt, 0
	for off := uint64(0); off < 1<<20; off += 64 << 10 {
		lo, hi = min(lo, seq.offs[off]), max(hi, seq.offs[off])
	}
	seq.mu.Unlock()
	if !s.OK() || hi-lo > 1 {
		t.Errorf("sequential reads per 64k block from %d to %d (%q): workers do not share the cursor", lo, hi, s.Err)
	}
	// A failing I/O fails the run, saying which.
	s = Sample{}
	libRun(context.Background(), &fakeLib{fail: 20}, fd, 1<<20, 5*time.Second, j[0], &s)
	if !strings.Contains(s.Err, "input/output error") || !strings.Contains(s.Err, "(65536 bytes)") {
		t.Errorf("failing I/O: %q", s.Err)
	}
	// A short read is an error, not a full block.
	s = Sample{}
	rj, _ := SelectJobs([]string{"seqread1m-qd4"})
	libRun(context.Background(), &fakeLib{short: 3 << 20}, fd, 4<<20, 5*time.Second, rj[0], &s)
	if !strings.Contains(s.Err, "shorter than it was written") {
		t.Errorf("short read: %q", s.Err)
	}
	// Interrupted: the run says so.
	s = Sample{}
	ctx, cancel := context.WithCancel(context.Background())
	hung := &fakeLib{hang: make(chan struct{})}
	time.AfterFunc(50*time.Millisecond, cancel)
	libRun(ctx, hung, fd, 1<<20, 5*time.Second, j[0], &s)
	if s.Err != "interrupted" {
		t.Errorf("interrupted run: %q", s.Err)
	}
	// An I/O stuck past the run time and the drain fails the run.
	defer func(d time.Duration) { libDrain = d }(libDrain)
	libDrain = 100 * time.Millisecond
	s = Sample{}
	libRun(context.Background(), &fakeLib{hang: make(chan struct{})}, fd, 1<<20, 50*time.Millisecond, j[0], &s)
	if !strings.Contains(s.Err, "did not finish within 150ms") {
		t.Errorf("stuck I/O: %q", s.Err)
	}
}

func TestLatPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Microsecond)
	}
	if p50, p99, p999 := latPercentile(d, 50), latPercentile(d, 99), latPercentile(d, 99.9); p50 != 500 || p99 != 990 || p999 != 999 {
		t.Errorf("percentiles %v %v %v; want 500 990 999", p50, p99, p999)
	}
	if !math.IsNaN(latPercentile(nil, 50)) {
		t.Error("no latencies: not NaN")
	}
}

func TestLibClientNeedsAFiller(t *testing.T) {
	if _, err := parseConfig([]string{"-clients", "brickfs-lib local"}); err == nil || !strings.Contains(err.Error(), "writes no files") {
		t.Errorf("brickfs-lib alone: %v", err)
	}
	if _, err := parseConfig([]string{"-clients", "brickfs brickfs-lib"}); err != nil {
		t.Errorf("brickfs and brickfs-lib: %v", err)
	}
}

// runFioCPU reads the reaped children's CPU while the leader is a zombie:
// after cmd.Wait it would be gone.
func TestRunFioCPUCountsReapedChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'; exit 0`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cpu, err := runFioCPU(context.Background(), cmd)
	if err != nil || !(cpu >= 0.05) {
		t.Errorf("runFioCPU = %v s, %v; want the busy child's CPU (0.05 s or more)", cpu, err)
	}
}

func TestLibProfileEnv(t *testing.T) {
	t.Setenv("LIB_PROFILE", "yes")
	if _, err := parseConfig(nil); err == nil || !strings.Contains(err.Error(), "LIB_PROFILE") {
		t.Errorf("LIB_PROFILE=yes: %v", err)
	}
	t.Setenv("LIB_PROFILE", "1")
	if c, err := parseConfig(nil); err != nil || !c.libProfile {
		t.Errorf("LIB_PROFILE=1: %v, %v", c.libProfile, err)
	}
}
