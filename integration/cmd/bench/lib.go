package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/brick/xdr"
	"github.com/brickfs/brickfs/failover"
)

// libClient is brickfs's own graph (AFR, shard, DHT, the brick protocol)
// in the bench's process, driven by goroutines instead of fio through
// FUSE: what brickfs's layers and the bricks cost without the kernel's
// FUSE round trip, go-fuse and fio. The counterpart of gfapi, which is
// GlusterFS's client stack without FUSE.
const libClient = "brickfs-lib"

// libVolume opens the volume served by glusterd at host as brickfs's mount
// does (the volfile fetched, the graph built with the mount's defaults).
func libVolume(ctx context.Context, host, volume string, log *zap.Logger) (*failover.Volume, error) {
	got, err := volfile.Fetch(ctx, []volfile.Server{{Host: host, Port: 24007}}, volume, volfile.FetchOptions{Timeout: 10 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%s: fetch the volfile from %s: %w", libClient, host, err)
	}
	g, err := volfile.Parse(got.Volfile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", libClient, err)
	}
	v, err := failover.Open(ctx, g, failover.Options{VolfileKey: "/" + volume}, log)
	if err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", libClient, volume, err)
	}
	return v, nil
}

// libFiles opens, O_RDWR|O_DIRECT as fio does, the files job j works on:
// the main file or the multi-job run's files, at the volume's root.
func libFiles(ctx context.Context, v *failover.Volume, j Job) ([]*fop.Fd, error) {
	names := []string{mainFile}
	if j.NumJobs > 1 {
		names = names[:0]
		for i := range j.NumJobs {
			names = append(names, strings.ReplaceAll(MultiFilePattern, "$jobnum", strconv.Itoa(i)))
		}
	}
	var fds []*fop.Fd
	for _, n := range names {
		ia, _, err := v.Lookup(ctx, xdr.RootGFID, n, xdr.GFID{}, nil)
		if err != nil {
			libRelease(v, fds)
			return nil, fmt.Errorf("%s: look up %s: %w", libClient, n, err)
		}
		f, _, err := v.Open(ctx, ia.GFID, uint32(syscall.O_RDWR|syscall.O_DIRECT), nil)
		if err != nil {
			libRelease(v, fds)
			return nil, fmt.Errorf("%s: open %s: %w", libClient, n, err)
		}
		fds = append(fds, f)
	}
	return fds, nil
}

func libRelease(v *failover.Volume, fds []*fop.Fd) {
	for _, f := range fds {
		_ = v.Release(context.Background(), f)
	}
}

// blockRange is a job's block size, or its range (fio's --bsrange: sizes
// in multiples of the smallest).
func blockRange(bs string) (lo, hi int64, err error) {
	a, b, ranged := strings.Cut(strings.ToUpper(bs), "-")
	if lo, err = parseSize(a); err != nil {
		return 0, 0, err
	}
	hi = lo
	if ranged {
		if hi, err = parseSize(b); err != nil {
			return 0, 0, err
		}
	}
	if lo <= 0 || hi < lo {
		return 0, 0, fmt.Errorf("block size %q", bs)
	}
	return lo, hi, nil
}

// libIO is one worker's next I/O: whether it reads, where and how much.
type libIO struct {
	read      bool
	off, size int64
}

// libPlan draws a worker's I/Os as fio's job would: random or sequential
// offsets aligned to the smallest block size within the file, block sizes
// uniform over the range's multiples, reads in MixRead percent of a mixed
// job. Sequential workers of one file start a block apart and stride by
// the queue depth's blocks, as one fio job's queue does.
type libPlan struct {
	j               Job
	lo, hi, size    int64
	rng             *rand.Rand
	next, stride    int64
	random, reading bool
}

func newLibPlan(j Job, size int64, worker, depth int, seed uint64) (*libPlan, error) {
	lo, hi, err := blockRange(j.BS)
	if err != nil {
		return nil, err
	}
	if size < hi {
		return nil, fmt.Errorf("file of %d bytes is smaller than a block of %d", size, hi)
	}
	p := &libPlan{j: j, lo: lo, hi: hi, size: size, rng: rand.New(rand.NewPCG(seed, uint64(worker))),
		random: strings.HasPrefix(j.RW, "rand"), reading: j.RW == "read" || j.RW == "randread"}
	p.next, p.stride = int64(worker)*lo, int64(depth)*lo
	return p, nil
}

func (p *libPlan) draw() libIO {
	size := p.lo
	if p.hi > p.lo {
		size = p.lo * (1 + p.rng.Int64N(p.hi/p.lo))
	}
	read := p.reading
	if p.j.MixRead > 0 {
		read = p.rng.IntN(100) < p.j.MixRead
	}
	var off int64
	if p.random {
		off = p.rng.Int64N((p.size-size)/p.lo+1) * p.lo
	} else {
		if p.next+size > p.size {
			p.next %= p.stride
		}
		off = p.next
		p.next += p.stride
	}
	return libIO{read: read, off: off, size: size}
}

// libRun runs job j for the run time through v: a worker per I/O in
// flight (the job's depth, times its jobs), each waiting for its I/O
// before the next, as fio's queue keeps that many in flight. The sample
// holds what fio's would; CPU is the bench process's own over the run
// (brickfs's graph and the workers); fio and peak RSS do not apply.
func libRun(ctx context.Context, v *failover.Volume, cfg config, j Job, s *Sample) {
	fds, err := libFiles(ctx, v, j)
	if err != nil {
		s.Err = err.Error()
		return
	}
	defer libRelease(v, fds)
	size, err := parseSize(cfg.size)
	if j.NumJobs > 1 {
		size, err = parseSize(cfg.multi)
	}
	if err != nil {
		s.Err = err.Error()
		return
	}
	var plans []*libPlan
	var files []*fop.Fd
	seed := uint64(time.Now().UnixNano())
	for _, f := range fds {
		for w := range j.Depth {
			p, err := newLibPlan(j, size, w, j.Depth, seed+uint64(len(plans))<<32)
			if err != nil {
				s.Err = fmt.Sprintf("%s: %v", libClient, err)
				return
			}
			plans, files = append(plans, p), append(files, f)
		}
	}
	lats := make([][]time.Duration, len(plans))
	bytes := make([]int64, len(plans))
	errs := make([]error, len(plans))
	rctx, cancel := context.WithTimeout(ctx, cfg.runtime)
	defer cancel()
	cpu0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, hi, _ := blockRange(j.BS)
			buf := make([]byte, hi)
			for k := range buf {
				buf[k] = byte(k*7 + i) // not zeros: nothing may take a short cut
			}
			for rctx.Err() == nil {
				io := plans[i].draw()
				t0 := time.Now()
				var err error
				if io.read {
					_, _, err = v.Read(ctx, files[i], uint64(io.off), uint32(io.size), nil)
				} else {
					_, _, _, err = v.Write(ctx, files[i], uint64(io.off), buf[:io.size], nil)
				}
				if err != nil {
					errs[i] = fmt.Errorf("%s at %d (%d bytes): %w", map[bool]string{true: "read", false: "write"}[io.read], io.off, io.size, err)
					cancel()
					return
				}
				lats[i] = append(lats[i], time.Since(t0))
				bytes[i] += io.size
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	s.CPU = selfCPU() - cpu0
	if ctx.Err() != nil {
		s.Err = "interrupted"
		return
	}
	for _, e := range errs {
		if e != nil {
			s.Err = fmt.Sprintf("%s: %v", libClient, e)
			return
		}
	}
	var all []time.Duration
	for i := range lats {
		all = append(all, lats[i]...)
		s.Bytes += bytes[i]
	}
	s.IOs = int64(len(all))
	if s.IOs == 0 {
		s.Err = libClient + ": completed no I/O"
		return
	}
	s.IOPS = float64(s.IOs) / took.Seconds()
	s.BW = float64(s.Bytes) / took.Seconds()
	slices.Sort(all)
	s.P50, s.P99, s.P999 = latPercentile(all, 50), latPercentile(all, 99), latPercentile(all, 99.9)
}

// latPercentile is the p-th percentile of sorted latencies, in
// microseconds (nearest rank).
func latPercentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p/100*float64(len(sorted))-1e-9)) - 1 // 99.9/100*1000 is 999.0000000000001
	i = min(max(i, 0), len(sorted)-1)
	return float64(sorted[i].Nanoseconds()) / 1000
}

// selfCPU is this process's CPU seconds so far (user and system).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
