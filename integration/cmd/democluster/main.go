// Command democluster starts a local GlusterFS cluster with the integration
// harness, writes where to find it to an env file for scripts/demo.sh, waits
// for SIGINT or SIGTERM, and tears everything down.
//
//	democluster [-nodes 3] [-replica=true] [-sharded 4MB] [-dist] -env FILE
//
// The env file (shell syntax, sourced by demo.sh) holds BRICKFS_DEMO_DIR,
// BRICKFS_DEMO_PREFIX, BRICKFS_DEMO_SINGLE_SPEC, BRICKFS_DEMO_REPLICA_SPEC
// (empty with -replica=false), BRICKFS_DEMO_BACKUP (backup-volfile-servers),
// BRICKFS_DEMO_GLUSTER (a gluster CLI command line for node 1) and, per
// replica brick I, BRICKFS_DEMO_REPLICA_BRICKI_PID. It is written only once
// the cluster is up, so its existence means "ready". Must run as root.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/brickfs/brickfs/integration"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of glusterd nodes")
	replica := flag.Bool("replica", true, "also create a replica 3 volume")
	sharded := flag.String("sharded", "", "also create rep3shard, the replica 3 volume again with features.shard on and this block size (4MB, 64MB)")
	dist := flag.Bool("dist", false, "also create dist, a 2 x 3 distributed-replicate volume (needs -nodes 3)")
	envFile := flag.String("env", "", "write the cluster description to this file (required)")
	flag.Parse()
	if *envFile == "" {
		log.Fatal("democluster: -env FILE is required")
	}
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	// Catch signals from the start: one that comes during bring-up is acted
	// on once the cluster is up, instead of killing us before teardown.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	d := integration.NewProgram("democluster")
	code := d.Run(func() {
		c := integration.NewCluster(d, *nodes)
		c.CreateVolume(d, "single", integration.Single)
		c.Start(d, "single")
		vars := [][2]string{
			{"BRICKFS_DEMO_DIR", c.Dir},
			{"BRICKFS_DEMO_PREFIX", c.Prefix},
			{"BRICKFS_DEMO_SINGLE_SPEC", c.Spec("single")},
			{"BRICKFS_DEMO_REPLICA_SPEC", ""},
			{"BRICKFS_DEMO_SHARD_SPEC", ""},
			{"BRICKFS_DEMO_DIST_SPEC", ""},
			{"BRICKFS_DEMO_BACKUP", c.BackupVolfileServers()},
			{"BRICKFS_DEMO_GLUSTER", fmt.Sprintf("gluster --mode=script --glusterd-sock=%s --log-file=%s/cli-demo.log", c.GlusterdSock(1), c.LogDir())},
		}
		if *replica && *nodes >= 3 {
			c.CreateVolume(d, "rep3", integration.Replica3)
			c.Set(d, "rep3", "network.ping-timeout", "5")
			c.Start(d, "rep3")
			vars[3][1] = c.Spec("rep3")
			for _, b := range c.Bricks(d, "rep3") {
				vars = append(vars, [2]string{fmt.Sprintf("BRICKFS_DEMO_REPLICA_BRICK%d_PID", b.Index), fmt.Sprint(b.PID)})
				d.Logf("rep3 brick %s", b)
			}
			if *sharded != "" {
				c.CreateVolume(d, "rep3shard", integration.Replica3)
				c.Set(d, "rep3shard", "network.ping-timeout", "5")
				c.Set(d, "rep3shard", "features.shard", "on")
				c.Set(d, "rep3shard", "features.shard-block-size", *sharded)
				c.Start(d, "rep3shard")
				vars[4][1] = c.Spec("rep3shard")
			}
		}
		if *dist && *nodes >= 3 {
			c.CreateVolume(d, "dist", integration.Dist2Replica3)
			c.Set(d, "dist", "network.ping-timeout", "5")
			c.Start(d, "dist")
			vars[5][1] = c.Spec("dist")
		}
		var sb strings.Builder
		for _, v := range vars {
			fmt.Fprintf(&sb, "%s=%s\n", v[0], shellQuote(v[1]))
		}
		tmp := *envFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
			d.Fatalf("write env file: %v", err)
		}
		if err := os.Rename(tmp, *envFile); err != nil {
			d.Fatalf("write env file: %v", err)
		}
		d.Logf("cluster ready: %s; env in %s; waiting for SIGINT/SIGTERM", c, *envFile)
		d.Logf("got %v; tearing down", <-sig)
		os.Remove(*envFile)
	})
	os.Exit(code)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
