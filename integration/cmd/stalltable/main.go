// Command stalltable measures how long one I/O stalls when a brick of a
// replica-3 volume fails, with brickfs and with GlusterFS's own FUSE client
// on the same volume, and prints a markdown table side by side. It is a
// benchmark, not a test: it asserts nothing.
//
//	stalltable [-hold 90s] [-scenarios kill,stop,drop] [-clients brickfs,native]
//	           [-lead 5s] [-tail 10s] [-down 5s] [-size 64M] [-brickfs-opts OPTS]
//
// It brings up a 3-node cluster on loopback with the integration harness,
// creates a default replica-3 volume (network.ping-timeout 42, as shipped),
// and for each client in turn mounts it and runs, per scenario, fio
// randwrite 4 KiB, queue depth 1, O_DIRECT, psync, for lead + fault + tail:
//
//	kill   SIGKILL brick 2, restart it (new port) after -down
//	stop   SIGSTOP brick 2 for -hold, then SIGCONT
//	drop   iptables DROP of brick 2's node (glusterd included) for -hold
//	flap   iptables DROP and ACCEPT of brick 2's node every 2 s for -hold
//	freeze fsfreeze of brick 2's XFS filesystem for -hold (the brick stays
//	       up and answers pings; a brick frozen past its health check's
//	       20 s stops itself and is restarted after the thaw)
//
// The bricks are on loop-mounted XFS filesystems of their own (one per
// node), so that one can be frozen.
// The stall of a scenario is fio's largest single write latency; errors are
// fio's total_err (it runs with continue_on_error=all). After each scenario
// the fault is cleared and the self-heal daemon is made to heal before the
// next one. The native client detects a hung brick only after 42-84 s
// (ping-timeout 42 s), so -hold should be about 90 s to see the whole
// stall. Everything is torn down at the end, also on error or SIGINT. Must
// run as root with bin/brickfs built (scripts/stall-table.sh does both).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/integration"
)

type result struct {
	stall  time.Duration
	errs   int64
	ios    int64
	note   string
	failed bool
}

func main() {
	hold := flag.Duration("hold", 90*time.Second, "how long a hang (stop, drop) lasts")
	down := flag.Duration("down", 5*time.Second, "how long a killed brick stays down before it is restarted")
	lead := flag.Duration("lead", 5*time.Second, "fio runs this long before the fault")
	tailD := flag.Duration("tail", 10*time.Second, "fio runs this long after the fault is cleared")
	size := flag.String("size", "64M", "fio file size")
	scen := flag.String("scenarios", "kill,stop,drop,freeze", "comma-separated: kill, stop, drop, flap, freeze")
	clients := flag.String("clients", "brickfs,native", "comma-separated: brickfs, native")
	bopts := flag.String("brickfs-opts", "", "extra brickfs mount options (comma-separated)")
	out := flag.String("o", "", "write the table to this file too")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetOutput(os.Stderr)

	scenarios := strings.Split(*scen, ",")
	for _, s := range scenarios {
		if s != "kill" && s != "stop" && s != "drop" && s != "flap" && s != "freeze" {
			log.Fatalf("stalltable: unknown scenario %q (want kill, stop, drop, flap, freeze)", s)
		}
	}
	kinds := strings.Split(*clients, ",")
	for _, k := range kinds {
		if k != "brickfs" && k != "native" {
			log.Fatalf("stalltable: unknown client %q (want brickfs, native)", k)
		}
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	d := integration.NewProgram("stalltable")
	results := map[string]map[string]result{} // client -> scenario
	start := time.Now()
	code := d.Run(func() {
		c := integration.NewCluster(d, 3)
		const vol = "stall"
		var fss []*integration.BackingFS
		for n := 1; n <= 3; n++ {
			fss = append(fss, c.MakeFS(d, n, "xfs", 1024))
		}
		c.CreateVolumeOn(d, vol, integration.Replica3, fss...)
		c.Start(d, vol)
		for _, k := range kinds {
			results[k] = map[string]result{}
			var mnt string
			if k == "brickfs" {
				var o []string
				if *bopts != "" {
					o = strings.Split(*bopts, ",")
				}
				mnt = c.MountBrickfs(d, c.Spec(vol), append(o, "log-level=info")...)
			} else {
				mnt = c.MountNative(d, vol)
			}
			file := filepath.Join(mnt, "stall-"+k)
			if r := integration.FioFill(context.Background(), file, *size); !r.Clean() {
				d.Fatalf("fill %s: %v\n%s", file, r, r.Stderr)
			}
			for _, s := range scenarios {
				check(d, sig)
				r := runScenario(d, c, fss, vol, k, s, file, *size, *lead, *down, *hold, *tailD)
				results[k][s] = r
				d.Logf("RESULT %s %s: max stall %v, %d errors, %d writes %s", k, s, r.stall.Round(time.Millisecond), r.errs, r.ios, r.note)
				healed(d, c, vol, filepath.Base(file))
			}
			c.Unmount(d, mnt)
		}
	})
	table := render(results, scenarios, *hold, *down, *lead, *tailD, time.Since(start))
	fmt.Print(table)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(table), 0o644); err != nil {
			log.Printf("write %s: %v", *out, err)
		}
	}
	os.Exit(code)
}

// runScenario runs fio on file and the fault in the middle of it.
func runScenario(d *integration.Program, c *integration.Cluster, fss []*integration.BackingFS, vol, client, scen, file, size string, lead, down, hold, tailD time.Duration) result {
	const victim = 2 // brick 2, on node 3: not the volfile server
	fault := hold
	if scen == "kill" {
		fault = down + 5*time.Second // restart and reconnect included
	}
	job := integration.Fio{Name: scen + "-" + client, File: file, Size: size, RW: "randwrite", IODepth: 1,
		Engine: "psync", Runtime: lead + fault + tailD, Extra: []string{"--continue_on_error=all"}}
	ctx, cancel := context.WithTimeout(context.Background(), job.Runtime+5*time.Minute)
	defer cancel()
	done := make(chan integration.FioResult, 1)
	go func() { done <- job.Run(ctx, filepath.Dir(file)) }()
	time.Sleep(lead)
	d.Logf("%s: fault %s on brick %d", client, scen, victim)
	t0 := time.Now()
	switch scen {
	case "kill":
		c.KillBrick(d, vol, victim)
		time.Sleep(down)
		c.RestartBrick(d, vol, victim)
	case "stop":
		c.StopBrick(d, vol, victim)
		time.Sleep(hold)
		c.ContBrick(d, vol, victim)
	case "drop":
		node := c.Brick(d, vol, victim).Node
		c.DropHost(d, node)
		time.Sleep(hold)
		c.UndropHost(d, node)
	case "flap":
		node := c.Brick(d, vol, victim).Node
		for end := time.Now().Add(hold); time.Now().Before(end); {
			c.DropHost(d, node)
			time.Sleep(2 * time.Second)
			c.UndropHost(d, node)
			time.Sleep(2 * time.Second)
		}
	case "freeze":
		c.Freeze(d, fss[victim])
		time.Sleep(hold)
		c.Thaw(d, fss[victim])
		if c.Brick(d, vol, victim).PID == 0 {
			d.Logf("%s: brick %d stopped itself while frozen (health check); restarting it", client, victim)
			c.RestartBrick(d, vol, victim)
		}
	}
	d.Logf("%s: fault %s cleared after %v", client, scen, time.Since(t0).Round(time.Millisecond))
	r := <-done
	res := result{stall: r.MaxWrite, errs: r.TotalErr, ios: r.WriteIOs}
	if r.Err != 0 {
		res.note = fmt.Sprintf("(fio error %d)", r.Err)
		res.failed = true
	}
	if r.ExitErr != nil || r.JSONError != nil {
		res.note += fmt.Sprintf(" (fio: %v %v: %.200s)", r.ExitErr, r.JSONError, r.Stderr)
		res.failed = true
	}
	return res
}

// healed has the self-heal daemon heal the volume; it only logs when that
// takes longer than three minutes.
func healed(d *integration.Program, c *integration.Cluster, vol, file string) {
	start := time.Now()
	for time.Since(start) < 3*time.Minute {
		why := c.PendingHeal(d, vol, []string{file})
		if len(why) == 0 {
			d.Logf("healed in %v", time.Since(start).Round(time.Millisecond))
			return
		}
		if _, err := c.Gluster(1, "volume", "heal", vol); err != nil {
			d.Logf("heal trigger: %v", err)
		}
		time.Sleep(3 * time.Second)
	}
	d.Logf("WARNING: not healed after 3 minutes: %v", c.PendingHeal(d, vol, []string{file}))
}

func render(res map[string]map[string]result, scenarios []string, hold, down, lead, tailD, took time.Duration) string {
	var b strings.Builder
	cell := func(client, s string, stall bool) string {
		r, ok := res[client][s]
		if !ok {
			return "n/a"
		}
		if stall {
			v := fmt.Sprintf("%.2f s", r.stall.Seconds())
			if r.failed {
				v += " " + strings.TrimSpace(r.note)
			}
			return v
		}
		return fmt.Sprintf("%d of %d", r.errs, r.ios+r.errs)
	}
	name := map[string]string{
		"kill":   fmt.Sprintf("SIGKILL brick, restart after %v", down),
		"stop":   fmt.Sprintf("SIGSTOP brick %v, then SIGCONT", hold),
		"drop":   fmt.Sprintf("iptables DROP of brick's node %v", hold),
		"flap":   fmt.Sprintf("DROP/ACCEPT of brick's node every 2 s for %v", hold),
		"freeze": fmt.Sprintf("fsfreeze of brick's XFS %v", hold),
	}
	fmt.Fprintf(&b, "| scenario | brickfs max stall | native max stall | brickfs errors | native errors |\n")
	fmt.Fprintf(&b, "|---|---|---|---|---|\n")
	for _, s := range scenarios {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name[s], cell("brickfs", s, true), cell("native", s, true), cell("brickfs", s, false), cell("native", s, false))
	}
	fmt.Fprintf(&b, "\nreplica 3 on 3 loopback nodes with XFS bricks, GlusterFS 10.3, network.ping-timeout 42 (default); brickfs with its replica defaults (ping 0.5 s, ping-timeout 1.5 s, lag-timeout 0.5 s).\n")
	fmt.Fprintf(&b, "fio randwrite bs=4k iodepth=1 psync direct=1, %v before the fault and %v after it; stall = fio's largest single write latency; errors = failed writes of all.\n", lead, tailD)
	fmt.Fprintf(&b, "measured in %v.\n", took.Round(time.Second))
	return b.String()
}

// check stops the body if a signal came.
func check(d *integration.Program, sig chan os.Signal) {
	select {
	case s := <-sig:
		d.Fatalf("got %v; stopping", s)
	default:
	}
}
