package cli

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/volfile"
)

func TestParseOptions(t *testing.T) {
	m := defaults()
	err := m.parseOptions("log-level=DEBUG,backup-volfile-servers=h2:h3,attribute-timeout=0.5,entry-timeout=0,ro,noatime,_netdev,x-systemd.automount,lru-limit=100,ping-timeout=2,fop-timeout=7,lag-timeout=0.2,post-op-delay=0.25,server-port=24008")
	if err != nil {
		t.Fatal(err)
	}
	if m.LogLevel != "debug" || m.Backup != "h2:h3" || m.AttrTimeout != 500*time.Millisecond || m.EntryTimeout != 0 ||
		!m.ReadOnly() || m.PingTimeout != 2*time.Second || m.FopTimeout != 7*time.Second || m.LagTimeout != 200*time.Millisecond || m.PostOpDelay != 250*time.Millisecond || m.ServerPort != 24008 {
		t.Fatalf("parsed %+v", m)
	}
	if m.MountFlags != syscall.MS_RDONLY|syscall.MS_NOATIME|syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_SILENT {
		t.Fatalf("mount flags %#x", m.MountFlags)
	}
	if w := m.Warnings(); len(w) != 1 || !strings.Contains(w[0], "lru-limit") {
		t.Fatalf("warnings %v", w)
	}
}

// The VFS options become mount flags as mount(8) means them: each later
// option overrides an earlier one. brickfs's defaults are nosuid, nodev,
// relatime; as mount.glusterfs, the native client's: suid, dev, relatime.
func TestMountFlags(t *testing.T) {
	const ns = syscall.MS_NOSUID | syscall.MS_NODEV
	for _, tc := range []struct {
		opts      string
		glusterfs bool
		want      uintptr
	}{
		{"", false, ns | syscall.MS_RELATIME},
		{"", true, syscall.MS_RELATIME},
		{"defaults", true, syscall.MS_RELATIME},
		{"noatime", true, syscall.MS_NOATIME},
		{"noatime,relatime", true, syscall.MS_RELATIME},
		{"strictatime", false, ns | syscall.MS_STRICTATIME},
		{"relatime,norelatime", true, 0},
		{"nodiratime,lazytime", true, syscall.MS_RELATIME | syscall.MS_NODIRATIME | msLazytime},
		{"lazytime,nolazytime", true, syscall.MS_RELATIME},
		{"nodev,nosuid,noexec", true, syscall.MS_RELATIME | ns | syscall.MS_NOEXEC},
		{"dev,suid", false, syscall.MS_RELATIME},
		{"nodev,dev,nosuid,suid,noexec,exec", false, syscall.MS_RELATIME},
		{"ro", true, syscall.MS_RELATIME | syscall.MS_RDONLY},
		{"ro,rw", true, syscall.MS_RELATIME},
		// mount(8): user, users, owner and group imply noexec, nosuid,
		// nodev, which later options may give back.
		{"user", true, syscall.MS_RELATIME | ns | syscall.MS_NOEXEC},
		{"users,exec", true, syscall.MS_RELATIME | ns},
	} {
		m := defaults()
		if tc.glusterfs {
			m.MountFlags = glusterfsMountFlags
		}
		if err := m.parseOptions(tc.opts); err != nil {
			t.Fatalf("%q: %v", tc.opts, err)
		}
		if got := m.MountFlags &^ syscall.MS_SILENT; got != tc.want {
			t.Errorf("%q (as glusterfs %v): flags %#x, want %#x", tc.opts, tc.glusterfs, got, tc.want)
		}
		if m.MountFlags&syscall.MS_SILENT == 0 {
			t.Errorf("%q: flags %#x lack MS_SILENT: go-fuse would replace zero flags by nosuid,nodev", tc.opts, m.MountFlags)
		}
		if m.ReadOnly() != (tc.want&syscall.MS_RDONLY != 0) {
			t.Errorf("%q: ReadOnly %v", tc.opts, m.ReadOnly())
		}
	}
	m := defaults()
	if err := m.parseOptions("auto_unmount,nofail,_netdev,noauto"); err != nil || !m.AutoUnmount || len(m.Warnings()) != 0 {
		t.Fatalf("auto_unmount %v, warnings %v, err %v", m.AutoUnmount, m.Warnings(), err)
	}
	// The helper under each name starts from its own defaults.
	for name, want := range map[string][2]any{"mount.glusterfs": {"glusterfs", uintptr(glusterfsMountFlags)}, "/sbin/mount.glusterfs": {"glusterfs", uintptr(glusterfsMountFlags)},
		"mount.brickfs": {"brickfs", uintptr(defaultMountFlags)}} {
		if _, m := helperDefaults(filepath.Base(name)); m.FsType != want[0] || m.MountFlags != want[1] {
			t.Errorf("%s: type %s flags %#x, want %v %#x", name, m.FsType, m.MountFlags, want[0], want[1])
		}
	}
}

// Options brickfs does not act on are said once, in one line.
func TestIgnoredOnce(t *testing.T) {
	m := defaults()
	for _, o := range []string{"lru-limit=1,direct-io-mode=enable", "lru-limit=2,sync"} {
		if err := m.parseOptions(o); err != nil {
			t.Fatal(err)
		}
	}
	w := m.Warnings()
	if len(w) != 1 || strings.Count(w[0], "lru-limit") != 1 || !strings.Contains(w[0], "direct-io-mode") || !strings.Contains(w[0], "sync") {
		t.Fatalf("warnings %q", w)
	}
}

func TestParseOptionsErrors(t *testing.T) {
	for opt, want := range map[string]string{
		"bogus":                  `unknown mount option "bogus"`,
		"bogus=1":                `unknown mount option "bogus"`,
		"log-level=loud":         "want debug, info, warning or error",
		"attribute-timeout=soon": "want a number of seconds",
		"transport=rdma":         "only tcp",
		"server-port=0":          "TCP port",
	} {
		m := defaults()
		err := m.parseOptions(opt)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", opt, err, want)
		}
	}
}

// The directory to mount comes from the spec (HOST:/VOL/SUB) or from
// subdir-mount, as mount.glusterfs takes it; two different ones are an
// error.
func TestSubdir(t *testing.T) {
	for _, tc := range []struct {
		spec, opt, want, err string
	}{
		{"h1:/vol", "", "", ""},
		{"h1:/vol/a/b", "", "/a/b", ""},
		{"h1:/vol", "subdir-mount=a/b/", "/a/b", ""},
		{"h1:/vol/a/b", "subdir-mount=/a/b", "/a/b", ""},
		{"h1:/vol/a", "subdir-mount=/b", "", "give one of them"},
	} {
		m := defaults()
		if tc.opt != "" {
			if err := m.parseOptions(tc.opt); err != nil {
				t.Fatal(err)
			}
		}
		spec, err := volfile.ParseSpec(tc.spec, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := subdirOf(m, spec)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s -o %s: %q, %v; want %q, error %q", tc.spec, tc.opt, got, err, tc.want, tc.err)
		}
	}
}

func TestLegacyBackupServer(t *testing.T) {
	m := defaults()
	if err := m.parseOptions("backupvolfile-server=h9"); err != nil {
		t.Fatal(err)
	}
	if err := m.finish(); err != nil {
		t.Fatal(err)
	}
	if m.Backup != "h9" {
		t.Fatalf("backupvolfile-server alone: %q", m.Backup)
	}
	// Given together, in one -o or in two, both forms are used (the
	// native helper drops backupvolfile-server).
	for _, opts := range [][]string{{"backupvolfile-server=h9,backup-volfile-servers=h2:h3"}, {"backupvolfile-server=h9", "backup-volfile-servers=h2:h3"}} {
		m = defaults()
		for _, o := range opts {
			if err := m.parseOptions(o); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.finish(); err != nil {
			t.Fatal(err)
		}
		if m.Backup != "h2:h3:h9" {
			t.Fatalf("%v: backup servers %q, want h2:h3:h9", opts, m.Backup)
		}
	}
	// A server given in both forms is asked once.
	m = defaults()
	_ = m.parseOptions("backupvolfile-server=h2,backup-volfile-servers=h2:h3")
	if err := m.finish(); err != nil {
		t.Fatal(err)
	}
	spec, err := volfile.ParseSpec("h1:/v", m.Backup)
	if err != nil || len(spec.Servers) != 3 {
		t.Fatalf("servers %v, %v; want h1, h2, h3", spec.Servers, err)
	}
}

func TestParseMountArgs(t *testing.T) {
	m, fg, err := parseMountArgs([]string{"-o", "log-level=info", "h1:/v", "/mnt", "-f", "-oro"})
	if err != nil || !fg || m.Spec != "h1:/v" || m.MountPoint != "/mnt" || !m.ReadOnly() {
		t.Fatalf("%+v %v %v", m, fg, err)
	}
	for _, args := range [][]string{{"h1:/v"}, {"-x", "h1:/v", "/mnt"}, {"h1:/v", "/mnt", "-o"}} {
		if _, _, err := parseMountArgs(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func TestHelperArgv(t *testing.T) {
	var out bytes.Buffer
	// -f (fake) checks arguments without mounting.
	if code := HelperMain("mount.brickfs", []string{"h1,h2:/vol", "/mnt/x", "-sfnv", "-o", "_netdev,backup-volfile-servers=h3", "-t", "brickfs"}, &out); code != 0 {
		t.Fatalf("fake mount: exit %d: %s", code, out.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"h1:/vol", "/mnt/x", "-q"}, "unknown flag"},
		{[]string{"h1:/vol", "/mnt/x", "-t", "nfs"}, "is not brickfs"},
		{[]string{"h1:/vol", "/mnt/x", "-N", "/proc/1/ns/mnt"}, "not supported"},
		{[]string{"h1:/vol", "/mnt/x", "-f", "-o", "nonsense"}, "unknown mount option"},
		{[]string{"nocolon", "/mnt/x", "-f"}, "nocolon"},
		{[]string{"h1:/vol"}, "usage"},
	} {
		out.Reset()
		if code := HelperMain("mount.brickfs", c.args, &out); code == 0 || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want %q", c.args, code, out.String(), c.want)
		}
	}
}

// Called as mount.glusterfs, the helper is mount.glusterfs: it takes
// -t glusterfs and glusterfs.SUBTYPE, names itself so, and mounts type
// glusterfs; as mount.brickfs it refuses glusterfs.
func TestHelperAsGlusterfs(t *testing.T) {
	var out bytes.Buffer
	for _, typ := range []string{"glusterfs", "glusterfs.brickfs", "fuse.glusterfs"} {
		out.Reset()
		if code := HelperMain("mount.glusterfs", []string{"h1:/vol", "/mnt/x", "-f", "-t", typ}, &out); code != 0 {
			t.Errorf("mount.glusterfs -t %s: exit %d: %s", typ, code, out.String())
		}
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"mount.glusterfs", []string{"h1:/vol", "/mnt/x", "-q"}, "mount.glusterfs: unknown flag"},
		{"mount.glusterfs", []string{"h1:/vol", "/mnt/x", "-t", "brickfs"}, `mount.glusterfs: type "brickfs" is not glusterfs`},
		{"mount.glusterfs", []string{"h1:/vol"}, "usage: mount.glusterfs "},
		{"mount.glusterfs", []string{"h1:/vol", "/mnt/x", "-f", "-o", "nonsense"}, "mount.glusterfs: unknown mount option"},
		{"mount.brickfs", []string{"h1:/vol", "/mnt/x", "-t", "glusterfs"}, `mount.brickfs: type "glusterfs" is not brickfs`},
	} {
		out.Reset()
		if code := HelperMain(c.name, c.args, &out); code == 0 || !strings.Contains(out.String(), c.want) {
			t.Errorf("%s %v: exit %d, %q; want %q", c.name, c.args, code, out.String(), c.want)
		}
	}
}

// mount.glusterfs's refusals: /, /tmp and bricks, exit 2.
func TestRefuseMountPoint(t *testing.T) {
	for _, p := range []string{"/", "/tmp", "/tmp/"} {
		var re *RefusedError
		if err := checkMountPoint(p); !errors.As(err, &re) {
			t.Errorf("%s: %v, want a refusal", p, err)
		}
	}
	dir := t.TempDir()
	brick := filepath.Join(dir, "brick")
	if err := os.Mkdir(brick, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setxattr(brick, "trusted.gfid", make([]byte, 16), 0); err != nil {
		t.Fatalf("set trusted.gfid (the test needs root): %v", err)
	}
	var re *RefusedError
	if err := checkMountPoint(brick); !errors.As(err, &re) || !strings.Contains(err.Error(), "brick") {
		t.Errorf("a brick directory: %v, want a refusal naming it a brick", err)
	}
	// A directory holding a brick of this host's glusterd.
	state := t.TempDir()
	old := glusterdState
	glusterdState = state
	t.Cleanup(func() { glusterdState = old })
	parent := filepath.Join(dir, "data")
	b1 := filepath.Join(parent, "sub", "b1")
	if err := os.MkdirAll(b1, 0o755); err != nil {
		t.Fatal(err)
	}
	bf := filepath.Join(state, "vols", "v", "bricks", "h:-data-b1")
	os.MkdirAll(filepath.Dir(bf), 0o755)
	// A brick of another host (not here) and one of this host.
	if err := os.WriteFile(bf, []byte("hostname=h\npath=/nonexistent/brick\npath="+b1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkMountPoint(parent); err != nil {
		t.Errorf("b1 has no trusted.gfid yet, so it is no brick of this host: %v", err)
	}
	if err := syscall.Setxattr(b1, "trusted.gfid", make([]byte, 16), 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{parent, filepath.Join(parent, "sub"), parent + "/"} {
		if err := checkMountPoint(p); !errors.As(err, &re) || !strings.Contains(err.Error(), b1) {
			t.Errorf("%s, above a brick: %v, want a refusal naming the brick", p, err)
		}
	}
	// Through a symlink too.
	ln := filepath.Join(dir, "via-link")
	if err := os.Symlink(parent, ln); err != nil {
		t.Fatal(err)
	}
	if err := checkMountPoint(ln); !errors.As(err, &re) {
		t.Errorf("a link to a brick's parent: %v, want a refusal", err)
	}
	// A sibling whose name is a prefix of the parent's is no parent.
	sib := filepath.Join(dir, "dat")
	os.Mkdir(sib, 0o755)
	if err := checkMountPoint(sib); err != nil {
		t.Errorf("a sibling: %v", err)
	}
	if err := checkMountPoint(t.TempDir()); err != nil {
		t.Errorf("a plain directory: %v", err)
	}
}

func TestCheckMountPoint(t *testing.T) {
	dir := t.TempDir()
	if err := checkMountPoint(dir); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "nope")
	if err := checkMountPoint(missing); err == nil || !strings.Contains(err.Error(), "mkdir -p") {
		t.Fatalf("missing: %v", err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkMountPoint(file); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("file: %v", err)
	}
	if err := checkMountPoint("/proc"); err == nil || !strings.Contains(err.Error(), "already mounted") {
		t.Fatalf("/proc: %v", err)
	}
}

func TestMountsHelpers(t *testing.T) {
	if got := unescapeMount(`/mnt/a\040b`); got != "/mnt/a b" {
		t.Fatalf("unescape %q", got)
	}
	if got := defaultLogFile("/var/lib/nova/mnt/abc/"); got != "/var/log/brickfs/var-lib-nova-mnt-abc.log" {
		t.Fatalf("log file %q", got)
	}
}

func TestMemoryLimitOption(t *testing.T) {
	for _, c := range []struct {
		opt  string
		want int64
	}{{"memory-limit=96M", 96 << 20}, {"memory-limit=1G", 1 << 30}, {"memory-limit=0", -1}, {"ro", 0}} {
		var m Mount
		if err := m.parseOptions(c.opt); err != nil || m.MemoryLimit != c.want {
			t.Errorf("%s: limit %d, %v; want %d", c.opt, m.MemoryLimit, err, c.want)
		}
	}
	var m Mount
	if err := m.parseOptions("memory-limit=lots"); err == nil || !strings.Contains(err.Error(), "want a size such as 64M") {
		t.Errorf("memory-limit=lots: %v, want an error saying what a size looks like", err)
	}
	if err := m.parseOptions("memory-limit=1K"); err == nil || !strings.Contains(err.Error(), "give at least 32M") {
		t.Errorf("memory-limit=1K: %v, want an error saying the least limit", err)
	}
}
