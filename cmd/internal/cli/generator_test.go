package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unitNamePath escapes as systemd-escape --path does.
func TestUnitNamePath(t *testing.T) {
	esc, err := exec.LookPath("systemd-escape")
	if err != nil {
		t.Fatalf("systemd-escape not found (install systemd: bash scripts/deps.sh): %v", err)
	}
	for _, p := range []string{"/", "/mnt/cinder", "/var/lib/nova/mnt/abc/", "/mnt/a b", "/mnt/my-vol",
		"/mnt/.hidden", "/.dot/x", "/srv/gluster:vol/x_y.z", "/mnt/ünï", "/mnt/a\\b", "/mnt/%i"} {
		out, err := exec.Command(esc, "--path", p).Output()
		if err != nil {
			t.Fatalf("systemd-escape --path %q: %v", p, err)
		}
		if got, want := unitNamePath(p), strings.TrimSpace(string(out)); got != want {
			t.Errorf("%q: %q, systemd-escape says %q", p, got, want)
		}
	}
}

// The generator writes a network mount unit for each brickfs line without
// _netdev, pulled in by remote-fs.target (wanted with nofail, by nothing
// with noauto or x-systemd.automount), and leaves other lines alone.
func TestGenerator(t *testing.T) {
	dir := t.TempDir()
	fstab := filepath.Join(dir, "fstab")
	os.WriteFile(fstab, []byte(`# test
gl1,gl2:/cinder /mnt/cinder brickfs backup-volfile-servers=gl3 0 0
gl1:/nofail /mnt/nofail brickfs nofail,x-systemd.requires=foo.service 0 0
gl1:/noauto /mnt/noauto fuse.brickfs noauto 0 0
gl1:/auto /mnt/automount brickfs x-systemd.automount 0 0
gl1:/netdev /mnt/netdev brickfs _netdev 0 0
gl1:/native /mnt/native glusterfs defaults 0 0
/dev/sda1 / ext4 defaults 0 1
gl1:/bare /mnt/bare brickfs
fe80::1%eth0:/v6 /mnt/v6 brickfs x-systemd.requires=/srv,x-systemd.after=foo.service 0 0
gl1:/by /mnt/by brickfs noauto,nofail,x-systemd.wanted-by=a.target,x-systemd.required-by=b.target 0 0
`), 0o644)
	t.Setenv("SYSTEMD_FSTAB", fstab)
	normal, early, late := filepath.Join(dir, "n"), filepath.Join(dir, "e"), filepath.Join(dir, "l")
	var out bytes.Buffer
	if code := GeneratorMain([]string{normal, early, late}, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	unit := func(name string) string {
		b, err := os.ReadFile(filepath.Join(early, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return string(b)
	}
	for name, want := range map[string][]string{
		"mnt-cinder.mount":    {"Wants=network-online.target", "What=gl1,gl2:/cinder", "Where=/mnt/cinder", "Type=brickfs", "Options=backup-volfile-servers=gl3,_netdev\n"},
		"mnt-nofail.mount":    {"Requires=foo.service", "After=foo.service", "Options=nofail,x-systemd.requires=foo.service,_netdev\n"},
		"mnt-noauto.mount":    {"Type=fuse.brickfs", "Options=noauto,_netdev\n"},
		"mnt-automount.mount": {"Options=x-systemd.automount,_netdev\n"},
		"mnt-bare.mount":      {"What=gl1:/bare", "Options=_netdev\n"},
		"mnt-v6.mount":        {"What=fe80::1%%eth0:/v6", "Requires=srv.mount\nAfter=srv.mount", "After=foo.service"},
		"mnt-by.mount":        {"Options=noauto,nofail,x-systemd.wanted-by=a.target,x-systemd.required-by=b.target,_netdev\n"},
	} {
		u := unit(name)
		for _, w := range want {
			if !strings.Contains(u, w) {
				t.Errorf("%s lacks %q:\n%s", name, w, u)
			}
		}
		if strings.Contains(u, "Before=local-fs") || !strings.Contains(u, "After=local-fs.target network-online.target\n") {
			t.Errorf("%s is not ordered after local-fs.target and the network:\n%s", name, u)
		}
	}
	links := map[string]bool{}
	filepath.Walk(early, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink != 0 {
			rel, _ := filepath.Rel(early, p)
			target, _ := os.Readlink(p)
			links[rel+" -> "+target] = true
		}
		return nil
	})
	want := map[string]bool{
		"remote-fs.target.requires/mnt-cinder.mount -> ../mnt-cinder.mount": true,
		"remote-fs.target.wants/mnt-nofail.mount -> ../mnt-nofail.mount":    true,
		"remote-fs.target.requires/mnt-bare.mount -> ../mnt-bare.mount":     true,
		"remote-fs.target.requires/mnt-v6.mount -> ../mnt-v6.mount":         true,
		// Asked for by name: kept with noauto, and nofail does not turn
		// a requirement into a want.
		"a.target.wants/mnt-by.mount -> ../mnt-by.mount":    true,
		"b.target.requires/mnt-by.mount -> ../mnt-by.mount": true,
	}
	// systemd-fstab-generator's links from local-fs.target are masked.
	for _, u := range []string{"mnt-cinder", "mnt-nofail", "mnt-noauto", "mnt-automount", "mnt-bare", "mnt-v6", "mnt-by"} {
		for _, k := range []string{"requires", "wants"} {
			want["local-fs.target."+k+"/"+u+".mount -> /dev/null"] = true
		}
	}
	for l := range want {
		if !links[l] {
			t.Errorf("missing link %s; have %v", l, links)
		}
	}
	if len(links) != len(want) {
		t.Errorf("links %v, want %v", links, want)
	}
	for _, name := range []string{"mnt-netdev.mount", "mnt-native.mount", "-.mount"} {
		if _, err := os.Stat(filepath.Join(early, name)); err == nil {
			t.Errorf("%s written: systemd-fstab-generator gets that line right", name)
		}
	}
	if _, err := os.Stat(normal); err == nil {
		t.Errorf("the normal directory was written to; it belongs to systemd-fstab-generator")
	}
}
