package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/volfile"
)

func TestParseOptions(t *testing.T) {
	m := defaults()
	err := m.parseOptions("log-level=DEBUG,backup-volfile-servers=h2:h3,attribute-timeout=0.5,entry-timeout=0,ro,noatime,_netdev,x-systemd.automount,lru-limit=100,ping-timeout=2,fop-timeout=7,post-op-delay=0.25,server-port=24008")
	if err != nil {
		t.Fatal(err)
	}
	if m.LogLevel != "debug" || m.Backup != "h2:h3" || m.AttrTimeout != 500*time.Millisecond || m.EntryTimeout != 0 ||
		!m.ReadOnly || m.PingTimeout != 2*time.Second || m.FopTimeout != 7*time.Second || m.PostOpDelay != 250*time.Millisecond || m.ServerPort != 24008 {
		t.Fatalf("parsed %+v", m)
	}
	if len(m.KernelFlags) != 1 || m.KernelFlags[0] != "noatime" {
		t.Fatalf("kernel flags %v", m.KernelFlags)
	}
	if len(m.Warnings) != 1 || !strings.Contains(m.Warnings[0], "lru-limit") {
		t.Fatalf("warnings %v", m.Warnings)
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
	if err := m.parseOptions("backupvolfile-server=h9"); err != nil || m.Backup != "h9" {
		t.Fatalf("%v %q", err, m.Backup)
	}
	m = defaults()
	if err := m.parseOptions("backupvolfile-server=h9,backup-volfile-servers=h2"); err != nil || m.Backup != "h2" {
		t.Fatalf("the plural form must win: %v %q", err, m.Backup)
	}
}

func TestParseMountArgs(t *testing.T) {
	m, fg, err := parseMountArgs([]string{"-o", "log-level=info", "h1:/v", "/mnt", "-f", "-oro"})
	if err != nil || !fg || m.Spec != "h1:/v" || m.MountPoint != "/mnt" || !m.ReadOnly {
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
	if code := HelperMain([]string{"h1,h2:/vol", "/mnt/x", "-sfnv", "-o", "_netdev,backup-volfile-servers=h3", "-t", "brickfs"}, &out); code != 0 {
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
		if code := HelperMain(c.args, &out); code == 0 || !strings.Contains(out.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want %q", c.args, code, out.String(), c.want)
		}
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
