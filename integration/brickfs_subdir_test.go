package integration

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestBrickfsSubdirMount: HOST:/VOL/DIR mounts one directory of a replica-3
// volume as the root, as mount.glusterfs does (the bricks serve it in
// place of the root: subdir-mount in SETVOLUME). Files written there land
// in that directory on every brick, nothing outside it is visible, and the
// native client's subdir mount and a mount of the whole volume read the
// same bytes.
func TestBrickfsSubdirMount(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	c := NewCluster(t, 3)
	const vol = "rsub"
	c.CreateVolume(t, vol, Replica3)
	c.Start(t, vol)
	whole := c.MountBrickfs(t, c.Spec(vol))
	if err := os.MkdirAll(filepath.Join(whole, "tenant", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(whole, "outside"), []byte("not for the tenant"), 0o644); err != nil {
		t.Fatal(err)
	}

	spec := c.Spec(vol) + "/tenant"
	sub := c.MountBrickfs(t, spec)
	content := []byte("written through the subdir mount\n")
	if err := os.WriteFile(filepath.Join(sub, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(sub, "made-here"), 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if strings.Join(names, " ") != "f inner made-here" {
		t.Errorf("the subdir mount lists %v, want [f inner made-here]", names)
	}
	if _, err := os.Stat(filepath.Join(sub, "outside")); !os.IsNotExist(err) {
		t.Errorf("stat of a file outside the subdir through the subdir mount: %v, want ENOENT", err)
	}
	for _, b := range c.Bricks(t, vol) {
		if _, err := os.Stat(filepath.Join(b.Path, "tenant", "made-here")); err != nil {
			t.Errorf("brick %d: %v", b.Index, err)
		}
	}
	c.CheckBackends(t, vol, Replica3, "tenant/f")
	for _, m := range []string{whole, c.MountNative(t, vol+"/tenant")} {
		p := filepath.Join(m, "f")
		if m == whole {
			p = filepath.Join(m, "tenant", "f")
		}
		if got, err := os.ReadFile(p); err != nil || string(got) != string(content) {
			t.Errorf("%s: %q, %v", p, got, err)
		}
	}
	// /proc/mounts shows the spec as given.
	raw, _ := os.ReadFile("/proc/mounts")
	found := false
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[1] == sub {
			found = f[0] == spec
			if !found {
				t.Errorf("/proc/mounts shows %q for the subdir mount, want %q", f[0], spec)
			}
		}
	}
	if !found {
		t.Errorf("%s not in /proc/mounts", sub)
	}
	c.WaitHealed(t, vol, []string{"", "tenant", "tenant/f"}, repHealWait)

	// With a brick down, a file made in the subdir mount's root is
	// marked for heal on the directory itself (the bricks map the root
	// gfid to it), and heals once the brick is back.
	c.KillBrick(t, vol, 2)
	if err := os.WriteFile(filepath.Join(sub, "g"), content, 0o644); err != nil {
		t.Fatalf("write with a brick down: %v", err)
	}
	for _, b := range c.Bricks(t, vol)[:2] {
		st, err := AFRState(filepath.Join(b.Path, "tenant"))
		if err != nil {
			t.Fatal(err)
		}
		if hexZero(st["trusted.afr."+vol+"-client-2"]) {
			t.Errorf("brick %d: tenant does not blame the dead brick: %v", b.Index, st)
		}
		if root, _ := AFRState(b.Path); !hexZero(root["trusted.afr."+vol+"-client-2"]) {
			t.Errorf("brick %d: the volume root was marked for a change in tenant: %v", b.Index, root)
		}
	}
	c.RestartBrick(t, vol, 2)
	c.WaitHealed(t, vol, []string{"", "tenant", "tenant/g"}, repHealWait)
	c.CheckBackends(t, vol, Replica3, "tenant/g")
	if got, err := os.ReadFile(filepath.Join(sub, "g")); err != nil || string(got) != string(content) {
		t.Errorf("g through the subdir mount after heal: %q, %v", got, err)
	}
}
