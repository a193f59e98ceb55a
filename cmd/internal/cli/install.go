package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// What `brickfs install` puts in place, as paths in the root filesystem.
const (
	installBin       = "/usr/local/sbin/brickfs"
	installHelper    = "/sbin/mount.brickfs"
	installGenerator = "/etc/systemd/system-generators/" + generatorName
	// The native helper's path as glusterfs-client ships it, and where
	// dpkg-divert moves it while brickfs stands in for it.
	nativeHelper   = "/sbin/mount.glusterfs"
	nativeDiverted = "/sbin/mount.glusterfs.distrib"
	// On a merged-/usr system /sbin is a link to usr/sbin, and a later
	// glusterfs-client may ship the helper under this name instead: it is
	// diverted too (without renaming: it is the same file).
	aliasHelper   = "/usr/sbin/mount.glusterfs"
	aliasDiverted = "/usr/sbin/mount.glusterfs.distrib"
)

const installUsage = `usage:
  brickfs install [--root DIR] [--glusterfs]  install brickfs, mount.brickfs and its systemd
                                              generator; --glusterfs also makes mount -t glusterfs
                                              (Cinder, os-brick, Nova, fstab) use brickfs
  brickfs install --revert [--root DIR]       give mount -t glusterfs back to GlusterFS's helper
  brickfs install --uninstall [--root DIR]    revert, then remove what install put in place
  brickfs install --status [--root DIR]       say which helper mount -t glusterfs runs`

// installMain runs `brickfs install`. The switch of mount -t glusterfs is a
// dpkg diversion of /sbin/mount.glusterfs (the native helper is renamed to
// mount.glusterfs.distrib and brickfs takes its place), which upgrades of
// glusterfs-client respect: they install the native helper under the
// diverted name, never over brickfs.
func installMain(args []string, stderr io.Writer) int {
	root, mode := "/", "install"
	glusterfs := false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--root":
			if i+1 >= len(args) {
				fmt.Fprintf(stderr, "brickfs install: --root needs a directory\n%s\n", installUsage)
				return ExitUsage
			}
			i++
			root = args[i]
		case "--glusterfs":
			glusterfs = true
		case "--revert", "--uninstall", "--status":
			mode = a[2:]
		default:
			fmt.Fprintf(stderr, "brickfs install: unknown argument %q\n%s\n", a, installUsage)
			return ExitUsage
		}
	}
	in := installer{root: root, out: os.Stdout}
	var err error
	switch mode {
	case "install":
		err = in.install(glusterfs)
	case "revert":
		err = in.revert()
	case "uninstall":
		if err = in.revert(); err == nil {
			err = in.uninstall()
		}
	case "status":
		fmt.Fprintln(in.out, in.status())
	}
	if err != nil {
		fmt.Fprintf(stderr, "brickfs install: %v\n", err)
		return ExitFail
	}
	return ExitOK
}

type installer struct {
	root string
	out  io.Writer
}

func (in installer) path(p string) string { return filepath.Join(in.root, p) }

func (in installer) dpkgDivert(args ...string) (string, error) {
	if _, err := exec.LookPath("dpkg-divert"); err != nil {
		return "", errors.New("dpkg-divert not found: switching mount -t glusterfs needs dpkg (Debian, Ubuntu)")
	}
	cmd := exec.Command("dpkg-divert", append([]string{"--root", in.root}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dpkg-divert %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// diverted reports whether helper is diverted, and to where.
func (in installer) divertedPath(helper string) (string, bool) {
	out, err := in.dpkgDivert("--truename", helper)
	if err != nil || out == helper {
		return "", false
	}
	return out, true
}

func (in installer) diverted() (string, bool) { return in.divertedPath(nativeHelper) }

// mergedUsr reports whether /sbin is a link to usr/sbin in the root.
func (in installer) mergedUsr() bool {
	t, err := os.Readlink(in.path("/sbin"))
	return err == nil && strings.Trim(t, "/") == "usr/sbin"
}

// ours reports whether p is a link to the installed brickfs.
func (in installer) ours(p string) bool {
	t, err := os.Readlink(in.path(p))
	return err == nil && t == installBin
}

// link makes p a symlink to target, replacing a symlink but never a file.
func (in installer) link(target, p string) error {
	full := in.path(p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(full); err == nil {
		if fi.Mode()&os.ModeSymlink == 0 {
			return fmt.Errorf("%s exists and is not a link brickfs made; move it away first", full)
		}
		if err := os.Remove(full); err != nil {
			return err
		}
	}
	return os.Symlink(target, full)
}

func (in installer) install(glusterfs bool) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return err
	}
	bin := in.path(installBin)
	if exe != bin {
		if err := copyFile(exe, bin); err != nil {
			return fmt.Errorf("install %s: %v", bin, err)
		}
		fmt.Fprintf(in.out, "installed %s\n", bin)
	}
	for _, p := range []string{installHelper, installGenerator} {
		if err := in.link(installBin, p); err != nil {
			return err
		}
		fmt.Fprintf(in.out, "linked %s -> %s\n", in.path(p), installBin)
	}
	fmt.Fprintln(in.out, "run `systemctl daemon-reload` for systemd to run the fstab generator now")
	if !glusterfs {
		fmt.Fprintf(in.out, "mount -t brickfs uses brickfs; mount -t glusterfs: %s\n", in.status())
		return nil
	}
	if _, ok := in.diverted(); !ok {
		if in.ours(nativeHelper) {
			return fmt.Errorf("%s is brickfs's link but GlusterFS's helper is not diverted (the diversion was removed by hand?); reinstall glusterfs-client (apt-get install --reinstall glusterfs-client), then run this again", in.path(nativeHelper))
		}
		if _, err := os.Lstat(in.path(nativeHelper)); err != nil {
			return fmt.Errorf("%s is missing: install glusterfs-client first (apt-get install glusterfs-client), so that reverting can restore it", in.path(nativeHelper))
		}
		if _, err := in.dpkgDivert("--local", "--rename", "--divert", nativeDiverted, "--add", nativeHelper); err != nil {
			return err
		}
		if err := in.link(installBin, nativeHelper); err != nil {
			// Put GlusterFS's helper back rather than leave none.
			if _, rerr := in.dpkgDivert("--local", "--rename", "--divert", nativeDiverted, "--remove", nativeHelper); rerr != nil {
				return fmt.Errorf("%v; and putting GlusterFS's helper back failed: %v; run `dpkg-divert --local --rename --remove %s`", err, rerr, nativeHelper)
			}
			return err
		}
	}
	if in.mergedUsr() {
		if _, ok := in.divertedPath(aliasHelper); !ok {
			if _, err := in.dpkgDivert("--local", "--no-rename", "--divert", aliasDiverted, "--add", aliasHelper); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(in.out, "mount -t glusterfs: %s\n", in.status())
	return nil
}

// revert gives mount -t glusterfs back to the native helper. brickfs's
// link is moved aside first and put back if dpkg-divert fails, so there is
// always a helper.
func (in installer) revert() error {
	to, ok := in.diverted()
	p := in.path(nativeHelper)
	_, lerr := os.Lstat(p)
	if ok && lerr == nil && !in.ours(nativeHelper) {
		return fmt.Errorf("%s is not brickfs's link; leaving it and the diversion to %s in place", p, to)
	}
	if ato, aok := in.divertedPath(aliasHelper); aok {
		if _, err := in.dpkgDivert("--local", "--no-rename", "--divert", ato, "--remove", aliasHelper); err != nil {
			return err
		}
	}
	if !ok {
		fmt.Fprintf(in.out, "mount -t glusterfs: %s\n", in.status())
		return nil
	}
	aside := ""
	if lerr == nil {
		aside = p + ".brickfs-revert"
		if err := os.Rename(p, aside); err != nil {
			return err
		}
	}
	if _, err := in.dpkgDivert("--local", "--rename", "--divert", to, "--remove", nativeHelper); err != nil {
		if aside != "" {
			_ = os.Rename(aside, p)
		}
		return err
	}
	if aside != "" {
		_ = os.Remove(aside)
	}
	fmt.Fprintf(in.out, "mount -t glusterfs: %s\n", in.status())
	return nil
}

func (in installer) uninstall() error {
	for _, p := range []string{installGenerator, installHelper} {
		if in.ours(p) {
			if err := os.Remove(in.path(p)); err != nil {
				return err
			}
			fmt.Fprintf(in.out, "removed %s\n", in.path(p))
		}
	}
	switch err := os.Remove(in.path(installBin)); {
	case err == nil:
		fmt.Fprintf(in.out, "removed %s\n", in.path(installBin))
	case !os.IsNotExist(err):
		return err
	}
	if in.root == "/" {
		if b, err := os.ReadFile("/proc/self/mounts"); err == nil && strings.Contains(string(b), " fuse.brickfs ") {
			fmt.Fprintln(in.out, "note: brickfs mounts are still live (see `findmnt -t fuse.brickfs`); their daemons run until unmounted")
		}
		if ents, _ := os.ReadDir(mountRecords); len(ents) > 0 {
			fmt.Fprintf(in.out, "note: %d brickfs daemons still serve mounts (%s)\n", len(ents), mountRecords)
		}
	}
	if b, err := os.ReadFile(in.path("/etc/fstab")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if e, ok := parseFstabLine(l); ok && isBrickfsType(e.typ) {
				fmt.Fprintf(in.out, "note: /etc/fstab still mounts %s with brickfs; that line fails at boot now\n", e.where)
			}
		}
	}
	fmt.Fprintln(in.out, "run `systemctl daemon-reload` for systemd to drop the fstab generator")
	return nil
}

// status says which helper mount -t glusterfs runs.
func (in installer) status() string {
	p := in.path(nativeHelper)
	target, err := os.Readlink(p)
	to, diverted := in.diverted()
	switch {
	case diverted && err == nil && filepath.Base(target) == "brickfs":
		return fmt.Sprintf("brickfs (%s -> %s; GlusterFS's helper diverted to %s)", nativeHelper, target, to)
	case diverted:
		return fmt.Sprintf("nothing usable: %s is diverted to %s but brickfs is not in its place; run `brickfs install --revert`", nativeHelper, to)
	}
	if _, err := os.Stat(p); err != nil {
		return "nothing: glusterfs-client is not installed (" + nativeHelper + " is missing)"
	}
	return "GlusterFS's own client (" + nativeHelper + ")"
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".new"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}
