package cli

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/fuse"
)

// scrape fetches and parses addr's /metrics.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	start := time.Now()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape: %s: %s", resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scrape took %v", time.Since(start))
	return mfs
}

// value is the sample of family name whose labels include want.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		t.Fatalf("no %s", name)
	}
next:
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		if got["volume"] != "v" {
			t.Errorf("%s%v has volume %q", name, want, got["volume"])
		}
		return m
	}
	t.Fatalf("no %s with %v", name, want)
	return nil
}

// /metrics serves the graph's figures under Prometheus's names, with the
// Go runtime's and the process's, read at scrape time.
func TestMetricsScrape(t *testing.T) {
	g := sampleGraph()
	c := &graphCollector{volume: "v", mountpoint: "/mnt/v", graph: func() fop.Status { return g }, buffers: func() fuse.BufferStats {
		return fuse.BufferStats{Mapped: 40 << 20, InUse: 3 << 20, Warm: 16 << 20, Maps: 37, Released: 5}
	}}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) != 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
	ms, err := listenMetrics("127.0.0.1:0", metricsRegistry(c), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	mfs := scrape(t, ms.addr)
	h := value(t, mfs, "brickfs_fop_duration_seconds", map[string]string{"fop": "WRITE"}).GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.003 || len(h.Bucket) != 3 || h.Bucket[0].GetUpperBound() != 0.001 || h.Bucket[0].GetCumulativeCount() != 1 || h.Bucket[1].GetCumulativeCount() != 2 {
		t.Errorf("WRITE's histogram: %v", h)
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"brickfs_fop_errors_total", map[string]string{"fop": "WRITE", "errno": "ENOSPC"}, 1},
		{"brickfs_written_bytes_total", nil, 8192},
		{"brickfs_read_bytes_total", nil, 0},
		{"brickfs_brick_up", map[string]string{"brick": "v-client-0"}, 1},
		{"brickfs_brick_up", map[string]string{"brick": "v-client-2"}, 0},
		{"brickfs_brick_connected_timestamp_seconds", map[string]string{"brick": "v-client-2"}, 0},
		{"brickfs_brick_ping_rtt_seconds", map[string]string{"brick": "v-client-1"}, 0.0003},
		{"brickfs_brick_calls_total", map[string]string{"brick": "v-client-1"}, 10},
		{"brickfs_replica_bricks_up", map[string]string{"subvol": "v-replicate-0"}, 2},
		{"brickfs_replica_quorum_met", map[string]string{"subvol": "v-replicate-0"}, 1},
		{"brickfs_replica_heal_pending", map[string]string{"subvol": "v-replicate-0"}, 7},
		{"brickfs_replica_lagging", map[string]string{"brick": "v-client-2"}, 1},
		{"brickfs_replica_lagging", map[string]string{"brick": "v-client-0"}, 0},
		{"brickfs_failover_events_total", map[string]string{"subvol": "v-replicate-0", "brick": "v-client-2", "reason": "cut"}, 1},
		{"brickfs_failover_events_total", map[string]string{"brick": "v-client-0", "reason": "down"}, 0},
		{"brickfs_failover_last_stall_seconds", map[string]string{"brick": "v-client-2"}, 0.3},
		{"brickfs_info", map[string]string{"mountpoint": "/mnt/v"}, 1},
		{"brickfs_fuse_buffer_bytes", map[string]string{"state": "in_use"}, 3 << 20},
		{"brickfs_fuse_buffer_bytes", map[string]string{"state": "warm"}, 16 << 20},
		{"brickfs_fuse_buffer_bytes", map[string]string{"state": "mapped"}, 40 << 20},
		{"brickfs_fuse_buffer_releases_total", nil, 5},
	} {
		m := value(t, mfs, tc.name, tc.labels)
		var got float64
		switch {
		case m.Gauge != nil:
			got = m.Gauge.GetValue()
		case m.Counter != nil:
			got = m.Counter.GetValue()
		}
		if got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if s := value(t, mfs, "brickfs_failover_stall_seconds", map[string]string{"brick": "v-client-2"}).GetSummary(); s.GetSampleCount() != 1 || s.GetSampleSum() != 0.3 {
		t.Errorf("stall summary: %v", s)
	}
	for _, n := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if mfs[n] == nil {
			t.Errorf("no %s", n)
		}
	}
	// The figures are read at each scrape.
	g.Children[0].Replica.HealPending = 0
	if v := value(t, scrape(t, ms.addr), "brickfs_replica_heal_pending", nil).GetGauge().GetValue(); v != 0 {
		t.Errorf("heal pending after the heal: %v", v)
	}
}

// An address in use fails with what to do.
func TestMetricsListenError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := &graphCollector{volume: "v", graph: sampleGraph}
	_, err = listenMetrics(l.Addr().String(), metricsRegistry(c), zaptest.NewLogger(t))
	if err == nil || !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), "-o metrics=HOST:PORT") {
		t.Fatalf("listening on a used address: %v", err)
	}
}

func TestMetricsOption(t *testing.T) {
	for _, tc := range []struct{ v, err string }{
		{"127.0.0.1:9464", ""}, {":9464", ""}, {"[::1]:9464", ""}, {"localhost:9464", ""},
		{"127.0.0.1:0", ""}, {"9464", "not HOST:PORT"}, {"127.0.0.1:-1", "not a TCP port"}, {"127.0.0.1:70000", "not a TCP port"}, {"h:x", "not a TCP port"},
	} {
		m := defaults()
		err := m.parseOptions("metrics=" + tc.v)
		switch {
		case tc.err == "" && (err != nil || m.Metrics != tc.v):
			t.Errorf("metrics=%s: %v, %q", tc.v, err, m.Metrics)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "e.g. metrics=127.0.0.1:9464")):
			t.Errorf("metrics=%s: %v, want %q", tc.v, err, tc.err)
		}
	}
}

// Scrapes that got stuck do not pile up: past scrapesInFlight, a scrape
// is answered 503 at once.
func TestMetricsScrapesInFlight(t *testing.T) {
	g := sampleGraph()
	in, release := make(chan struct{}, scrapesInFlight+1), make(chan struct{})
	c := &graphCollector{volume: "v", mountpoint: "/mnt/v", graph: func() fop.Status {
		in <- struct{}{}
		<-release
		return g
	}}
	ms, err := listenMetrics("127.0.0.1:0", metricsRegistry(c), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	defer close(release)
	for i := 0; i < scrapesInFlight; i++ {
		go func() {
			if r, err := http.Get("http://" + ms.addr + "/metrics"); err == nil {
				r.Body.Close()
			}
		}()
		<-in
	}
	start := time.Now()
	cl := http.Client{Timeout: scrapeTimeout + 5*time.Second}
	r, err := cl.Get("http://" + ms.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if took := time.Since(start); r.StatusCode != http.StatusServiceUnavailable || took >= scrapeTimeout {
		t.Errorf("a scrape past %d stuck ones: %s after %v; want 503 at once", scrapesInFlight, r.Status, took)
	}
}

// -o pprof serves Go's profiles; a CPU profile longer than any write
// timeout streams to its end.
func TestPprofServes(t *testing.T) {
	m := defaults()
	if err := m.parseOptions("pprof=127.0.0.1:0"); err != nil || m.Pprof != "127.0.0.1:0" {
		t.Fatalf("pprof=127.0.0.1:0: %v, %q", err, m.Pprof)
	}
	if err := m.parseOptions("pprof=6060"); err == nil || !strings.Contains(err.Error(), "e.g. pprof=127.0.0.1:6060") {
		t.Fatalf("pprof=6060: %v", err)
	}
	s, err := listenPprof(m.Pprof, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, path := range []string{"/debug/pprof/goroutine?debug=1", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		resp, err := http.Get("http://" + s.addr + path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("%s: %s, %d bytes: %.200s", path, resp.Status, len(b), b)
		}
	}
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the pprof address: %s; want 404", resp.Status)
	}
}
