package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/brickfs/brickfs/brick/fop"
)

// statusOut is what `brickfs status MNT --json` prints, as far as the
// tests read it.
type statusOut struct {
	PID        int                                 `json:"pid"`
	MountPoint string                              `json:"mountpoint"`
	Volume     string                              `json:"volume"`
	Goroutines int                                 `json:"goroutines"`
	RSSBytes   int64                               `json:"rss_bytes"`
	Metrics    string                              `json:"metrics"`
	Volfile    struct{ Source, From, Text string } `json:"volfile"`
	Graph      fop.Status                          `json:"graph"`
}

// brickfsStatus runs `brickfs status MNT --json`.
func brickfsStatus(t *testing.T, mnt string) statusOut {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, BrickfsBin(t), "status", mnt, "--json").Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("brickfs status %s --json: %v: %s", mnt, err, stderr)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Logf("brickfs status took %v", d)
	}
	var s statusOut
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("brickfs status --json: %v:\n%s", err, out)
	}
	return s
}

// node finds the node named name in the status tree.
func (s statusOut) node(name string) *fop.Status {
	var found *fop.Status
	s.Graph.Walk(func(n *fop.Status) {
		if n.Name == name {
			found = n
		}
	})
	return found
}

// metrics scrapes addr's /metrics.
// graphNodes returns the figures of brick and of the replica set set in
// s; a node missing from the graph fails the test (it does not panic).
func graphNodes(t *testing.T, s statusOut, brick, set string) (*fop.BrickStats, *fop.ReplicaStats) {
	t.Helper()
	b, r := s.node(brick), s.node(set)
	if b == nil || b.Brick == nil || r == nil || r.Replica == nil || len(r.Replica.Failovers) != 3 {
		t.Fatalf("status has no figures for brick %s (%+v) or replica set %s (%+v)", brick, b, set, r)
	}
	return b.Brick, r.Replica
}

func metrics(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(scrape(t, addr)))
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return mfs
}

// scrape GETs /metrics from addr.
func scrape(t *testing.T, addr string) []byte {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return body
}

// metricsExcerpt is the scrape's lines (as served) about one brick and its
// replica set, for the log: what a dashboard shows of a fault.
func metricsExcerpt(t *testing.T, addr, brick, set string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range strings.Split(string(scrape(t, addr)), "\n") {
		if strings.HasPrefix(l, "#") || !strings.HasPrefix(l, "brickfs_") || strings.Contains(l, "_bucket{") {
			continue
		}
		if strings.Contains(l, `brick="`+brick+`"`) || (strings.Contains(l, `subvol="`+set+`"`) && !strings.Contains(l, `brick="`)) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// sample sums the samples of family name whose labels include want (a
// gauge's or counter's value, a histogram's count).
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	var sum float64
next:
	for _, m := range mf.Metric {
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		case m.Summary != nil:
			sum += float64(m.Summary.GetSampleCount())
		}
	}
	return sum
}

// TestBrickfsStatusMetrics: a replica-3 mount with -o metrics, fio writing,
// one brick SIGSTOPped: `brickfs status --json` and /metrics show the brick
// out (cut or down), a failover event counted and the fop counters moving;
// after SIGCONT, the brick is back up and the heal backlog drains to 0.
func TestBrickfsStatusMetrics(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	if _, err := os.Stat("/usr/bin/fio"); err != nil {
		need(t, false, bothEnvs, "fio not installed; install fio (bash scripts/deps.sh)")
	}
	// A port the daemon picks on this run's own loopback prefix: status
	// says which.
	c0 := NewCluster(t, 3)
	e := newRepEnvOn(t, c0, "robs", Replica3, false, nil, "metrics="+c0.Host(1)+":0")
	brick := e.c.Brick(t, e.vol, 2).Name
	set := e.vol + "-replicate-0"
	scope := map[string]string{"volume": e.vol}

	s := brickfsStatus(t, e.mnt)
	addr := s.Metrics
	if host, port, err := net.SplitHostPort(addr); err != nil || host != c0.Host(1) || port == "0" {
		t.Fatalf("status at mount: metrics served at %q, want %s:PORT", addr, c0.Host(1))
	}
	if s.MountPoint != e.mnt || s.Volume != e.vol || s.Volfile.Source != "server" || !strings.Contains(s.Volfile.Text, set) || s.Goroutines == 0 || s.RSSBytes == 0 {
		t.Errorf("status at mount: %+v", s)
	}
	if b := s.node(brick); b == nil || b.Brick == nil || !b.Brick.Connected || b.Brick.Host != e.c.Brick(t, e.vol, 2).Host {
		t.Fatalf("brick %s at mount: %+v", brick, b)
	}
	if r := s.node(set); r == nil || r.Replica == nil || r.Replica.BricksUp != 3 || !r.Replica.QuorumMet {
		t.Fatalf("replica set at mount: %+v", r)
	}
	file := e.fill("data")
	before := metrics(t, addr)
	written0 := sample(before, "brickfs_written_bytes_total", scope)
	writes0 := sample(before, "brickfs_fop_duration_seconds", map[string]string{"fop": "WRITE"})
	if written0 < 32<<20 || writes0 <= 0 {
		t.Errorf("after writing 32 MiB: written %v bytes in %v WRITEs", written0, writes0)
	}

	e.faultRun("stop", file, repFioRun, func() {
		start := time.Now()
		e.c.StopBrick(t, e.vol, 2)
		// The brick is cut from the changes (lagging) at once, and dropped
		// at the ping timeout.
		// The down event carries the stall before it (the silence
		// until the ping timeout): the stall summary counts it.
		waitFor(t, 20*time.Second, "status and metrics to show brick 2 out", func() (bool, string) {
			b, r := graphNodes(t, brickfsStatus(t, e.mnt), brick, set)
			m := metrics(t, addr)
			up := sample(m, "brickfs_brick_up", map[string]string{"brick": brick})
			events := sample(m, "brickfs_failover_events_total", map[string]string{"brick": brick, "subvol": set})
			stalls := sample(m, "brickfs_failover_stall_seconds", map[string]string{"brick": brick, "subvol": set})
			ok := !b.Connected && r.BricksUp == 2 && r.QuorumMet &&
				r.Failovers[2].Events[afrDown] >= 1 && up == 0 && events >= 1 && stalls >= 1 &&
				sample(m, "brickfs_replica_bricks_up", map[string]string{"subvol": set}) == 2
			return ok, fmt.Sprintf("brick %+v; replica %+v; metrics: up %v, events %v, stalls %v", b, r, up, events, stalls)
		})
		t.Logf("brick 2 shown down %v after SIGSTOP", time.Since(start).Round(time.Millisecond))
		b, r := graphNodes(t, brickfsStatus(t, e.mnt), brick, set)
		t.Logf("status while brick 2 is stopped: %s: %+v; %s: %+v", set, *r, brick, *b)
		// What it costs to look, under fio's load.
		var statusTook, scrapeTook time.Duration
		for i := 0; i < 5; i++ {
			t0 := time.Now()
			brickfsStatus(t, e.mnt)
			t1 := time.Now()
			metrics(t, addr)
			statusTook, scrapeTook = max(statusTook, t1.Sub(t0)), max(scrapeTook, time.Since(t1))
		}
		t.Logf("under load: brickfs status --json (the command's whole run) at most %v, a /metrics scrape at most %v (5 each)",
			statusTook.Round(time.Microsecond), scrapeTook.Round(time.Microsecond))
		out, _ := exec.Command(BrickfsBin(t), "status", e.mnt).CombinedOutput()
		t.Logf("brickfs status %s while brick 2 is stopped:\n%s", e.mnt, out)
		t.Logf("/metrics while brick 2 is stopped (%s and %s):\n%s", brick, set, metricsExcerpt(t, addr, brick, set))
		holdFault(start, repHold)
		e.c.ContBrick(t, e.vol, 2)
	})

	// Counters moved through the fault; the brick is back and the heal
	// backlog drains.
	m := metrics(t, addr)
	if w := sample(m, "brickfs_written_bytes_total", scope); w <= written0 {
		t.Errorf("written bytes did not move: %v, were %v", w, written0)
	}
	if n := sample(m, "brickfs_fop_duration_seconds", map[string]string{"fop": "WRITE"}); n <= writes0 {
		t.Errorf("WRITE count did not move: %v, was %v", n, writes0)
	}
	if n := sample(m, "brickfs_fop_duration_seconds", map[string]string{"fop": "READ"}); n <= 0 {
		t.Errorf("no READs counted after fio's verify: %v", n)
	}
	if n := sample(m, "brickfs_failover_events_total", map[string]string{"brick": brick}); n < 1 {
		t.Errorf("failover events of %s: %v", brick, n)
	}
	waitFor(t, 60*time.Second, "brick 2 back up and the heal backlog at 0", func() (bool, string) {
		b, r := graphNodes(t, brickfsStatus(t, e.mnt), brick, set)
		m := metrics(t, addr)
		up := sample(m, "brickfs_brick_up", map[string]string{"brick": brick})
		heal := sample(m, "brickfs_replica_heal_pending", map[string]string{"subvol": set})
		ok := b.Connected && b.Reconnects >= 1 && r.BricksUp == 3 && r.HealPending == 0 && len(r.Lagging) == 0 && up == 1 && heal == 0
		return ok, fmt.Sprintf("brick %+v; replica %+v; metrics up %v heal %v", b, r, up, heal)
	})
	// The human form says the same.
	out, err := exec.Command(BrickfsBin(t), "status", e.mnt).CombinedOutput()
	if err != nil || !strings.Contains(string(out), set+" (cluster/replicate) up: 3 of 3 bricks up") || !strings.Contains(string(out), "failovers of "+brick) {
		t.Errorf("brickfs status %s: %v\n%s", e.mnt, err, out)
	}
	t.Logf("brickfs status %s:\n%s", e.mnt, out)
	t.Logf("/metrics after the heal (%s and %s):\n%s", brick, set, metricsExcerpt(t, addr, brick, set))
	// And without a mount point, every mount, this one among them (the
	// exit status is not this test's: other runs' mounts on the host may
	// not answer, e.g. those of an older brickfs).
	cmd := exec.Command(BrickfsBin(t), "status", "--json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); !strings.Contains(string(out), `"mountpoint": "`+e.mnt+`"`) {
		t.Errorf("brickfs status --json: %v (%s)\n%s", err, stderr.String(), out)
	} else if err != nil {
		t.Logf("brickfs status --json: %v: %s", err, stderr.String())
	}
	e.c.WaitHealed(t, e.vol, e.files("data"), repHealWait)
}

// afrDown is afr.EventDown, the reason of a lost connection.
const afrDown = "down"
