// Command clonebench measures clones side by side: `brickfs clone` and
// `qemu-img convert -C` through a brickfs mount, `cp` and `qemu-img
// convert` through the native client, of the same image on the same
// replica-3 volume, and prints markdown tables. It is a benchmark, not a
// test: it asserts only that every copy reads identical to its source.
//
//	clonebench [-size 4G] [-policy-size 1G] [-parts reflink,policy]
//
// reflink: a replica-3 volume on three loop-mounted XFS filesystems made
// with reflink=1 (one per node). Two images of -size: "dense" (written
// whole) and "fragmented" (10 % of it written in random 4 KiB blocks, the
// rest holes). For each image and each way of copying: the seconds it took
// and how much the bricks' filesystems grew (df), then the copy is removed.
//
// policy: a replica-3 volume on plain directories (ext4, no reflink: the
// bricks copy in their kernel). For each copy-offload policy (bricks: 64
// MiB calls as asked; auto: 8 MiB calls once the bricks are seen copying;
// kernel: no offload) a fresh mount clones an image of -policy-size while
// fio writes 4 KiB blocks (QD1, O_DIRECT) to another disk on the same
// volume through the same mount: the clone's time, and fio's longest
// write and write count during it, show what a non-reflink clone costs
// the other VMs of those bricks.
//
// Everything is torn down at the end, also on error or SIGINT. Must run as
// root with bin/brickfs built (scripts/clone-bench.sh does both).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/integration"
)

var limit, window *time.Duration

func main() {
	size := flag.String("size", "4G", "size of the images of the reflink part")
	psize := flag.String("policy-size", "1G", "size of the image of the policy part")
	parts := flag.String("parts", "reflink,policy", "comma-separated: reflink, policy")
	out := flag.String("o", "", "write the tables to this file too")
	window = flag.Duration("window", 40*time.Second, "how long the other VM's fio runs in the policy part (the clone starts 3 s in)")
	limit = flag.Duration("limit", 3*time.Minute, "a way of copying still running after this long is stopped and reported so")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	log.SetOutput(os.Stderr)
	bytes, err := parseSize(*size)
	if err != nil {
		log.Fatalf("clonebench: -size %q: %v", *size, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	d := integration.NewProgram("clonebench")
	var tables strings.Builder
	start := time.Now()
	code := d.Run(func() {
		c := integration.NewCluster(d, 3)
		bin := integration.BrickfsBin(d)
		for _, p := range strings.Split(*parts, ",") {
			check(d, sig)
			switch p {
			case "reflink":
				tables.WriteString(reflinkPart(d, c, bin, *size, bytes, sig))
			case "policy":
				tables.WriteString(policyPart(d, c, bin, *psize, sig))
			default:
				d.Fatalf("clonebench: unknown part %q (want reflink, policy)", p)
			}
		}
	})
	fmt.Fprintf(&tables, "\nGlusterFS 10.3, 3 loopback nodes on one 2-CPU machine; measured in %v.\n", time.Since(start).Round(time.Second))
	fmt.Print(tables.String())
	if *out != "" {
		if err := os.WriteFile(*out, []byte(tables.String()), 0o644); err != nil {
			log.Printf("write %s: %v", *out, err)
		}
	}
	os.Exit(code)
}

func reflinkPart(d *integration.Program, c *integration.Cluster, bin, size string, bytes int64, sig chan os.Signal) string {
	fsMiB := int(3*bytes>>20) + 2048
	var fss []*integration.BackingFS
	for n := 1; n <= 3; n++ {
		fss = append(fss, c.MakeFS(d, n, "xfs", fsMiB))
	}
	const vol = "clones"
	c.CreateVolumeOn(d, vol, integration.Replica3, fss...)
	c.Start(d, vol)
	mnt := c.MountBrickfs(d, c.Spec(vol), "log-level=info")
	native := c.MountNative(d, vol)
	ctx := context.Background()
	var b strings.Builder
	fmt.Fprintf(&b, "### Clones of a %s image, replica 3 on XFS bricks with reflink=1\n\n", size)
	fmt.Fprintf(&b, "| image | way | seconds | bricks' filesystems grew by |\n|---|---|---|---|\n")
	for _, img := range []string{"dense", "fragmented"} {
		src := filepath.Join(mnt, img+".img")
		job := integration.Fio{Name: "fill-" + img, File: src, Size: size, RW: "write", BS: "1M", IODepth: 4,
			Extra: []string{"--fallocate=none"}}
		if img == "fragmented" {
			job = integration.Fio{Name: "frag", File: src, Size: size, RW: "randwrite", BS: "4k", IODepth: 16,
				Extra: []string{"--io_size=" + strconv.FormatInt(bytes/10, 10), "--fallocate=none"}}
		}
		t0 := time.Now()
		if r := job.Run(ctx, mnt); !r.Clean() {
			d.Fatalf("write %s: %v\n%s", src, r, r.Stderr)
		}
		if err := os.Truncate(src, bytes); err != nil {
			d.Fatalf("%v", err)
		}
		d.Logf("%s image written in %v", img, time.Since(t0).Round(time.Millisecond))
		want, _, err := integration.Sum(filepath.Join(native, img+".img"))
		if err != nil {
			d.Fatalf("%v", err)
		}
		ways := []struct {
			name string
			cmd  []string
			dst  string
		}{
			{"brickfs clone (brickfs mount)", []string{bin, "clone", "-q", src, filepath.Join(mnt, "copy.img")}, "copy.img"},
			{"qemu-img convert -C (brickfs mount)", []string{"qemu-img", "convert", "-C", "-f", "raw", "-O", "raw", src, filepath.Join(mnt, "copy.img")}, "copy.img"},
			{"cp (native mount)", []string{"cp", filepath.Join(native, img+".img"), filepath.Join(native, "copy.img")}, "copy.img"},
			{"qemu-img convert (native mount)", []string{"qemu-img", "convert", "-f", "raw", "-O", "raw", filepath.Join(native, img+".img"), filepath.Join(native, "copy.img")}, "copy.img"},
		}
		for _, w := range ways {
			check(d, sig)
			before := used(d, fss)
			t0 := time.Now()
			wctx, cancel := context.WithTimeout(ctx, *limit)
			o, err := exec.CommandContext(wctx, w.cmd[0], w.cmd[1:]...).CombinedOutput()
			timedOut := wctx.Err() != nil
			cancel()
			took := time.Since(t0)
			grew := used(d, fss) - before
			if timedOut {
				d.Logf("RESULT %s %s: stopped after %v", img, w.name, *limit)
				fmt.Fprintf(&b, "| %s | %s | > %.0f (stopped) | %d MiB so far |\n", img, w.name, limit.Seconds(), grew>>20)
				_ = os.Remove(filepath.Join(native, w.dst))
				continue
			}
			if err != nil {
				d.Fatalf("%s: %v\n%s", strings.Join(w.cmd, " "), err, o)
			}
			got, _, err := integration.Sum(filepath.Join(native, w.dst))
			if err != nil || got != want {
				d.Fatalf("%s: the copy reads %.16s (%v) through the native client, its source %.16s", w.name, got, err, want)
			}
			d.Logf("RESULT %s %s: %.2f s, +%d MiB", img, w.name, took.Seconds(), grew>>20)
			fmt.Fprintf(&b, "| %s | %s | %.2f | %d MiB |\n", img, w.name, took.Seconds(), grew>>20)
			if err := os.Remove(filepath.Join(native, w.dst)); err != nil {
				d.Fatalf("%v", err)
			}
			trim(d, fss)
		}
		if err := os.Remove(src); err != nil {
			d.Fatalf("%v", err)
		}
		trim(d, fss)
	}
	fmt.Fprintf(&b, "\nGrowth is the sum over the three bricks' filesystems (df). A deleted clone's blocks stay in use until its bricks restart (GlusterFS 10.3 keeps the destination fd open); shared blocks cost nothing.\n\n")
	c.Unmount(d, mnt)
	c.Unmount(d, native)
	return b.String()
}

// trim gives the space a removed copy freed in the bricks' filesystems
// back to the machine's disk (their images are sparse files): without it
// the images keep every copy's blocks, and a 10 GiB run needs about 120 GB.
func trim(d *integration.Program, fss []*integration.BackingFS) {
	for _, f := range fss {
		if o, err := exec.Command("fstrim", f.Dir).CombinedOutput(); err != nil {
			d.Logf("fstrim %s: %v %s (the disk keeps the removed copy's blocks)", f.Dir, err, strings.TrimSpace(string(o)))
		}
	}
}

func used(d *integration.Program, fss []*integration.BackingFS) int64 {
	var n int64
	for _, f := range fss {
		n += f.Used(d)
	}
	return n
}

func policyPart(d *integration.Program, c *integration.Cluster, bin, size string, sig chan os.Signal) string {
	const vol = "policy"
	c.CreateVolume(d, vol, integration.Replica3)
	c.Start(d, vol)
	ctx := context.Background()
	var b strings.Builder
	fmt.Fprintf(&b, "### A %s clone on bricks without reflink (ext4), with another VM writing to the same bricks\n\n", size)
	fmt.Fprintf(&b, "| copy-offload | clone seconds | other VM's longest write | its writes in the window |\n|---|---|---|---|\n")
	for _, policy := range []string{"bricks", "auto", "kernel"} {
		check(d, sig)
		mnt := c.MountBrickfs(d, c.Spec(vol), "log-level=info", "copy-offload="+policy)
		src := filepath.Join(mnt, "base.img")
		if _, err := os.Stat(src); err != nil {
			if r := integration.FioFill(ctx, src, size); !r.Clean() {
				d.Fatalf("fill: %v\n%s", r, r.Stderr)
			}
			if r := integration.FioFill(ctx, filepath.Join(mnt, "other.img"), "256M"); !r.Clean() {
				d.Fatalf("fill: %v\n%s", r, r.Stderr)
			}
		}
		// fio runs a fixed time around the clone and ends by itself
		// (killed, it reports nothing).
		job := integration.Fio{Name: "other-" + policy, File: filepath.Join(mnt, "other.img"), Size: "256M", RW: "randwrite",
			Engine: "psync", Runtime: *window}
		done := make(chan integration.FioResult, 1)
		go func() { done <- job.Run(ctx, mnt) }()
		time.Sleep(3 * time.Second) // fio under way
		t0 := time.Now()
		o, err := exec.Command(bin, "clone", "-q", src, filepath.Join(mnt, "clone.img")).CombinedOutput()
		took := time.Since(t0)
		r := <-done
		if err != nil {
			d.Fatalf("clone with copy-offload=%s: %v\n%s", policy, err, o)
		}
		if took+3*time.Second > *window {
			d.Logf("WARNING: the clone (%v) outlasted fio's window (%v): raise -window", took, *window)
		}
		d.Logf("RESULT policy %s: clone %.2f s, other VM longest write %v, %d writes (%v)", policy, took.Seconds(), r.MaxWrite, r.WriteIOs, r)
		fmt.Fprintf(&b, "| %s | %.2f | %d ms | %d |\n", policy, took.Seconds(), r.MaxWrite.Milliseconds(), r.WriteIOs)
		if err := os.Remove(filepath.Join(mnt, "clone.img")); err != nil {
			d.Fatalf("%v", err)
		}
		c.Unmount(d, mnt)
	}
	fmt.Fprintf(&b, "\nThe other VM: fio randwrite 4 KiB, QD1, psync, O_DIRECT, through the same brickfs mount, for a fixed window from 3 s before the clone.\n")
	return b.String()
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

// check stops the body if a signal came.
func check(d *integration.Program, sig chan os.Signal) {
	select {
	case s := <-sig:
		d.Fatalf("got %v; stopping", s)
	default:
	}
}
