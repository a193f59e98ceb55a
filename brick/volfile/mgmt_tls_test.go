package volfile

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/tlsconf"
)

// mgmtTLS is a CA, a glusterd certificate signed by it (valid, or
// expired), and this host's management TLS made from a secure-access
// file and a directory of glusterfs.pem, glusterfs.key and glusterfs.ca.
type mgmtTLS struct {
	ca      *bricktest.CA
	srvDir  string
	hostDir string
	client  *tlsconf.Config
}

func newMgmtTLS(t *testing.T, serverNotAfter time.Time) *mgmtTLS {
	t.Helper()
	ca, err := bricktest.NewCA("cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	m := &mgmtTLS{ca: ca, srvDir: t.TempDir(), hostDir: t.TempDir()}
	now := time.Now()
	if _, _, _, err := ca.Issue(m.srvDir, "glusterfs", "glusterd", now.Add(-48*time.Hour), serverNotAfter); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ca.Issue(m.hostDir, "glusterfs", "client", now.Add(-time.Hour), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := bricktest.WriteCAList(filepath.Join(m.hostDir, "glusterfs.ca"), ca); err != nil {
		t.Fatal(err)
	}
	secure := filepath.Join(t.TempDir(), "secure-access")
	if err := os.WriteFile(secure, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if m.client, err = tlsconf.Management(secure, m.hostDir); err != nil || m.client == nil {
		t.Fatalf("management TLS: %v, %v", m.client, err)
	}
	return m
}

// glusterd is glusterd's side: its certificate, and this host's CA
// required of clients.
func (m *mgmtTLS) glusterd(t *testing.T) *tls.Config {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(filepath.Join(m.srvDir, "glusterfs.pem"), filepath.Join(m.srvDir, "glusterfs.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(m.ca.Cert)
	return &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
}

// serveSpec makes fk's glusterd answer GETSPEC with spec().
func serveSpec(fk *bricktest.Fake, spec func() string) {
	fk.HandleProg(bricktest.ProgHandshake, bricktest.ProcGetSpec, func(*bricktest.Call) bricktest.Reply {
		s := spec()
		return bricktest.OK(getspecReply(int32(len(s)), 0, s, nil))
	})
}

func TestFetchOverManagementTLS(t *testing.T) {
	m := newMgmtTLS(t, time.Now().Add(time.Hour))
	fk := bricktest.New(t, bricktest.Options{GlusterdTLS: m.glusterd(t)})
	const vol = "volume v-client-0\n type protocol/client\nend-volume\n"
	serveSpec(fk, func() string { return vol })
	srv := []Server{{Host: fk.Host(), Port: fk.GlusterdPort()}}
	got, err := Fetch(context.Background(), srv, "v", FetchOptions{Timeout: 5 * time.Second, TLS: m.client})
	if err != nil || string(got.Volfile) != vol {
		t.Fatalf("fetch over TLS: %v", err)
	}

	// In the clear, from a glusterd that wants TLS: it hangs up, and the
	// error says what to do.
	_, err = Fetch(context.Background(), srv, "v", FetchOptions{Timeout: 5 * time.Second})
	t.Logf("in the clear: %v", err)
	if err == nil || !regexp.MustCompile(`no volfile server answered \(tried 127\.0\.0\.1:\d+: .*glusterd hung up: if the servers use management TLS, this host needs it too: create /var/lib/glusterd/secure-access`).MatchString(err.Error()) {
		t.Errorf("fetch in the clear from a TLS glusterd: %v", err)
	}

	// Over TLS from a glusterd that does not speak it.
	plain := bricktest.New(t, bricktest.Options{})
	serveSpec(plain, func() string { return vol })
	_, err = Fetch(context.Background(), []Server{{Host: plain.Host(), Port: plain.GlusterdPort()}}, "v", FetchOptions{Timeout: 5 * time.Second, TLS: m.client})
	t.Logf("TLS to a plain glusterd: %v", err)
	sa := regexp.QuoteMeta(m.client.SecureAccess())
	if !errors.Is(err, tlsconf.ErrNotTLS) || !regexp.MustCompile(`^no volfile server accepted the management TLS connection \(`+sa+` exists here\): 127\.0\.0\.1:\d+: glusterd closed the connection during the TLS handshake .*; if it keeps doing so, glusterd does not use management TLS, which this host uses because `+sa+` exists: remove that file`).MatchString(err.Error()) {
		t.Errorf("fetch over TLS from a plain glusterd: %v", err)
	}
}

// glusterd's certificate expired, or signed by a CA this host does not
// trust: the fetch fails with one line saying so.
func TestFetchRefusesGlusterdCertificate(t *testing.T) {
	m := newMgmtTLS(t, time.Now().Add(-time.Hour))
	fk := bricktest.New(t, bricktest.Options{GlusterdTLS: m.glusterd(t)})
	serveSpec(fk, func() string { return "volume x\n type protocol/client\nend-volume\n" })
	srv := []Server{{Host: fk.Host(), Port: fk.GlusterdPort()}}
	_, err := Fetch(context.Background(), srv, "v", FetchOptions{Timeout: 5 * time.Second, TLS: m.client})
	t.Logf("expired: %v", err)
	if !errors.Is(err, tlsconf.ErrExpired) || !regexp.MustCompile(`127\.0\.0\.1:\d+: glusterd's certificate \(CN=glusterd\) expired on \d{4}-\d\d-\d\d .*; renew it on the server`).MatchString(err.Error()) {
		t.Errorf("expired glusterd certificate: %v", err)
	}
	other := newMgmtTLS(t, time.Now().Add(time.Hour)) // another CA
	fk2 := bricktest.New(t, bricktest.Options{GlusterdTLS: other.glusterd(t)})
	_, err = Fetch(context.Background(), []Server{{Host: fk2.Host(), Port: fk2.GlusterdPort()}}, "v", FetchOptions{Timeout: 5 * time.Second, TLS: m.client})
	t.Logf("other CA: %v", err)
	if !errors.Is(err, tlsconf.ErrUnknownCA) || !regexp.MustCompile(`glusterd's certificate \(CN=glusterd, issued by .*\) is not signed by any certificate of the CA list .*glusterfs\.ca`).MatchString(err.Error()) {
		t.Errorf("glusterd certificate from another CA: %v", err)
	}
}

// The follower reaches glusterd over management TLS too: a changed volfile
// is applied.
func TestWatchOverManagementTLS(t *testing.T) {
	m := newMgmtTLS(t, time.Now().Add(time.Hour))
	fk := bricktest.New(t, bricktest.Options{GlusterdTLS: m.glusterd(t)})
	const newSpec = "volume v-client-0\n type protocol/client\n option remote-host h2\nend-volume\n"
	serveSpec(fk, func() string { return newSpec })
	ctx, cancel := context.WithCancel(context.Background())
	applied := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, []Server{{Host: fk.Host(), Port: fk.GlusterdPort()}}, "v", []byte("old"),
			WatchOptions{Check: time.Second, Retry: 100 * time.Millisecond, TLS: m.client}, zaptest.NewLogger(t),
			func(b []byte) ([]string, error) {
				select {
				case applied <- string(b):
				default:
				}
				return []string{"changed"}, nil
			})
	}()
	defer func() { cancel(); <-done }()
	select {
	case got := <-applied:
		if got != newSpec {
			t.Errorf("applied %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the volfile served over management TLS was never applied")
	}
}

// A glusterd that refuses this host's certificate after the TLS 1.3
// handshake may reset the connection before its alert is read: the
// hang-up on the first call is explained as that, said as the likely
// cause.
func TestMgmtHangupAfterHandshakeExplained(t *testing.T) {
	m := newMgmtTLS(t, time.Now().Add(time.Hour))
	err := ExplainMgmt(m.client, fmt.Errorf("%w: write: write tcp 127.0.0.1:1->127.0.0.1:24007: write: connection reset by peer", sunrpc.ErrDisconnected))
	var te *tlsconf.Error
	if !errors.As(err, &te) || !errors.Is(err, tlsconf.ErrRefused) {
		t.Fatalf("a hang-up after the handshake: %v (%T), want a tlsconf.Error", err, err)
	}
	if !regexp.MustCompile(`glusterd hung up right after the TLS handshake .*most likely glusterd does not trust this host's certificate .*glusterfs\.pem \(CN=client, issued by `).MatchString(err.Error()) ||
		!strings.Contains(err.Error(), "add this host's CA to the servers' CA list") {
		t.Errorf("message: %v", err)
	}
}
