package hostile

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// Measure is what a scenario started from: goroutines and bytes allocated.
// Scenarios that use it must not run in parallel.
type Measure struct {
	goroutines int
	alloc      uint64
}

// Start measures now.
func Start() *Measure {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &Measure{goroutines: runtime.NumGoroutine(), alloc: ms.TotalAlloc}
}

// Allocated is how many bytes the process allocated since Start.
func (m *Measure) Allocated() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc - m.alloc
}

// Settle fails tb unless the goroutines are back to what they were at
// Start within d, once everything the scenario started has been closed
// (whose Close waits for its goroutines: only their last instructions are
// left to run).
func (m *Measure) Settle(tb testing.TB, d time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for runtime.NumGoroutine() > m.goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			tb.Fatalf("%d goroutines left running, %d before the scenario:\n%s", runtime.NumGoroutine(), m.goroutines, buf)
		}
		runtime.Gosched()
		time.Sleep(time.Millisecond)
	}
}

// Logger is a logger for tb that also records every line at Debug and
// above for the test to look at.
func Logger(tb testing.TB) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.DebugLevel)
	return zap.New(zapcore.NewTee(zaptest.NewLogger(tb).Core(), core)), logs
}

// Line waits up to d for a log line with message msg whose field key
// holds value and whose error field contains every one of errHas; it
// fails tb if none comes.
func Line(tb testing.TB, logs *observer.ObservedLogs, d time.Duration, msg, key, value string, errHas ...string) observer.LoggedEntry {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, e := range logs.FilterMessage(msg).All() {
			f := e.ContextMap()
			if v, _ := f[key].(string); v != value && key != "" {
				continue
			}
			es, _ := f["error"].(string)
			ok := true
			for _, h := range errHas {
				ok = ok && strings.Contains(es, h)
			}
			if ok {
				return e
			}
		}
		if time.Now().After(deadline) {
			var seen []string
			for _, e := range logs.All() {
				seen = append(seen, e.Message+" "+strings.TrimSpace(strings.ReplaceAll(
					strings.Join(fieldStrings(e.ContextMap()), " "), "\n", " ")))
			}
			tb.Fatalf("no log line %q with %s=%s and an error containing %q within %v; lines:\n%s",
				msg, key, value, errHas, d, strings.Join(seen, "\n"))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func fieldStrings(m map[string]any) []string {
	var out []string
	for k, v := range m {
		if s, ok := v.(string); ok {
			out = append(out, k+"="+s)
		}
	}
	return out
}
