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
	"sync/atomic"
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
// the main file or the multi-job run's files, at the volume's root, each
// at least size bytes long.
func libFiles(ctx context.Context, v *failover.Volume, j Job, size int64) ([]*fop.Fd, error) {
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
			return nil, fmt.Errorf("%s: look up %s: %w (the files are written before the runs; its log says more)", libClient, n, err)
		}
		if int64(ia.Size) < size {
			libRelease(v, fds)
			return nil, fmt.Errorf("%s: %s is %d bytes, the job needs %d: it was not written completely; run the bench again", libClient, n, ia.Size, size)
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
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, f := range fds {
		_ = v.Release(ctx, f)
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

// libPlan draws a worker's I/Os as fio's job would: random offsets
// aligned to the smallest block size within the file, block sizes uniform
// over the range's multiples, reads in MixRead percent of a mixed job. A
// sequential job's workers on one file share its cursor, so the blocks go
// out in order, as from one fio job's queue, and wrap at the file's end.
type libPlan struct {
	j               Job
	lo, hi, size    int64
	rng             *rand.Rand
	cursor          *atomic.Int64 // sequential: the file's next block
	random, reading bool
}

func newLibPlan(j Job, size int64, cursor *atomic.Int64, seed uint64) (*libPlan, error) {
	lo, hi, err := blockRange(j.BS)
	if err != nil {
		return nil, err
	}
	if size < hi {
		return nil, fmt.Errorf("files of %d bytes are smaller than the job's largest block of %d: give a larger SIZE (or MULTI_SIZE for the multi-VM run)", size, hi)
	}
	return &libPlan{j: j, lo: lo, hi: hi, size: size, rng: rand.New(rand.NewPCG(seed, seed>>32^0x9e3779b97f4a7c15)), cursor: cursor,
		random: strings.HasPrefix(j.RW, "rand"), reading: j.RW == "read" || j.RW == "randread"}, nil
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
		// Sequential jobs have one block size (hi is lo).
		off = (p.cursor.Add(1) - 1) % (p.size / p.hi) * p.hi
	}
	return libIO{read: read, off: off, size: size}
}

// libJob runs job j on v's files for the run time into s.
func libJob(ctx context.Context, v *failover.Volume, cfg config, j Job, s *Sample) {
	size, err := parseSize(cfg.size)
	if j.NumJobs > 1 {
		size, err = parseSize(cfg.multi)
	}
	if err != nil {
		s.Err = err.Error()
		return
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	fds, err := libFiles(octx, v, j, size)
	cancel()
	if err != nil {
		s.Err = err.Error()
		return
	}
	defer libRelease(v, fds)
	libRun(ctx, v, fds, size, cfg.runtime, j, s)
}

// libVol is what libRun needs of a volume (a fake in the tests).
type libVol interface {
	Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error)
	Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error)
}

// libRun runs job j for the run time on files (each at least size bytes)
// through v: a worker per I/O in flight (the job's depth, times its jobs),
// each waiting for its I/O before the next, as fio's queue keeps that many
// in flight. Reads land in a buffer of the worker's own (fop.ReadDest),
// as the FUSE daemon's land in its reply buffer. The sample holds what fio's would, latency measured around
// each call; CPU is the bench process's own over the run: brickfs's graph
// and the workers that stand in for fio. An I/O that has not finished
// runtime+2 min after the start fails the run.
func libRun(ctx context.Context, v libVol, files []*fop.Fd, size int64, runtime time.Duration, j Job, s *Sample) {
	var plans []*libPlan
	var fds []*fop.Fd
	seed := uint64(time.Now().UnixNano())
	for _, f := range files {
		cursor := new(atomic.Int64)
		for range j.Depth {
			p, err := newLibPlan(j, size, cursor, seed+uint64(len(plans))<<32)
			if err != nil {
				s.Err = fmt.Sprintf("%s: %v", libClient, err)
				return
			}
			plans, fds = append(plans, p), append(fds, f)
		}
	}
	lats := make([][]time.Duration, len(plans))
	bytes := make([]int64, len(plans))
	errs := make([]error, len(plans))
	// Workers stop issuing at the run time and drain what is in flight,
	// as fio does; ioctx bounds the drain as fio's runs are bounded.
	rctx, stop := context.WithTimeout(ctx, runtime)
	defer stop()
	limit := runtime + libDrain
	ioctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cpu0 := selfCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range plans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, plans[i].hi)
			rbuf := make([]byte, plans[i].hi) // reads land here, as in fuse's reply buffer
			for k := range buf {
				buf[k] = byte(k*7 + i) // not zeros: nothing may take a short cut
			}
			for rctx.Err() == nil {
				io := plans[i].draw()
				t0 := time.Now()
				var err error
				if io.read {
					var data []byte
					data, _, err = v.Read(fop.WithReadDest(ioctx, rbuf[:io.size]), fds[i], uint64(io.off), uint32(io.size), nil)
					n := int64(len(data))
					if err == nil && n != io.size {
						err = fmt.Errorf("%d bytes came back: the file is shorter than it was written", n)
					}
				} else {
					_, _, _, err = v.Write(ioctx, fds[i], uint64(io.off), buf[:io.size], nil)
				}
				if err != nil {
					if ioctx.Err() != nil && ctx.Err() == nil {
						err = fmt.Errorf("did not finish within %v of the run's start: %w", limit, err)
					}
					op := "write"
					if io.read {
						op = "read"
					}
					errs[i] = fmt.Errorf("%s at %d (%d bytes): %w", op, io.off, io.size, err)
					stop()
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

// libDrain is how long past the run time an I/O in flight may take
// before it fails the run (fio's runs are bounded the same way).
var libDrain = 2 * time.Minute

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
