package brick

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/volfile"
)

func clientXlator(t *testing.T, opts string) *volfile.Volume {
	t.Helper()
	g, err := volfile.Parse([]byte("volume v-client-0\n type protocol/client\n option remote-host h\n option remote-subvolume /b\n" + opts + "end-volume\n"))
	if err != nil {
		t.Fatal(err)
	}
	return g.Top
}

func TestBrickTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca, err := bricktest.TLSFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := " option transport.socket.ssl-own-cert " + cert + "\n option transport.socket.ssl-private-key " + key + "\n option transport.socket.ssl-ca-list " + ca + "\n"

	if c, err := brickTLS(clientXlator(t, files), ""); c != nil || err != nil {
		t.Fatalf("ssl-enabled unset: %v, %v; want no TLS", c, err)
	}
	c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled true\n"+files), "")
	if err != nil || c == nil || c.Files().Cert != cert || c.Files().CA != ca || c.Files().Depth != 1 || c.Files().CRLDir != "" {
		t.Fatalf("ssl-enabled true: %+v, %v", c, err)
	}
	// The CA list's own certificate passes; another self-signed one does
	// not.
	if err := c.TLS().VerifyPeerCertificate([][]byte{pemDER(t, cert)}, nil); err != nil {
		t.Errorf("the CA list's certificate: %v", err)
	}
	other, _, _, err := bricktest.TLSFiles(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.TLS().VerifyPeerCertificate([][]byte{pemDER(t, other)}, nil); !errors.Is(err, tlsconf.ErrUnknownCA) {
		t.Errorf("a certificate outside the CA list: %v", err)
	}

	if c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled On\n"+files+" option transport.socket.ssl-crl-path NULL\n"), ""); err != nil || c == nil || c.Files().CRLDir != "" {
		t.Errorf("ssl-enabled On with crl-path NULL (no list): %v, %v", c, err)
	}
	crls := t.TempDir()
	c, err = brickTLS(clientXlator(t, " option transport.socket.ssl-enabled on\n"+files+" option transport.socket.ssl-crl-path "+crls+"\n option transport.socket.ssl-cert-depth 3\n"), "")
	if err != nil || c.Files().CRLDir != crls || c.Files().Depth != 3 {
		t.Errorf("ssl-crl-path %s: %+v, %v", crls, c, err)
	}
	if c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled OFF\n"+files), ""); c != nil || err != nil {
		t.Errorf("ssl-enabled OFF: %v, %v; want no TLS", c, err)
	}
	// Files the volfile does not name are the host's, in the directory
	// given.
	if c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled on\n"), dir); err != nil || c.Files().Cert != filepath.Join(dir, "glusterfs.pem") {
		t.Errorf("default files in %s: %+v, %v", dir, c, err)
	}
	for _, tc := range []struct{ opts, want string }{
		{" option transport.socket.ssl-enabled on\n option transport.socket.ssl-own-cert /nonexistent/c.pem\n option transport.socket.ssl-private-key " + key + "\n", `^volfile: v-client-0 uses TLS \(client\.ssl\), but this host's certificate /nonexistent/c\.pem .*; install them \(or set ssl\.own-cert`},
		{" option transport.socket.ssl-enabled on\n option transport.socket.ssl-own-cert " + cert + "\n option transport.socket.ssl-private-key " + key + "\n option transport.socket.ssl-ca-list /nonexistent/ca\n", `CA list /nonexistent/ca cannot be read.*ssl\.ca-list`},
		{" option transport.socket.ssl-enabled on\n" + files + " option transport.socket.ssl-crl-path /nonexistent/crl\n", `revocation list directory /nonexistent/crl \(ssl\.crl-path\) cannot be read`},
		{" option transport.socket.ssl-enabled on\n" + files + " option transport.socket.ssl-cert-depth x\n", `ssl-cert-depth "x"`},
	} {
		if _, err := brickTLS(clientXlator(t, tc.opts), ""); err == nil || !regexp.MustCompile(tc.want).MatchString(err.Error()) {
			t.Errorf("%q: %v, want an error matching %q", tc.opts, err, tc.want)
		}
	}
}

func TestGlusterBool(t *testing.T) {
	for v, want := range map[string]bool{"on": true, "ON": true, "Yes": true, "true": true, "enable": true, "1": true,
		"off": false, "OFF": false, "no": false, "0": false, "": false, "maybe": false} {
		if glusterBool(v) != want {
			t.Errorf("glusterBool(%q) = %v", v, !want)
		}
	}
}

func pemDER(t *testing.T, path string) []byte {
	t.Helper()
	c, err := tls.LoadX509KeyPair(path, strings.TrimSuffix(path, ".pem")+".key")
	if err != nil {
		t.Fatal(err)
	}
	return c.Certificate[0]
}

// tlsWorld is a CA, the brick's and glusterd's certificate and this
// host's, each in a directory of glusterfs.pem, glusterfs.key and
// glusterfs.ca, the way a GlusterFS cluster keeps them.
type tlsWorld struct {
	ca             *bricktest.CA
	serverDir      string
	clientDir      string
	server, client *x509.Certificate
}

func newTLSWorld(t *testing.T) *tlsWorld {
	t.Helper()
	ca, err := bricktest.NewCA("cluster CA")
	if err != nil {
		t.Fatal(err)
	}
	w := &tlsWorld{ca: ca, serverDir: t.TempDir(), clientDir: t.TempDir()}
	now := time.Now()
	for _, d := range []struct {
		dir  string
		cn   string
		cert **x509.Certificate
	}{{w.serverDir, "server", &w.server}, {w.clientDir, "client", &w.client}} {
		if _, _, *d.cert, err = ca.Issue(d.dir, "glusterfs", d.cn, now.Add(-time.Hour), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := bricktest.WriteCAList(filepath.Join(d.dir, "glusterfs.ca"), ca); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// serverTLS is a server configuration that presents the server's
// certificate and requires a client certificate signed by one of cas.
func (w *tlsWorld) serverTLS(t *testing.T, cas ...*bricktest.CA) *tls.Config {
	t.Helper()
	kp, err := tls.LoadX509KeyPair(filepath.Join(w.serverDir, "glusterfs.pem"), filepath.Join(w.serverDir, "glusterfs.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.Cert)
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
}

func (w *tlsWorld) clientTLS(t *testing.T, crlDir string) *tlsconf.Config {
	t.Helper()
	f := tlsconf.InDir(w.clientDir)
	f.CRLDir, f.Peer = crlDir, "the brick"
	c, err := tlsconf.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// With management TLS, PORTBYBRICK goes to glusterd over TLS; the brick
// connection follows the volume's own setting.
func TestManagementTLSPortmap(t *testing.T) {
	w := newTLSWorld(t)
	fk := bricktest.New(t, bricktest.Options{GlusterdTLS: w.serverTLS(t, w.ca), BrickTLS: w.serverTLS(t, w.ca)})
	mgmt, err := tlsconf.Management(writeFile(t, "secure-access", ""), w.clientDir)
	if err != nil || mgmt == nil {
		t.Fatalf("management TLS: %v, %v", mgmt, err)
	}
	startClient(t, fk, func(c *Config) { c.MgmtTLS, c.TLS = mgmt, w.clientTLS(t, "") })
	if n := len(fk.Calls()); n < 3 {
		t.Fatalf("%d calls over TLS, want PORTBYBRICK, DUMP and SETVOLUME", n)
	}

	// Without management TLS, a glusterd that has it hangs up: the error
	// says what to do.
	c := New(fastConfig(fk), zaptest.NewLogger(t))
	t.Cleanup(func() { c.Close() })
	c.cfg.TLS = w.clientTLS(t, "")
	err = c.Start(testCtx(t))
	t.Logf("plain PORTBYBRICK to a TLS glusterd: %v", err)
	if err == nil || !regexp.MustCompile(`^brick fake-client-0: glusterd at 127\.0\.0\.1:\d+: .*glusterd hung up: if the servers use management TLS, this host needs it too: create /var/lib/glusterd/secure-access`).MatchString(err.Error()) {
		t.Errorf("plain PORTBYBRICK to a TLS glusterd: %v", err)
	}
}

// The brick's certificate is checked against the volume's revocation list
// directory, read again at every connection; a refusal names the brick and
// says what to do.
func TestBrickCertificateRevoked(t *testing.T) {
	w := newTLSWorld(t)
	fk := bricktest.New(t, bricktest.Options{BrickTLS: w.serverTLS(t, w.ca)})
	crls := t.TempDir()
	crlFile := func() string {
		n, err := tlsconf.CRLFileName(w.ca.Cert.RawSubject, 0)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(crls, n)
	}()
	if err := w.ca.WriteCRL(crlFile, bricktest.CRLOptions{}, w.client); err != nil {
		t.Fatal(err)
	}
	tc := w.clientTLS(t, crls)
	c := startClient(t, fk, func(c *Config) { c.TLS = tc })
	// The list now revokes the brick's certificate too: the next
	// connection is refused, and the error says why.
	if err := w.ca.WriteCRL(crlFile, bricktest.CRLOptions{}, w.client, w.server); err != nil {
		t.Fatal(err)
	}
	c.Kick("test")
	waitFor(t, 5*time.Second, "the reconnect to be refused", func() bool {
		_, _, err := c.current()
		return err != nil && errors.Is(err, tlsconf.ErrRevoked)
	})
	_, _, err := c.current()
	t.Logf("revoked brick: %v", err)
	msg := err.Error()
	for _, re := range []string{`brick fake-client-0 \(127\.0\.0\.1:\d+:/bricks/fake\): connect: `, `the brick's certificate \(CN=server, serial \d+\) was revoked on .* by the revocation list ` + regexp.QuoteMeta(crlFile),
		`give the server a new certificate`} {
		if !regexp.MustCompile(re).MatchString(msg) {
			t.Errorf("error %q does not match %q", msg, re)
		}
	}
}

// A brick that refuses this host's certificate (its CA list lacks this
// host's CA) does so after the TLS 1.3 handshake; the error of the mount
// says so, naming the brick.
func TestBrickRefusesCertificate(t *testing.T) {
	w := newTLSWorld(t)
	other, err := bricktest.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	fk := bricktest.New(t, bricktest.Options{BrickTLS: w.serverTLS(t, other)})
	cfg := fastConfig(fk)
	cfg.TLS = w.clientTLS(t, "")
	c := New(cfg, zaptest.NewLogger(t))
	t.Cleanup(func() { c.Close() })
	err = c.Start(testCtx(t))
	t.Logf("brick refuses this host's CA: %v", err)
	if !errors.Is(err, tlsconf.ErrUnknownCA) {
		t.Fatalf("Start: %v, want ErrUnknownCA", err)
	}
	if !regexp.MustCompile(`^brick fake-client-0 \(127\.0\.0\.1:\d+:/bricks/fake\): the brick does not trust this host's certificate .*glusterfs\.pem \(CN=client, issued by .*cluster CA.*\): .*; add this host's CA to the servers' CA list`).MatchString(err.Error()) {
		t.Errorf("error: %v", err)
	}
	// This host's check of the brick: a CA list without the brick's CA.
	cfg.TLS = (&tlsWorld{clientDir: t.TempDir()}).loadWith(t, w.clientDir, other)
	c2 := New(cfg, zaptest.NewLogger(t))
	t.Cleanup(func() { c2.Close() })
	err = c2.Start(testCtx(t))
	t.Logf("brick outside the CA list: %v", err)
	if !errors.Is(err, tlsconf.ErrUnknownCA) || !strings.Contains(err.Error(), "the brick's certificate (CN=server, issued by") || !strings.Contains(err.Error(), "brick fake-client-0") {
		t.Errorf("a brick outside the CA list: %v", err)
	}
}

// Over TLS a brick's login check is by the certificate's name
// (auth.ssl-allow), not by the volfile's username and password.
func TestTLSAuthFailure(t *testing.T) {
	w := newTLSWorld(t)
	fk := bricktest.New(t, bricktest.Options{BrickTLS: w.serverTLS(t, w.ca), SetVolume: bricktest.RejectAuth})
	cfg := fastConfig(fk)
	cfg.TLS, cfg.Username, cfg.Password = w.clientTLS(t, ""), "u", "p"
	c := New(cfg, zaptest.NewLogger(t))
	t.Cleanup(func() { c.Close() })
	err := c.Start(testCtx(t))
	t.Logf("refused over TLS: %v", err)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("Start: %v, want ErrAuth", err)
	}
	for _, want := range []string{"auth.allow and auth.reject of volume fake must admit this host's address 127.0.0.1",
		`auth.ssl-allow must list this host's certificate name "client"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "username") {
		t.Errorf("error %q blames the username over TLS", err)
	}
}

// loadWith is this host's certificate from certDir with a CA list of cas.
func (w *tlsWorld) loadWith(t *testing.T, certDir string, cas ...*bricktest.CA) *tlsconf.Config {
	t.Helper()
	f := tlsconf.InDir(certDir)
	f.CA, f.Peer = filepath.Join(w.clientDir, "ca-list"), "the brick"
	if err := bricktest.WriteCAList(f.CA, cas...); err != nil {
		t.Fatal(err)
	}
	c, err := tlsconf.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
