package cli

import (
	"math"
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
