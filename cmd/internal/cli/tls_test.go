package cli

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
)

// tlsDir writes glusterfs.pem, glusterfs.key and glusterfs.ca into a new
// directory.
func tlsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ca, err := bricktest.NewCA("cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ca.Issue(dir, "glusterfs", "client", time.Now().Add(-time.Hour), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := bricktest.WriteCAList(filepath.Join(dir, "glusterfs.ca"), ca); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestHostTLS(t *testing.T) {
	dir := tlsDir(t)
	secure := filepath.Join(t.TempDir(), "secure-access")
	env := map[string]string{envSecureAccess: secure, envSSLDir: dir}
	getenv := func(k string) string { return env[k] }
	mgmt, got, err := hostTLS(getenv)
	if mgmt != nil || err != nil || got != dir {
		t.Fatalf("no secure-access file: %v, %q, %v; want management TLS off and the TLS directory %s", mgmt, got, err, dir)
	}
	os.WriteFile(secure, []byte("option transport.socket.ssl-cert-depth 2\n"), 0o644)
	mgmt, _, err = hostTLS(getenv)
	if err != nil || mgmt == nil || mgmt.Files().Cert != filepath.Join(dir, "glusterfs.pem") || mgmt.Files().Depth != 2 {
		t.Fatalf("secure-access present: %+v, %v", mgmt, err)
	}
	env[envSSLDir] = t.TempDir()
	if _, _, err := hostTLS(getenv); err == nil || !strings.Contains(err.Error(), "management TLS is on ("+secure+" exists)") {
		t.Errorf("secure-access without certificates: %v", err)
	}
}

// A mount with management TLS on and this host's certificate missing
// fails at once with one line saying what to do, and a non-zero exit.
func TestServeManagementTLSWithoutCertificate(t *testing.T) {
	secure := filepath.Join(t.TempDir(), "secure-access")
	os.WriteFile(secure, nil, 0o644)
	empty := t.TempDir()
	t.Setenv(envSecureAccess, secure)
	t.Setenv(envSSLDir, empty)
	m := defaults()
	m.Spec, m.MountPoint, m.LogFile = "127.0.0.1:/vol", t.TempDir(), filepath.Join(t.TempDir(), "log")
	var got error
	code := serve(m, func(_ []string, err error) { got = err }, io.Discard)
	if code == ExitOK || got == nil {
		t.Fatalf("serve: exit %d, error %v", code, got)
	}
	msg := got.Error()
	want := `^management TLS is on \(` + regexp.QuoteMeta(secure) + ` exists\), but this host's certificate ` + regexp.QuoteMeta(filepath.Join(empty, "glusterfs.pem")) +
		` and key .*; install them \(or, if the servers do not use management TLS, remove ` + regexp.QuoteMeta(secure) + `\)$`
	if strings.Contains(msg, "\n") || !regexp.MustCompile(want).MatchString(msg) {
		t.Errorf("error %q\nwant %q", msg, want)
	}
}
