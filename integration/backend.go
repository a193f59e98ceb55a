package integration

import (
	"fmt"
	"net"
	"strings"
	"time"
)

// Getfattr reads one extended attribute of a brick backend file with
// getfattr(1) and returns its value in hex ("0x..."), or an error (ENODATA
// included) with getfattr's message.
func Getfattr(path, name string) (string, error) {
	out, err := run(30*time.Second, "getfattr", "--absolute-names", "-n", name, "-e", "hex", path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, name+"="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("getfattr %s %s: no value in %q", name, path, out)
}

// Listening reports whether something accepts TCP connections on
// host:port within timeout.
func Listening(host string, port int, timeout time.Duration) bool {
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, fmt.Sprint(port)), timeout)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// ListenAddrs lists the local addresses ("127.a.b.n:port") with a TCP
// socket listening on port.
func ListenAddrs(port int) ([]string, error) {
	socks, err := readProcNet("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	var out []string
	want := fmt.Sprintf(":%04X", port)
	for _, s := range socks {
		if s.state != "0A" || !strings.HasSuffix(s.local, want) {
			continue
		}
		var v uint32
		fmt.Sscanf(strings.Split(s.local, ":")[0], "%x", &v)
		out = append(out, fmt.Sprintf("%d.%d.%d.%d:%d", v&0xff, v>>8&0xff, v>>16&0xff, v>>24, port))
	}
	return out, nil
}
