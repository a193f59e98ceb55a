package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runCmd runs a command with a timeout and returns stdout, stderr and the
// exit code (-1 if it did not exit by itself).
func runCmd(t *testing.T, timeout time.Duration, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Errorf("%s %s: timed out after %v", name, strings.Join(args, " "), timeout)
		return o.String(), e.String(), -1
	case errors.As(err, &ee):
		return o.String(), e.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", name, err)
	}
	return o.String(), e.String(), 0
}

// procMountsEntry returns the /proc/mounts source and type of mnt.
func procMountsEntry(t *testing.T, mnt string) (src, typ string) {
	t.Helper()
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && unescapeMount(f[1]) == mnt {
			src, typ = unescapeMount(f[0]), f[2]
		}
	}
	return src, typ
}

// TestBrickfsCLI runs the built binaries the way users and mount(8) do: bad
// input must fail with a non-zero exit and one line that says what is
// wrong; good input must mount also when the first volfile server is down,
// from the last good volfile when none answers, and through mount -t brickfs
// and an fstab line.
func TestBrickfsCLI(t *testing.T) {
	c, vol := newVolume(t, "cli")
	bin := BrickfsBin(t)
	helperBin := MountBrickfsBin(t)
	// Addresses on the cluster's prefix where nothing listens: connections
	// are refused at once.
	dead1, dead2 := c.Prefix+".8", c.Prefix+".9"
	cache := filepath.Join(c.Dir, "volfile-cache-"+vol)
	logf := func(name string) string { return "log-file=" + filepath.Join(c.LogDir(), "cli-"+name+".log") }
	base := func(name string) string { return logf(name) + ",volfile-cache-dir=" + cache }

	// A live mount for "already mounted" and for comparisons.
	live := c.MountBrickfs(t, c.Spec(vol), "volfile-cache-dir="+cache)
	dumpClientLog(t, c, live)
	if err := os.WriteFile(filepath.Join(live, "marker"), []byte("from the live mount"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(c.Dir, "not-a-dir")
	os.WriteFile(file, nil, 0o644)

	t.Run("BadInput", func(t *testing.T) {
		for _, tc := range []struct {
			name     string
			args     []string // after "mount"; MNT replaced by a fresh empty dir
			code     int      // 0: any non-zero
			patterns []string
		}{
			{"UnknownVolume", []string{"-o", base("uv"), c.Host(1) + ":/nosuchvol", "MNT"}, 0,
				[]string{`nosuchvol`, `does not exist|no such volume`, `gluster volume list`}},
			{"UnknownHost", []string{"-o", base("uh"), "no-such-host.invalid:/" + vol, "MNT"}, 0,
				[]string{`no-such-host\.invalid`, `no such host|resolve|lookup`}},
			{"RefusedPort", []string{"-o", base("rp"), dead1 + ":/" + vol, "MNT"}, 0,
				[]string{regexp.QuoteMeta(dead1) + `:24007`, `refused`}},
			{"RefusedServerPortOption", []string{"-o", base("rs") + ",server-port=24999", c.Host(1) + ":/" + vol, "MNT"}, 0,
				[]string{`:24999`, `refused`}},
			{"MountPointMissing", []string{"-o", base("mm"), c.Spec(vol), filepath.Join(c.Dir, "no", "such", "dir")}, 0,
				[]string{`does not exist`, `mkdir`}},
			{"NotADirectory", []string{"-o", base("nd"), c.Spec(vol), file}, 0,
				[]string{`not a directory`}},
			{"AlreadyMounted", []string{"-o", base("am"), c.Spec(vol), live}, 32,
				[]string{`already mounted`, regexp.QuoteMeta(live)}},
			{"UnknownOption", []string{"-o", base("uo") + ",bogus-option=1", c.Spec(vol), "MNT"}, 0,
				[]string{`unknown mount option`, `bogus-option`}},
			{"UnknownFlagOption", []string{"-o", "frobnicate," + base("uf"), c.Spec(vol), "MNT"}, 0,
				[]string{`unknown mount option`, `frobnicate`}},
			{"BadOptionValue", []string{"-o", base("bv") + ",attribute-timeout=soon", c.Spec(vol), "MNT"}, 0,
				[]string{`attribute-timeout`, `seconds`}},
			{"MissingSubdir", []string{"-o", base("ms"), c.Spec(vol) + "/no-such-dir", "MNT"}, 0,
				[]string{`/no-such-dir`, `does not exist`, `create it`}},
			{"ConflictingSubdir", []string{"-o", base("cs") + ",subdir-mount=/b", c.Spec(vol) + "/a", "MNT"}, 0,
				[]string{`/a`, `/b`, `give one of them`}},
			{"BadSpec", []string{"-o", base("bs"), "just-a-host", "MNT"}, 0,
				[]string{`just-a-host`}},
			{"Usage", []string{c.Spec(vol)}, 0,
				[]string{`usage`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				mnt := filepath.Join(c.Dir, "mnt", "bad-"+tc.name)
				args := append([]string{"mount"}, tc.args...)
				for i, a := range args {
					if a == "MNT" {
						os.MkdirAll(mnt, 0o755)
						args[i] = mnt
					}
				}
				start := time.Now()
				_, stderr, code := runCmd(t, 2*time.Minute, bin, args...)
				if code == 0 || tc.code != 0 && code != tc.code {
					t.Errorf("exit %d, want %v: %s", code, map[bool]any{true: tc.code, false: "non-zero"}[tc.code != 0], stderr)
					if code == 0 {
						c.mu.Lock()
						c.mounts[mnt] = mount{kind: brickfsMount, bin: bin}
						c.mu.Unlock()
						c.unmount(mnt)
					}
				}
				oneLine(t, "brickfs mount", stderr, append([]string{`^brickfs: `}, tc.patterns...)...)
				if mounted(mnt) {
					t.Errorf("%s is mounted after a failed mount", mnt)
				}
				for _, pid := range pidsMatching(mnt) {
					if strings.Contains(procCmdline(pid), bin) {
						t.Errorf("a brickfs process (pid %d) still runs for %s", pid, mnt)
					}
				}
				t.Logf("exit %d in %v: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr))
			})
		}
	})

	t.Run("HelperBadInput", func(t *testing.T) {
		if err := installHelper(helperBin); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(uninstallHelper)
		mnt := filepath.Join(c.Dir, "mnt", "helper-bad")
		os.MkdirAll(mnt, 0o755)
		_, stderr, code := runCmd(t, time.Minute, "mount", "-t", "brickfs", "-o", base("hb")+",bogus-option=1", c.Spec(vol), mnt)
		if code == 0 {
			t.Fatalf("mount -t brickfs with an unknown option succeeded")
		}
		oneLine(t, "mount -t brickfs", stderr, `^mount\.brickfs: `, `unknown mount option`, `bogus-option`)
		_, stderr, code = runCmd(t, time.Minute, "mount", "-t", "brickfs", "-o", base("hv"), "no-such-host.invalid:/"+vol, mnt)
		if code == 0 {
			t.Fatalf("mount -t brickfs of an unresolvable host succeeded")
		}
		oneLine(t, "mount -t brickfs", stderr, `no-such-host\.invalid`, `no such host|resolve|lookup`)
		_, stderr, code = runCmd(t, time.Minute, "mount", "-t", "brickfs", "-o", base("hm"), c.Spec(vol), live)
		if code != 32 {
			t.Errorf("mount -t brickfs on a mounted dir: exit %d, want 32: %s", code, stderr)
		}
		if mounted(mnt) {
			t.Errorf("%s mounted after failed helper mounts", mnt)
		}
	})

	t.Run("FirstServerDown", func(t *testing.T) {
		spec := dead1 + "," + c.Host(1) + ":/" + vol
		mnt := c.MountBrickfs(t, spec, "volfile-cache-dir="+cache)
		src, typ := procMountsEntry(t, mnt)
		if src != spec || typ != "fuse.brickfs" {
			t.Errorf("/proc/mounts: %q type %q; want %q type fuse.brickfs", src, typ, spec)
		}
		if b, err := os.ReadFile(filepath.Join(mnt, "marker")); err != nil || string(b) != "from the live mount" {
			t.Errorf("read marker: %q, %v", b, err)
		}
		// backup-volfile-servers after a dead first server.
		spec2 := dead2 + ":/" + vol
		mnt2 := c.MountBrickfs(t, spec2, "volfile-cache-dir="+cache, "backup-volfile-servers="+dead1+":"+c.Host(2))
		if src, _ := procMountsEntry(t, mnt2); src != spec2 {
			t.Errorf("/proc/mounts source %q, want %q", src, spec2)
		}
		if _, err := os.Stat(filepath.Join(mnt2, "marker")); err != nil {
			t.Errorf("marker through the backup server's volfile: %v", err)
		}
	})

	t.Run("CachedVolfile", func(t *testing.T) {
		cdir := filepath.Join(c.Dir, "volfile-cache-cached")
		// Fetched with a dead server in the spec: the cache records both.
		first := c.MountBrickfs(t, c.Host(1)+","+dead1+":/"+vol, "volfile-cache-dir="+cdir)
		c.Unmount(t, first)
		cached := filepath.Join(cdir, vol+".vol")
		st, err := os.Stat(cached)
		if err != nil {
			t.Fatalf("no cached volfile: %v", err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("cached volfile mode %o, want 600 (it holds the brick password)", st.Mode().Perm())
		}
		// Only the dead server now: the cached volfile is used, with a
		// warning in the log.
		log := filepath.Join(c.LogDir(), "cli-cached.log")
		mnt := c.MountBrickfs(t, dead1+":/"+vol, "volfile-cache-dir="+cdir, "log-file="+log)
		if b, err := os.ReadFile(filepath.Join(mnt, "marker")); err != nil || string(b) != "from the live mount" {
			t.Errorf("read through a mount from the cached volfile: %q, %v", b, err)
		}
		lb, _ := os.ReadFile(log)
		if !regexp.MustCompile(`(?i)warn.*no volfile server answered; mounting from the last good volfile`).Match(lb) {
			t.Errorf("no warning about the cached volfile in the log:\n%s", lb)
		}
		c.Unmount(t, mnt)
		// A server the cache never saw: not used.
		m2 := filepath.Join(c.Dir, "mnt", "cache-other")
		os.MkdirAll(m2, 0o755)
		_, stderr, code := runCmd(t, time.Minute, bin, "mount", "-o", "volfile-cache-dir="+cdir+","+logf("co"), dead2+":/"+vol, m2)
		if code == 0 || mounted(m2) {
			t.Fatalf("mount from a cache saved for other servers succeeded")
		}
		oneLine(t, "brickfs mount", stderr, `no volfile server answered`, regexp.QuoteMeta(dead2))

		// Tamper with the password: the brick refuses the client and the
		// message says so.
		b, err := os.ReadFile(cached)
		if err != nil {
			t.Fatal(err)
		}
		re := regexp.MustCompile(`(?m)^(\s*option password )\S+$`)
		if !re.Match(b) {
			t.Fatalf("cached volfile has no password option:\n%s", b)
		}
		if err := os.WriteFile(cached, re.ReplaceAll(b, []byte("${1}00000000-0000-0000-0000-000000000000")), 0o600); err != nil {
			t.Fatal(err)
		}
		m3 := filepath.Join(c.Dir, "mnt", "wrong-password")
		os.MkdirAll(m3, 0o755)
		_, stderr, code = runCmd(t, time.Minute, bin, "mount", "-o", "volfile-cache-dir="+cdir+","+logf("wp"), dead1+":/"+vol, m3)
		if code == 0 || mounted(m3) {
			c.mu.Lock()
			c.mounts[m3] = mount{kind: brickfsMount, bin: bin}
			c.mu.Unlock()
			t.Fatalf("mount with a wrong password succeeded")
		}
		// Two lines: the mount came from the cached volfile (said also
		// when the mount then fails), and why it failed.
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 2 {
			t.Fatalf("brickfs mount with a wrong password from the cached volfile: %d lines, want 2:\n%s", len(lines), stderr)
		}
		oneLine(t, "cached volfile warning", lines[0], `^brickfs: warning: no volfile server answered`, `last good volfile`)
		oneLine(t, "brickfs mount", lines[1], `^brickfs: `, `authentication failed`, `username/password`, vol+`-client-0`)
	})

	t.Run("Unmount", func(t *testing.T) {
		mnt := c.MountBrickfs(t, c.Spec(vol), "volfile-cache-dir="+cache)
		daemons := pidsMatching(mnt)
		if len(daemons) == 0 {
			t.Errorf("no daemon process names %s", mnt)
		}
		// Busy: a process has its cwd there.
		sleeper := exec.Command("sleep", "60")
		sleeper.Dir = mnt
		if err := sleeper.Start(); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runCmd(t, time.Minute, bin, "unmount", mnt)
		if code == 0 {
			t.Errorf("brickfs unmount of a busy mount succeeded")
		} else {
			oneLine(t, "brickfs unmount busy", stderr, `busy`, `fuser`)
		}
		sleeper.Process.Kill()
		sleeper.Wait()
		if _, stderr, code := runCmd(t, time.Minute, bin, "unmount", mnt); code != 0 {
			t.Fatalf("brickfs unmount: exit %d: %s", code, stderr)
		}
		if mounted(mnt) {
			t.Errorf("%s still mounted after brickfs unmount", mnt)
		}
		for _, pid := range daemons {
			if !waitGone(pid, 10*time.Second, false) {
				t.Errorf("daemon pid %d still runs after unmount", pid)
			}
		}
		_, stderr, code = runCmd(t, time.Minute, bin, "unmount", mnt)
		if code == 0 {
			t.Errorf("brickfs unmount of an unmounted dir succeeded")
		}
		oneLine(t, "brickfs unmount again", stderr, `not mounted`)
		// Not ours: a native mount is left alone.
		nat := c.MountNative(t, vol)
		_, stderr, code = runCmd(t, time.Minute, bin, "unmount", nat)
		if code == 0 || !mounted(nat) {
			t.Errorf("brickfs unmount of a glusterfs mount: exit %d, still mounted %v", code, mounted(nat))
		}
		oneLine(t, "brickfs unmount native", stderr, `not brickfs`, `umount`)
	})

	t.Run("MountHelper", func(t *testing.T) {
		spec := dead1 + "," + c.Host(1) + ":/" + vol
		mnt := c.MountHelper(t, spec, "volfile-cache-dir="+cache, "_netdev", "backup-volfile-servers="+c.Host(2), "noatime")
		src, typ := procMountsEntry(t, mnt)
		if src != spec || typ != "fuse.brickfs" {
			t.Errorf("/proc/mounts: %q type %q; want %q type fuse.brickfs", src, typ, spec)
		}
		if err := os.WriteFile(filepath.Join(mnt, "via-helper"), []byte("helper"), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(live, "via-helper")); err != nil || string(b) != "helper" {
			t.Errorf("file written through the helper mount reads %q, %v on the other mount", b, err)
		}
		c.Unmount(t, mnt)
		if mounted(mnt) {
			t.Errorf("still mounted after umount")
		}
	})

	t.Run("Fstab", func(t *testing.T) {
		if err := installHelper(helperBin); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(uninstallHelper)
		mnt, log := c.newMountPoint(t, "fstab")
		fstab := filepath.Join(c.Dir, "fstab")
		spec := c.Host(2) + "," + c.Host(1) + ":/" + vol
		line := spec + " " + mnt + " brickfs defaults,_netdev,nofail,x-systemd.automount,backup-volfile-servers=" + c.Host(3) +
			",volfile-cache-dir=" + cache + ",log-file=" + log + ",log-level=debug 0 0\n"
		if err := os.WriteFile(fstab, []byte("# test fstab\n"+line), 0o644); err != nil {
			t.Fatal(err)
		}
		c.doMount(t, mnt, mount{kind: helperMount, log: log}, "mount", "-T", fstab, mnt)
		src, typ := procMountsEntry(t, mnt)
		if src != spec || typ != "fuse.brickfs" {
			t.Errorf("/proc/mounts: %q type %q; want %q type fuse.brickfs", src, typ, spec)
		}
		if _, err := os.Stat(filepath.Join(mnt, "marker")); err != nil {
			t.Errorf("marker through the fstab mount: %v", err)
		}
		c.Unmount(t, mnt)
	})
}
