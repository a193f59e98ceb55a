package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// This file holds what the replica tests (replica_*_test.go) and the stall
// table (integration/cmd/stalltable) share: running fio and reading its
// JSON, waiting for the self-heal daemon, and comparing brick backends.

// Fio describes one fio run against one file (or, with NumJobs > 1 and no
// File, one file per job in Dir).
type Fio struct {
	Name    string // job name; also the file name prefix in Dir
	File    string // the file; empty: fio names files in Dir
	Dir     string // with File empty: the directory
	Size    string // file size, e.g. "32M"
	RW      string // randwrite, write, read...
	BS      string // block size; default 4k
	IODepth int    // default 1
	NumJobs int    // default 1
	Engine  string // default libaio
	Runtime time.Duration
	// Verify adds --verify=crc32c --verify_fatal=1: a write job also reads
	// back what it wrote, verify_backlog blocks behind (during the fault),
	// and a read job checks every block's header.
	Verify bool
	Extra  []string
}

// FioResult is what one fio run reports.
type FioResult struct {
	Err       int   // the largest per-job "error" (errno), 0 when clean
	TotalErr  int64 // summed "total_err"
	WriteIOs  int64
	ReadIOs   int64
	MaxWrite  time.Duration // largest completion latency of one write
	MaxRead   time.Duration // of one read (the verify reads of a write job)
	Took      time.Duration
	ExitErr   error  // fio's own exit status
	Stderr    string // fio's warnings and verify failures
	JSONError error  // the output could not be parsed
}

// MaxStall is the longest single I/O, read or write.
func (r FioResult) MaxStall() time.Duration { return max(r.MaxWrite, r.MaxRead) }

// Clean reports whether fio finished without an error of any kind.
func (r FioResult) Clean() bool {
	return r.ExitErr == nil && r.JSONError == nil && r.Err == 0 && r.TotalErr == 0
}

func (r FioResult) String() string {
	return fmt.Sprintf("fio err=%d total_err=%d writes=%d reads=%d max write %v max read %v in %v exit=%v parse=%v",
		r.Err, r.TotalErr, r.WriteIOs, r.ReadIOs, r.MaxWrite.Round(time.Millisecond), r.MaxRead.Round(time.Millisecond),
		r.Took.Round(time.Millisecond), r.ExitErr, r.JSONError)
}

// Args is fio's command line for the job.
func (f Fio) Args(jsonOut string) []string {
	bs, depth, jobs, engine := f.BS, f.IODepth, f.NumJobs, f.Engine
	if bs == "" {
		bs = "4k"
	}
	if depth == 0 {
		depth = 1
	}
	if jobs == 0 {
		jobs = 1
	}
	if engine == "" {
		engine = "libaio"
	}
	a := []string{"--name=" + f.Name, "--rw=" + f.RW, "--bs=" + bs, "--size=" + f.Size,
		"--ioengine=" + engine, "--iodepth=" + strconv.Itoa(depth), "--numjobs=" + strconv.Itoa(jobs),
		"--direct=1", "--randrepeat=0", "--output-format=json", "--output=" + jsonOut,
		// Nothing of a run is left behind in the working directory.
		"--verify_state_save=0"}
	if f.File != "" {
		a = append(a, "--filename="+f.File)
	} else {
		a = append(a, "--directory="+f.Dir)
	}
	if f.Runtime > 0 {
		a = append(a, "--time_based", fmt.Sprintf("--runtime=%dms", f.Runtime.Milliseconds()))
	}
	if f.Verify {
		a = append(a, "--verify=crc32c", "--verify_fatal=1", "--do_verify=1")
		if strings.Contains(f.RW, "write") {
			a = append(a, "--verify_backlog=64")
		}
	}
	return append(a, f.Extra...)
}

// Run runs fio and parses its JSON. It never fails the test itself; the
// caller decides.
func (f Fio) Run(ctx context.Context, workDir string) FioResult {
	out, err := os.CreateTemp(workDir, "fio-*.json")
	if err != nil {
		return FioResult{ExitErr: err}
	}
	out.Close()
	defer os.Remove(out.Name())
	cmd := exec.CommandContext(ctx, "fio", f.Args(out.Name())...)
	cmd.Dir = workDir
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	start := time.Now()
	res := FioResult{ExitErr: cmd.Run()}
	res.Took = time.Since(start)
	res.Stderr = strings.TrimSpace(stderr.String())
	raw, err := os.ReadFile(out.Name())
	if err != nil {
		res.JSONError = err
		return res
	}
	parseFio(raw, &res)
	return res
}

type fioDir struct {
	TotalIOs int64 `json:"total_ios"`
	Lat      struct {
		Max int64 `json:"max"`
	} `json:"lat_ns"`
}

type fioJSON struct {
	Jobs []struct {
		Error    int    `json:"error"`
		TotalErr *int64 `json:"total_err"`
		Read     fioDir `json:"read"`
		Write    fioDir `json:"write"`
	} `json:"jobs"`
}

// parseFio reads fio's JSON output; fio may print warnings before it.
func parseFio(raw []byte, res *FioResult) {
	if i := bytes.IndexByte(raw, '{'); i > 0 {
		raw = raw[i:]
	}
	var fj fioJSON
	if err := json.Unmarshal(raw, &fj); err != nil {
		res.JSONError = fmt.Errorf("parse fio JSON: %v: %.300q", err, raw)
		return
	}
	if len(fj.Jobs) == 0 {
		res.JSONError = fmt.Errorf("fio JSON has no jobs: %.300q", raw)
		return
	}
	for _, j := range fj.Jobs {
		res.Err = max(res.Err, j.Error)
		if j.TotalErr != nil {
			res.TotalErr += *j.TotalErr
		}
		res.WriteIOs += j.Write.TotalIOs
		res.ReadIOs += j.Read.TotalIOs
		res.MaxWrite = max(res.MaxWrite, time.Duration(j.Write.Lat.Max))
		res.MaxRead = max(res.MaxRead, time.Duration(j.Read.Lat.Max))
	}
}

// FioFill writes path sequentially with fio's verify headers, so that a
// later read-verify pass can check every block.
func FioFill(ctx context.Context, path, size string) FioResult {
	return Fio{Name: "fill", File: path, Size: size, RW: "write", IODepth: 16, Verify: true, Extra: []string{"--do_verify=0"}}.runAside(ctx)
}

// FioCheck reads all of path and checks every block's verify header and
// checksum.
func FioCheck(ctx context.Context, path, size string) FioResult {
	return Fio{Name: "check", File: path, Size: size, RW: "read", IODepth: 16, Verify: true}.runAside(ctx)
}

// runAside is Run with fio's own files (its JSON report, a verify state)
// in a directory of their own outside the volume: on the volume they
// would be files the test did not write, and a full volume would fail
// the run before it read a byte.
func (f Fio) runAside(ctx context.Context) FioResult {
	dir, err := os.MkdirTemp("", "brickfs-fio-")
	if err != nil {
		return FioResult{ExitErr: err}
	}
	defer os.RemoveAll(dir)
	return f.Run(ctx, dir)
}

// AFRState reads every trusted.afr.* xattr of path on a brick backend
// (getfattr -d -m), values in hex.
func AFRState(path string) (map[string]string, error) {
	out, err := run(30*time.Second, "getfattr", "--absolute-names", "-d", "-m", `^trusted\.afr\.`, "-e", "hex", path)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && strings.HasPrefix(k, "trusted.afr.") {
			m[k] = v
		}
	}
	return m, nil
}

func hexZero(v string) bool {
	return strings.Trim(strings.TrimPrefix(v, "0x"), "0") == ""
}

// indexEntries lists the gfids filed in a brick's index directory
// (.glusterfs/indices/xattrop or dirty), leaving out the base file
// (xattrop-UUID, dirty-UUID) every entry is a hard link to.
func indexEntries(brickPath, index string) []string {
	ents, _ := os.ReadDir(filepath.Join(brickPath, ".glusterfs", "indices", index))
	var out []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), index+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// PendingHeal lists why the volume is not healed: a non-zero trusted.afr.*
// value on a file of files (paths relative to the volume root) on some
// brick, a gfid in some brick's xattrop index, or a file missing from a
// brick. Bricks whose node is dropped are skipped.
func (c *Cluster) PendingHeal(t T, volume string, files []string) []string {
	t.Helper()
	var why []string
	bricks := c.Bricks(t, volume)
	set := c.vol(t, volume).kind.Set()
	// On a distributed volume a file lives in one replica set: the sets
	// holding none of its copies have nothing to heal of it.
	elsewhere := func(b BrickInfo, f string) bool {
		first := b.Index / set * set
		for _, o := range bricks[first : first+set] {
			if _, err := os.Lstat(filepath.Join(o.Path, f)); err == nil {
				return false
			}
		}
		return true
	}
	for _, b := range bricks {
		if c.Dropped(b.Node) {
			continue
		}
		for _, f := range files {
			if len(bricks) > set && elsewhere(b, f) {
				continue
			}
			st, err := AFRState(filepath.Join(b.Path, f))
			if err != nil {
				why = append(why, fmt.Sprintf("brick %d %s: %v", b.Index, f, err))
				continue
			}
			for k, v := range st {
				if !hexZero(v) {
					why = append(why, fmt.Sprintf("brick %d %s: %s=%s", b.Index, f, k, v))
				}
			}
		}
		if e := indexEntries(b.Path, "xattrop"); len(e) > 0 {
			why = append(why, fmt.Sprintf("brick %d: indices/xattrop holds %v", b.Index, e))
		}
	}
	return why
}

// WaitHealed triggers an index heal (`gluster volume heal VOL`, every few
// seconds, since the self-heal daemon does not heal after a hang it never
// saw) and waits until PendingHeal is empty and `gluster volume heal VOL
// info` (HealInfo) lists no entries on any brick. It returns how long it
// took.
func (c *Cluster) WaitHealed(t T, volume string, files []string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	var lastTrigger time.Time
	var triggerErr error
	waitFor(t, timeout, "heal of "+volume, func() (bool, string) {
		why := c.PendingHeal(t, volume, files)
		if len(why) == 0 {
			why = c.healInfoPending(t, volume)
		}
		if len(why) == 0 {
			return true, ""
		}
		if time.Since(lastTrigger) > 5*time.Second {
			lastTrigger = time.Now()
			_, triggerErr = c.Gluster(c.cliNode(t), "volume", "heal", volume)
		}
		return false, fmt.Sprintf("%s (last heal trigger: %v)", strings.Join(why, "; "), triggerErr)
	})
	return time.Since(start)
}

// Sum is the SHA-256 of a file's contents, in hex.
func Sum(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// CheckBackends fails the test unless file (relative to the volume root)
// has the same contents on every data brick (the arbiter holds none) and
// each mount reads those same contents.
func (c *Cluster) CheckBackends(t T, volume string, kind Kind, file string, mounts ...string) {
	t.Helper()
	var want string
	var wantFrom string
	for _, b := range c.Bricks(t, volume) {
		if kind.Arbiter > 0 && b.Index%kind.Set() == kind.Replica-1 {
			continue
		}
		sum, n, err := Sum(filepath.Join(b.Path, file))
		if err != nil {
			t.Errorf("%s on brick %d: %v", file, b.Index, err)
			continue
		}
		t.Logf("%s on brick %d: %d bytes sha256 %.16s", file, b.Index, n, sum)
		if want == "" {
			want, wantFrom = sum, fmt.Sprintf("brick %d", b.Index)
		} else if sum != want {
			t.Errorf("%s differs: brick %d has sha256 %s, %s has %s", file, b.Index, sum, wantFrom, want)
		}
	}
	for _, m := range mounts {
		sum, n, err := Sum(filepath.Join(m, file))
		if err != nil {
			t.Errorf("read %s through %s: %v", file, m, err)
			continue
		}
		if sum != want {
			t.Errorf("%s read through %s (%d bytes) has sha256 %s; the bricks have %s", file, m, n, sum, want)
		}
	}
}

// LogLines returns the lines of a client log that contain any of words.
func LogLines(path string, words ...string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{fmt.Sprintf("(%v)", err)}
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// MountLog is the client log of a mount made by this cluster, "" if
// unknown.
func (c *Cluster) MountLog(mnt string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mounts[mnt].log
}
