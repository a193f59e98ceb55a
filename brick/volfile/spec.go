package volfile

import (
	"fmt"
	"net/netip"
	"path"
	"strconv"
	"strings"
)

// DefaultPort is glusterd's management port (GF_DEFAULT_BASE_PORT).
const DefaultPort = 24007

// maxHostLen bounds a host name (DNS names are at most 253 bytes).
const maxHostLen = 253

// maxVolumeName is GD_VOLUME_NAME_MAX (rpc/rpc-lib/src/protocol-common.h).
const maxVolumeName = 256

// Server is one volfile server (glusterd).
type Server struct {
	Host string // name, IPv4 or IPv6 address (no brackets; may carry a %zone)
	Port int    // DefaultPort unless given
}

// String returns host:port, with an IPv6 address in brackets.
func (s Server) String() string {
	return joinHostPort(s.Host, s.Port)
}

func joinHostPort(host string, port int) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]:" + strconv.Itoa(port)
	}
	return host + ":" + strconv.Itoa(port)
}

// Spec is what a mount names: where to fetch the volfile and what to mount.
type Spec struct {
	Servers []Server // in the order to try them; no duplicates
	Volume  string   // the volume name, without a leading '/'
	Subdir  string   // "" for the whole volume, else a clean path such as "/sub/dir"
}

// ParseSpec parses a mount source as mount.glusterfs takes it,
//
//	HOST[,HOST...]:[/]VOLUME[/SUBDIR]
//
// with backup, the value of the backup-volfile-servers mount option (may be
// empty): hosts separated by ':', an IPv6 address in brackets, as
// mount.glusterfs's parse_backup_volfile_servers reads it. Backup servers
// follow the spec's servers; repeats are dropped.
//
// A HOST in the spec may carry a port (host:24008, [::1]:24008); without
// one it is DefaultPort. A bare IPv6 address (fe80::1%eth0) is taken whole,
// as mount.glusterfs does; give a port only with brackets. The volume part
// starts after the last ':' outside brackets. Snapshot mounts
// (HOST:/snaps/...) are refused.
func ParseSpec(spec, backup string) (Spec, error) {
	var s Spec
	usage := "use HOST[,HOST...]:/VOLUME[/SUBDIR]"
	if spec == "" {
		return s, fmt.Errorf("empty spec; %s", usage)
	}
	if i := strings.IndexAny(spec, " \t\r\n"); i >= 0 {
		return s, fmt.Errorf("spec %q contains white space; %s", spec, usage)
	}
	colon := lastColonOutsideBrackets(spec)
	if colon < 0 {
		return s, fmt.Errorf("spec %q has no ':'; %s", spec, usage)
	}
	hosts, vol := spec[:colon], spec[colon+1:]
	if hosts == "" {
		return s, fmt.Errorf("spec %q names no server before ':'; %s", spec, usage)
	}
	for _, h := range strings.Split(hosts, ",") {
		srv, err := parseServer(h, true)
		if err != nil {
			return Spec{}, fmt.Errorf("spec %q: %w", spec, err)
		}
		s.addServer(srv)
	}

	vol = strings.TrimPrefix(vol, "/")
	name, sub, hasSub := strings.Cut(vol, "/")
	if name == "" {
		return Spec{}, fmt.Errorf("spec %q names no volume after ':'; %s", spec, usage)
	}
	if name == "snaps" && hasSub {
		return Spec{}, fmt.Errorf("spec %q is a snapshot mount (/snaps/...), which brickfs does not support", spec)
	}
	if err := checkVolumeName(name); err != nil {
		return Spec{}, fmt.Errorf("spec %q: %w", spec, err)
	}
	s.Volume = name
	if hasSub {
		if sub = path.Clean("/" + sub); sub != "/" {
			s.Subdir = sub
		}
	}

	if backup != "" {
		servers, err := ParseBackupServers(backup)
		if err != nil {
			return Spec{}, err
		}
		for _, srv := range servers {
			s.addServer(srv)
		}
	}
	return s, nil
}

func (s *Spec) addServer(srv Server) {
	for _, have := range s.Servers {
		if have == srv {
			return
		}
	}
	s.Servers = append(s.Servers, srv)
}

// ParseBackupServers parses the value of the backup-volfile-servers mount
// option: hosts separated by ':', IPv6 addresses in brackets
// ("h2:h3:[fe80::1%eth0]"). Every server gets DefaultPort; the option has
// no way to give a port.
func ParseBackupServers(value string) ([]Server, error) {
	var out []Server
	for rest := value; ; {
		var item string
		if strings.HasPrefix(rest, "[") {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("backup-volfile-servers %q: '[' without ']'", value)
			}
			item, rest = rest[:end+1], rest[end+1:]
			if rest != "" && rest[0] != ':' {
				return nil, fmt.Errorf("backup-volfile-servers %q: expected ':' after %q", value, item)
			}
			rest = strings.TrimPrefix(rest, ":")
		} else {
			var found bool
			item, rest, found = strings.Cut(rest, ":")
			if found && rest == "" {
				return nil, fmt.Errorf("backup-volfile-servers %q ends in ':'; separate hosts with ':', e.g. h2:h3", value)
			}
		}
		srv, err := parseServer(item, false)
		if err != nil {
			return nil, fmt.Errorf("backup-volfile-servers %q: %w", value, err)
		}
		out = append(out, srv)
		if rest == "" {
			return out, nil
		}
	}
}

// lastColonOutsideBrackets returns the index of the last ':' not inside
// [...], or -1.
func lastColonOutsideBrackets(s string) int {
	depth := 0
	last := -1
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				last = i
			}
		}
	}
	return last
}

// parseServer parses HOST, [IPV6] and, when withPort, HOST:PORT and
// [IPV6]:PORT. A bare IPv6 address is taken whole.
func parseServer(s string, withPort bool) (Server, error) {
	if s == "" {
		return Server{}, fmt.Errorf("empty host name")
	}
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return Server{}, fmt.Errorf("host %q: '[' without ']'", s)
		}
		addr, err := netip.ParseAddr(s[1:end])
		if err != nil || !addr.Is6() {
			return Server{}, fmt.Errorf("host %q: brackets must hold an IPv6 address", s)
		}
		if err := checkZone(addr.Zone()); err != nil {
			return Server{}, fmt.Errorf("host %q: %w", s, err)
		}
		srv := Server{Host: addr.String(), Port: DefaultPort}
		rest := s[end+1:]
		if rest == "" {
			return srv, nil
		}
		if !withPort || rest[0] != ':' {
			return Server{}, fmt.Errorf("host %q: unexpected %q after ']'", s, rest)
		}
		port, err := parsePort(rest[1:])
		if err != nil {
			return Server{}, fmt.Errorf("host %q: %w", s, err)
		}
		srv.Port = port
		return srv, nil
	}
	switch strings.Count(s, ":") {
	case 0:
		if err := checkHostName(s); err != nil {
			return Server{}, err
		}
		return Server{Host: s, Port: DefaultPort}, nil
	case 1:
		if !withPort {
			return Server{}, fmt.Errorf("host %q: unexpected ':'", s)
		}
		host, p, _ := strings.Cut(s, ":")
		if err := checkHostName(host); err != nil {
			return Server{}, err
		}
		port, err := parsePort(p)
		if err != nil {
			return Server{}, fmt.Errorf("host %q: %w", s, err)
		}
		return Server{Host: host, Port: port}, nil
	default:
		addr, err := netip.ParseAddr(s)
		if err != nil || !addr.Is6() {
			return Server{}, fmt.Errorf("host %q is neither a host name nor an IPv6 address; write an IPv6 address with a port as [ADDR]:PORT", s)
		}
		if err := checkZone(addr.Zone()); err != nil {
			return Server{}, fmt.Errorf("host %q: %w", s, err)
		}
		return Server{Host: addr.String(), Port: DefaultPort}, nil
	}
}

func parsePort(p string) (int, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || p[0] == '+' {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return n, nil
}

// checkHostName accepts DNS names and IPv4 addresses.
func checkHostName(h string) error {
	if len(h) > maxHostLen {
		return fmt.Errorf("host name %.20q... is longer than %d bytes", h, maxHostLen)
	}
	if h == "" {
		return fmt.Errorf("empty host name")
	}
	if h[0] == '-' || h[0] == '.' {
		return fmt.Errorf("host name %q cannot start with %q", h, h[0])
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return fmt.Errorf("host name %q contains %q; use letters, digits, '-', '.' and '_'", h, c)
		}
	}
	return nil
}

// checkZone accepts the zone of an IPv6 address (fe80::1%eth0): an
// interface name or number.
func checkZone(z string) error {
	for i := 0; i < len(z); i++ {
		if c := z[i]; !isAlnum(c) && c != '-' && c != '.' && c != '_' {
			return fmt.Errorf("IPv6 zone %q contains %q; use an interface name or number", z, c)
		}
	}
	return nil
}

// checkVolumeName applies glusterd's rule for volume names
// (cli_validate_volname in cli/src/cli-cmd-parser.c): letters, digits, '-'
// and '_', not starting with '-', at most 256 bytes.
func checkVolumeName(name string) error {
	if name == "" {
		return fmt.Errorf("empty volume name")
	}
	if len(name) > maxVolumeName {
		return fmt.Errorf("volume name %.20q... is longer than %d bytes", name, maxVolumeName)
	}
	if name[0] == '-' {
		return fmt.Errorf("volume name %q cannot start with '-'", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) && c != '-' && c != '_' {
			return fmt.Errorf("volume name %q contains %q; volume names hold only letters, digits, '-' and '_'", name, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
