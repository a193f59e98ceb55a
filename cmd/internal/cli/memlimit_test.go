package cli

import (
	"math"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	for _, c := range []struct{ opt, want int64 }{{0, DefaultMemoryLimit}, {96 << 20, 96 << 20}, {-1, math.MaxInt64}} {
		setMemoryLimit(c.opt)
		if got := debug.SetMemoryLimit(-1); got != c.want {
			t.Errorf("memory-limit %d: the runtime's limit is %d, want %d", c.opt, got, c.want)
		}
	}
	// GOMEMLIMIT in the environment wins, and the log says so.
	t.Setenv("GOMEMLIMIT", "200MiB")
	debug.SetMemoryLimit(123 << 20)
	said := setMemoryLimit(64 << 20)
	if got := debug.SetMemoryLimit(-1); got != 123<<20 || !strings.Contains(said, "wins over memory-limit") {
		t.Errorf("with GOMEMLIMIT set, memory-limit changed the limit to %d, and said %q", got, said)
	}
}

func TestSetProcs(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	for _, c := range []struct{ opt, want int }{{0, min(DefaultProcs, runtime.NumCPU())}, {1, 1}, {3, 3}} {
		setProcs(c.opt)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("procs=%d: GOMAXPROCS is %d, want %d", c.opt, got, c.want)
		}
	}
	// A GOMAXPROCS the runtime ignores does not stop procs.
	t.Setenv("GOMAXPROCS", "abc")
	if setProcs(1); runtime.GOMAXPROCS(0) != 1 {
		t.Errorf("with GOMAXPROCS=abc, procs=1 gave %d", runtime.GOMAXPROCS(0))
	}
	t.Setenv("GOMAXPROCS", "5")
	runtime.GOMAXPROCS(5)
	if said := setProcs(1); runtime.GOMAXPROCS(0) != 5 || !strings.Contains(said, "wins over procs=1") {
		t.Errorf("with GOMAXPROCS set, procs=1 gave %d and said %q", runtime.GOMAXPROCS(0), said)
	}
	m := defaults()
	for _, bad := range []string{"0", "-1", "x", "2000"} {
		if err := m.parseOptions("procs=" + bad); err == nil || !strings.Contains(err.Error(), "1 to 1024") {
			t.Errorf("procs=%s: %v", bad, err)
		}
	}
	if err := m.parseOptions("procs=4"); err != nil || m.Procs != 4 {
		t.Errorf("procs=4: %v, %d", err, m.Procs)
	}
}

func TestMaxRequestOption(t *testing.T) {
	m := defaults()
	for _, ok := range []struct {
		v    string
		want int
	}{{"128K", 128 << 10}, {"256K", 256 << 10}, {"1M", 1 << 20}} {
		if err := m.parseOptions("max-request=" + ok.v); err != nil || m.MaxRequest != ok.want {
			t.Errorf("max-request=%s: %v, %d", ok.v, err, m.MaxRequest)
		}
	}
	for _, bad := range []string{"64K", "2M", "300K", "x"} {
		if err := m.parseOptions("max-request=" + bad); err == nil {
			t.Errorf("max-request=%s: no error", bad)
		}
	}
}
