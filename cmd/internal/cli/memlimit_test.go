package cli

import (
	"math"
	"runtime/debug"
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
}
