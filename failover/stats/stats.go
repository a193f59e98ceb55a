// Package stats is debug/io-stats: the top of the volume graph, where
// every fop the mount asks of the volume is counted and timed, by fop and
// errno, with the bytes read and written. The figures feed `brickfs
// status`, the Prometheus metrics and the statedump.
//
// # Concurrency
//
// Every figure is an atomic counter: a fop pays two clock reads and a few
// uncontended atomic adds, never a lock. A reader (Status) sees each
// counter at some moment, not all of them at one moment.
//
// # Errors
//
// Errors pass through unchanged; each is counted under its errno as
// fop.Errno reads it.
package stats

import (
	"math/bits"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop"
)

// Type is the translator type the layer carries out.
const Type = "debug/io-stats"

// Buckets are the latency histogram's upper bounds: 25 µs doubling to
// about 13 s, the span from a cached answer to a brick's ping timeout.
var Buckets = func() []time.Duration {
	b := make([]time.Duration, numBuckets)
	for i := range b {
		b[i] = firstBucket << i
	}
	return b
}()

const (
	firstBucket = 25 * time.Microsecond
	numBuckets  = 20
	// maxErrno bounds the errnos counted by number; others count as EIO's
	// neighbour slot 0 ("other").
	maxErrno = 134
)

type counters struct {
	count   atomic.Uint64
	total   atomic.Int64 // ns
	buckets [numBuckets + 1]atomic.Uint64
	errs    [maxErrno]atomic.Uint64 // by errno; [0] holds errnos past the table
}

// Stats is the io-stats layer over next.
type Stats struct {
	name          string
	next          fop.Subvolume
	fops          [numFops]counters
	read, written atomic.Uint64
}

var _ fop.Subvolume = (*Stats)(nil)

// New returns the layer named name over next.
func New(name string, next fop.Subvolume) *Stats { return &Stats{name: name, next: next} }

// Name is the translator's name.
func (s *Stats) Name() string { return s.name }

// Up is next's state: the layer adds none of its own.
func (s *Stats) Up() bool { return s.next.Up() }

// Watch hands fn to next.
func (s *Stats) Watch(fn func(up bool)) { s.next.Watch(fn) }

// Next is the subvolume below the layer.
func (s *Stats) Next() fop.Subvolume { return s.next }

func (s *Stats) begin() int64 { return nanotime() }

func (s *Stats) end(op int, start int64, err error) {
	d := nanotime() - start
	c := &s.fops[op]
	c.count.Add(1)
	c.total.Add(d)
	c.buckets[bucket(time.Duration(d))].Add(1)
	if err != nil {
		en := fop.Errno(err)
		if en <= 0 || int(en) >= maxErrno {
			en = 0
		}
		c.errs[en].Add(1)
	}
}

// bucket is the index of the histogram bucket d falls in: the first bound
// at least d, or numBuckets past the last.
func bucket(d time.Duration) int {
	if d <= firstBucket {
		return 0
	}
	i := bits.Len64(uint64((d - 1) / firstBucket))
	return min(i, numBuckets)
}

// epoch anchors nanotime: time.Since reads the monotonic clock.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// Figures returns the counters of the fops called so far.
func (s *Stats) Figures() fop.FopStats {
	out := fop.FopStats{Buckets: Buckets, BytesRead: s.read.Load(), BytesWritten: s.written.Load()}
	for op := range s.fops {
		c := &s.fops[op]
		n := c.count.Load()
		if n == 0 {
			continue
		}
		f := fop.OneFopStats{Fop: fopNames[op], Count: n, Total: time.Duration(c.total.Load()), Buckets: make([]uint64, numBuckets+1)}
		for i := range c.buckets {
			f.Buckets[i] = c.buckets[i].Load()
		}
		for en := range c.errs {
			if k := c.errs[en].Load(); k > 0 {
				if f.Errors == nil {
					f.Errors = map[string]uint64{}
				}
				f.Errors[errnoName(syscall.Errno(en))] += k
			}
		}
		out.Fops = append(out.Fops, f)
	}
	return out
}

func errnoName(en syscall.Errno) string {
	if en == 0 {
		return "other"
	}
	if n := unix.ErrnoName(en); n != "" {
		return n
	}
	return "errno" + en.Error()
}
