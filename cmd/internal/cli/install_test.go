package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// brickfs install in a scratch root: the native helper is diverted with
// dpkg-divert and brickfs takes its place; --revert puts it back; a
// reinstall of glusterfs-client in between would land on the diverted name.
func TestInstallRevert(t *testing.T) {
	if _, err := exec.LookPath("dpkg-divert"); err != nil {
		t.Fatalf("dpkg-divert not found (Debian's dpkg): %v", err)
	}
	t.Run("Classic", func(t *testing.T) { testInstallRevert(t, false) })
	t.Run("MergedUsr", func(t *testing.T) { testInstallRevert(t, true) })
}

func testInstallRevert(t *testing.T, merged bool) {
	root := t.TempDir()
	if merged {
		os.MkdirAll(filepath.Join(root, "usr/sbin"), 0o755)
		os.Symlink("usr/sbin", filepath.Join(root, "sbin"))
	} else {
		os.MkdirAll(filepath.Join(root, "sbin"), 0o755)
	}
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
	native := []byte("#!/bin/sh\necho native helper\n")
	if err := os.WriteFile(filepath.Join(root, nativeHelper), native, 0o755); err != nil {
		t.Fatal(err)
	}
	in := installer{root: root, out: &bytes.Buffer{}}
	if s := in.status(); !strings.HasPrefix(s, "GlusterFS's own client") {
		t.Fatalf("status before: %s", s)
	}
	if err := in.install(true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{nativeHelper, installHelper, installGenerator} {
		if target, err := os.Readlink(filepath.Join(root, p)); err != nil || target != installBin {
			t.Errorf("%s -> %q, %v; want a link to %s", p, target, err, installBin)
		}
	}
	if fi, err := os.Stat(filepath.Join(root, installBin)); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v", installBin, err)
	}
	if b, err := os.ReadFile(filepath.Join(root, nativeDiverted)); err != nil || !bytes.Equal(b, native) {
		t.Errorf("the native helper was not moved to %s: %v", nativeDiverted, err)
	}
	out, err := exec.Command("dpkg-divert", "--root", root, "--list", nativeHelper).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "local diversion of "+nativeHelper+" to "+nativeDiverted) {
		t.Errorf("dpkg-divert --list: %s, %v", out, err)
	}
	if s := in.status(); !strings.HasPrefix(s, "brickfs") {
		t.Errorf("status after install: %s", s)
	}
	// On merged /usr the /usr/sbin name is diverted too, without a rename.
	to, aliased := in.divertedPath(aliasHelper)
	if aliased != merged || (merged && to != aliasDiverted) {
		t.Errorf("%s diverted %v to %q; want %v", aliasHelper, aliased, to, merged)
	}
	// Installing again changes nothing and does not fail.
	if err := in.install(true); err != nil {
		t.Fatalf("second install: %v", err)
	}
	// A link that is not brickfs's is never removed by revert.
	p := filepath.Join(root, nativeHelper)
	os.Rename(p, p+".keep")
	os.Symlink("/somewhere/else", p)
	if err := in.revert(); err == nil || !strings.Contains(err.Error(), "not brickfs's link") {
		t.Errorf("revert over a foreign link: %v", err)
	}
	if _, aliased := in.divertedPath(aliasHelper); aliased != merged {
		t.Errorf("a refused revert changed the %s diversion", aliasHelper)
	}
	os.Remove(p)
	os.Rename(p+".keep", p)
	if err := in.revert(); err != nil {
		t.Fatal(err)
	}
	if _, aliased := in.divertedPath(aliasHelper); aliased {
		t.Errorf("%s still diverted after revert", aliasHelper)
	}
	if b, err := os.ReadFile(filepath.Join(root, nativeHelper)); err != nil || !bytes.Equal(b, native) {
		t.Errorf("revert did not restore the native helper: %q, %v", b, err)
	}
	if _, err := os.Lstat(filepath.Join(root, nativeDiverted)); !os.IsNotExist(err) {
		t.Errorf("%s still there after revert: %v", nativeDiverted, err)
	}
	if s := in.status(); !strings.HasPrefix(s, "GlusterFS's own client") {
		t.Errorf("status after revert: %s", s)
	}
	if err := in.uninstall(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{installBin, installHelper, installGenerator} {
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Errorf("%s left after uninstall: %v", p, err)
		}
	}
	// A file that is not ours is never replaced.
	os.WriteFile(filepath.Join(root, installHelper), []byte("someone else's"), 0o755)
	if err := in.install(false); err == nil || !strings.Contains(err.Error(), "not a link brickfs made") {
		t.Errorf("install over a foreign file: %v", err)
	}
}
