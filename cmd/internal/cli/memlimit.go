package cli

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

// DefaultMemoryLimit is the daemon's soft memory limit on what Go's
// heap and runtime hold. Past it the collector runs more often (the
// runtime bounds the time it takes to half the CPU), so the limit is a
// target, not a ceiling: a mount with more in flight than fits uses what
// it needs. It was set when the buffers of requests in flight lived in
// the heap (go-fuse's, and the bricks' READ replies): with 4 fio jobs
// (random 4k-1M, 60 % reads, QD8) on a replica-3 volume, peak RSS was
// 154-160 MiB without a limit, 105 MiB at 96M with the same CPU per MiB,
// 73 MiB at 64M with 1.7 times the CPU. Those buffers now live outside
// the heap (fuse/bufpool.go), and a READ's data goes from the brick
// straight into its FUSE reply buffer: in the same run the heap holds
// 8-12 MiB and Go 22-26 MiB from the kernel, well under the limit, which
// now only bounds a burst of large records (READDIRP, a heal's READs).
const DefaultMemoryLimit = 96 << 20

// minMemoryLimit is the least memory-limit accepted: below it the
// collector would run without end on any load.
const minMemoryLimit = 32 << 20

// setMemoryLimit applies memory-limit (0: the default, negative: none),
// unless GOMEMLIMIT is set in the environment, which the runtime has
// applied already. It says what it applied, for the log.
func setMemoryLimit(limit int64) string {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		if limit != 0 {
			return fmt.Sprintf("GOMEMLIMIT=%s (from the environment, which wins over memory-limit=%d)", env, limit)
		}
		return fmt.Sprintf("GOMEMLIMIT=%s (from the environment)", env)
	}
	switch {
	case limit == 0:
		debug.SetMemoryLimit(DefaultMemoryLimit)
		return fmt.Sprintf("%d MiB (the default)", DefaultMemoryLimit>>20)
	case limit < 0:
		debug.SetMemoryLimit(math.MaxInt64)
		return "none (memory-limit=0)"
	}
	debug.SetMemoryLimit(limit)
	return fmt.Sprintf("%d MiB (memory-limit)", limit>>20)
}

// DefaultProcs is how many threads run the daemon's Go code at once
// (GOMAXPROCS), at most the host's CPUs. The daemon's work is mostly
// system calls, which run outside this count; its own code took 3 % of
// its CPU in a 4k random read profile. What the count adds is the
// runtime's scheduler waking idle threads to look for work each time a
// reply readies a goroutine: with GOMAXPROCS at the CPU count (Go's
// default), a compute node with dozens of cores and a daemon per volume
// would spend its CPU on threads spinning for work that is not there.
// Measured side by side on one replica-3 volume of a loaded 2-core host,
// procs=1 against 2 took 3-18 % less CPU per I/O with 10-15 % more IOPS
// in one run, but in a later one 0-21 % fewer IOPS (4k reads, 64k 70/30)
// and 8-19 % more CPU per I/O on writes: 2 keeps room for a burst of
// large copies and for the FUSE readers and the brick replies at once.
const DefaultProcs = 2

// setProcs applies procs (0: the default), unless GOMAXPROCS is set in
// the environment, which the runtime has applied already. It says what it
// applied, for the log.
func setProcs(procs int) string {
	// The runtime ignores a GOMAXPROCS that is not a positive number.
	if env := os.Getenv("GOMAXPROCS"); env != "" && positive(env) {
		if procs != 0 {
			return fmt.Sprintf("GOMAXPROCS=%s (from the environment, which wins over procs=%d)", env, procs)
		}
		return fmt.Sprintf("GOMAXPROCS=%s (from the environment)", env)
	}
	how := "procs"
	if procs == 0 {
		procs, how = min(DefaultProcs, runtime.NumCPU()), "the default"
	}
	runtime.GOMAXPROCS(procs)
	return fmt.Sprintf("%d (%s)", procs, how)
}

func positive(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0
}
