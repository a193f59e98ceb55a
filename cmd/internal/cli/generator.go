package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// generatorName is the name brickfs answers to as a systemd generator.
const generatorName = "brickfs-fstab-generator"

// GeneratorMain is a systemd generator (systemd.generator(7)) for the
// brickfs lines of /etc/fstab (or $SYSTEMD_FSTAB):
//
//	brickfs-fstab-generator NORMAL-DIR [EARLY-DIR LATE-DIR]
//
// systemd-fstab-generator treats a line of type brickfs without _netdev
// as a local filesystem: ordered before local-fs.target, whose failure at
// boot drops the machine to emergency mode, and mounted before the network
// is up. It knows glusterfs as a network filesystem, not brickfs. For each
// such line this generator writes the mount unit into EARLY-DIR, which
// takes precedence over systemd-fstab-generator's: with _netdev added to
// its Options=, so that systemd orders it after the network and before
// remote-fs.target, and pulled in by remote-fs.target. systemd's generator
// still links the unit into local-fs.target.requires (or .wants) in its
// own directory; the early directory masks those links (a link to
// /dev/null of the same name), so local-fs.target neither waits for the
// mount nor fails with it. Lines of type glusterfs (brickfs as
// mount.glusterfs), and lines with _netdev, are already right and left
// alone. The early directory also outranks a unit of the same name in
// /etc/systemd/system: to override a brickfs line's unit, add _netdev to
// the line, or use a drop-in (UNIT.d/*.conf).
func GeneratorMain(args []string, stderr io.Writer) int {
	if len(args) != 1 && len(args) != 3 {
		fmt.Fprintf(stderr, "%s: usage: %s NORMAL-DIR [EARLY-DIR LATE-DIR] (systemd runs it at boot and on daemon-reload)\n", generatorName, generatorName)
		return ExitUsage
	}
	dir := args[0]
	if len(args) == 3 {
		dir = args[1]
	}
	fstab := os.Getenv("SYSTEMD_FSTAB")
	if fstab == "" {
		fstab = "/etc/fstab"
	}
	f, err := os.Open(fstab)
	if err != nil {
		if os.IsNotExist(err) {
			return ExitOK
		}
		fmt.Fprintf(stderr, "%s: %v\n", generatorName, err)
		return ExitFail
	}
	defer f.Close()
	code := ExitOK
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		e, ok := parseFstabLine(sc.Text())
		if !ok || !isBrickfsType(e.typ) || hasOption(e.opts, "_netdev") {
			continue
		}
		if err := writeNetworkMount(dir, fstab, e); err != nil {
			fmt.Fprintf(stderr, "%s: %s: %v\n", generatorName, e.where, err)
			code = ExitFail
		}
	}
	return code
}

type fstabEntry struct{ what, where, typ, opts string }

func parseFstabLine(line string) (fstabEntry, bool) {
	line = strings.TrimSpace(line)
	if line == "" || strings.HasPrefix(line, "#") {
		return fstabEntry{}, false
	}
	f := strings.Fields(line)
	if len(f) < 3 {
		return fstabEntry{}, false
	}
	e := fstabEntry{what: unescapeMount(f[0]), where: unescapeMount(f[1]), typ: f[2], opts: "defaults"}
	if len(f) > 3 {
		e.opts = f[3]
	}
	return e, true
}

func isBrickfsType(t string) bool {
	return t == "brickfs" || t == "fuse.brickfs" || strings.HasPrefix(t, "brickfs.")
}

func hasOption(opts, name string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// optionValues returns the values of every name=VALUE option.
func optionValues(opts, name string) []string {
	var out []string
	for _, o := range strings.Split(opts, ",") {
		if v, ok := strings.CutPrefix(o, name+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

// writeNetworkMount writes e's mount unit into dir, as systemd-fstab-generator
// would write it for a network filesystem.
func writeNetworkMount(dir, source string, e fstabEntry) error {
	where := path.Clean(e.where)
	if !path.IsAbs(where) {
		return fmt.Errorf("mount point %q is not an absolute path", e.where)
	}
	unit := unitNamePath(where) + ".mount"
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by %s: a brickfs mount is a network mount.\n", generatorName)
	b.WriteString("[Unit]\n")
	b.WriteString("Documentation=man:fstab(5) man:systemd-fstab-generator(8)\n")
	fmt.Fprintf(&b, "SourcePath=%s\n", specifierEscape(source))
	// After local filesystems (its log and volfile cache live under /var)
	// and the network; local-fs.target has no default dependencies, so
	// this makes no cycle.
	b.WriteString("After=local-fs.target network-online.target\nWants=network-online.target\n")
	for _, v := range optionValues(e.opts, "x-systemd.requires") {
		u := unitOf(v)
		fmt.Fprintf(&b, "Requires=%s\nAfter=%s\n", u, u)
	}
	for _, v := range optionValues(e.opts, "x-systemd.after") {
		fmt.Fprintf(&b, "After=%s\n", unitOf(v))
	}
	for _, v := range optionValues(e.opts, "x-systemd.before") {
		fmt.Fprintf(&b, "Before=%s\n", unitOf(v))
	}
	for _, v := range optionValues(e.opts, "x-systemd.requires-mounts-for") {
		fmt.Fprintf(&b, "RequiresMountsFor=%s\n", specifierEscape(v))
	}
	b.WriteString("\n[Mount]\n")
	fmt.Fprintf(&b, "What=%s\nWhere=%s\nType=%s\n", specifierEscape(e.what), specifierEscape(where), e.typ)
	opts := e.opts
	if opts == "defaults" {
		opts = ""
	}
	if opts != "" {
		opts += ","
	}
	fmt.Fprintf(&b, "Options=%s_netdev\n", specifierEscape(opts))
	if v := optionValues(e.opts, "x-systemd.mount-timeout"); len(v) > 0 {
		fmt.Fprintf(&b, "TimeoutSec=%s\n", v[len(v)-1])
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, unit), []byte(b.String()), 0o644); err != nil {
		return err
	}
	// Mask the links systemd-fstab-generator makes from local-fs.target.
	for _, kind := range []string{".requires", ".wants"} {
		if err := link(filepath.Join(dir, "local-fs.target"+kind), unit, "/dev/null"); err != nil {
			return err
		}
	}
	// What pulls the mount in: x-systemd.wanted-by and required-by as
	// asked (also with noauto, as systemd does); otherwise nothing for
	// noauto, the automount unit that systemd-fstab-generator writes for
	// x-systemd.automount, else remote-fs.target: required, or wanted with
	// nofail.
	wanted, required := optionValues(e.opts, "x-systemd.wanted-by"), optionValues(e.opts, "x-systemd.required-by")
	if len(wanted)+len(required) == 0 && !hasOption(e.opts, "noauto") && !hasOption(e.opts, "x-systemd.automount") {
		if hasOption(e.opts, "nofail") {
			wanted = []string{"remote-fs.target"}
		} else {
			required = []string{"remote-fs.target"}
		}
	}
	for kind, targets := range map[string][]string{".wants": wanted, ".requires": required} {
		for _, t := range targets {
			if err := link(filepath.Join(dir, unitOf(t)+kind), unit, "../"+unit); err != nil {
				return err
			}
		}
	}
	return nil
}

// link makes dir/name a symlink to target.
func link(dir, name, target string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := filepath.Join(dir, name)
	_ = os.Remove(p)
	return os.Symlink(target, p)
}

// unitOf is the unit an x-systemd option names: an absolute path is the
// mount unit of that path (as systemd-fstab-generator takes it).
func unitOf(v string) string {
	if path.IsAbs(v) {
		return unitNamePath(v) + ".mount"
	}
	return v
}

// specifierEscape doubles '%', which systemd reads as a specifier in unit
// files (an IPv6 zone in a spec, fe80::1%eth0).
func specifierEscape(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// unitNamePath escapes a path into a unit name as systemd-escape --path
// does (unit_name_path_escape): slashes become dashes, and every byte that
// is not ASCII alphanumeric, ':', '_' or '.' becomes \xNN, as does a '.'
// that starts the whole name.
func unitNamePath(p string) string {
	p = strings.Trim(path.Clean(p), "/")
	if p == "" {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == ':', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}
	return b.String()
}
