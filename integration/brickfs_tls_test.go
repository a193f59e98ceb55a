package integration

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/tlsconf"
)

// TestBrickfsTLS: a replica-3 volume with client.ssl and server.ssl on
// (the bricks speak only TLS and check the client's certificate). brickfs
// mounts it, writes and reads, fails over when a brick is killed and
// reconnects over TLS when it returns; the native client reads the same
// bytes, and the backends match after heal.
func TestBrickfsTLS(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	c := NewCluster(t, 3)
	const vol = "rtls"
	c.CreateVolume(t, vol, Replica3)
	cert, key, ca, err := bricktest.TLSFiles(filepath.Join(c.Dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range [][2]string{
		{"ssl.own-cert", cert}, {"ssl.private-key", key}, {"ssl.ca-list", ca},
		{"auth.ssl-allow", "*"}, {"client.ssl", "on"}, {"server.ssl", "on"},
	} {
		c.Set(t, vol, kv[0], kv[1])
	}
	c.Start(t, vol)
	mnt := c.MountBrickfs(t, c.Spec(vol))
	content := []byte(strings.Repeat("over TLS\n", 1000))
	if err := os.WriteFile(filepath.Join(mnt, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	c.KillBrick(t, vol, 1)
	if err := os.WriteFile(filepath.Join(mnt, "g"), content, 0o644); err != nil {
		t.Fatalf("write with a brick down: %v", err)
	}
	c.RestartBrick(t, vol, 1)
	waitFor(t, 30*time.Second, "brickfs to reconnect to brick 1 over TLS", func() (bool, string) {
		lines := LogLines(c.MountLog(mnt), "brick connected")
		n := 0
		for _, l := range lines {
			if strings.Contains(l, vol+"-client-1") {
				n++
			}
		}
		return n >= 2, ""
	})
	c.WaitHealed(t, vol, []string{"f", "g"}, repHealWait)
	native := c.MountNative(t, vol)
	for _, f := range []string{"f", "g"} {
		c.CheckBackends(t, vol, Replica3, f, mnt, native)
	}
	// A handshake cut by the killed brick (refused, reset, EOF) is
	// expected; one refused by TLS itself (certificate, version, alert)
	// is not.
	for _, l := range LogLines(c.MountLog(mnt), "TLS handshake with") {
		if !cutByPeer.MatchString(l) {
			t.Errorf("TLS refused a handshake: %s", l)
		}
	}
}

// cutByPeer matches a connection error that comes from the peer going
// away rather than from TLS.
var cutByPeer = regexp.MustCompile(`connection reset by peer|connection refused|broken pipe|: EOF`)

// tlsDirs are directories of glusterfs.pem, glusterfs.key and glusterfs.ca
// as hosts keep them: one CA, the servers' certificate, this host's, a
// second valid one for this host, one signed by another CA, and none.
type tlsDirs struct {
	ca                                     *bricktest.CA
	server, client, client2, foreign, none string
	clientCert                             *x509.Certificate
}

func newTLSDirs(t *testing.T) *tlsDirs {
	t.Helper()
	ca, err := bricktest.NewCA("brickfs-it CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := bricktest.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	d := &tlsDirs{ca: ca, server: t.TempDir(), client: t.TempDir(), client2: t.TempDir(), foreign: t.TempDir(), none: t.TempDir()}
	now := time.Now()
	for _, x := range []struct {
		dir, cn string
		by      *bricktest.CA
		cert    **x509.Certificate
	}{{d.server, "server", ca, nil}, {d.client, "client", ca, &d.clientCert}, {d.client2, "client2", ca, nil}, {d.foreign, "foreign", other, nil}} {
		_, _, cert, err := x.by.Issue(x.dir, "glusterfs", x.cn, now.Add(-time.Hour), now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if x.cert != nil {
			*x.cert = cert
		}
		// Every host trusts the cluster's CA.
		if err := bricktest.WriteCAList(filepath.Join(x.dir, "glusterfs.ca"), ca); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// brickfsEnv points brickfs at a secure-access file and a TLS directory
// for the mounts that follow in this test.
func brickfsEnv(t *testing.T, secureAccess, sslDir string) {
	t.Setenv("BRICKFS_SECURE_ACCESS", secureAccess)
	t.Setenv("BRICKFS_SSL_DIR", sslDir)
}

// mountFails runs `brickfs mount` of spec, which must fail with a non-zero
// exit and one line on stderr matching patterns.
func mountFails(t *testing.T, c *Cluster, name, spec string, patterns ...string) {
	t.Helper()
	bin := BrickfsBin(t)
	mnt, log := c.newMountPoint(t, name)
	_, stderr, code := runCmd(t, 2*time.Minute, bin, "mount", "-o", "log-level=debug,log-file="+log+",volfile-cache-dir="+filepath.Join(c.Dir, "volfile-cache-"+name), spec, mnt)
	if code == 0 || mounted(mnt) {
		c.mu.Lock()
		c.mounts[mnt] = mount{kind: brickfsMount, bin: bin}
		c.mu.Unlock()
		t.Fatalf("%s: brickfs mount succeeded", name)
	}
	t.Logf("%s: exit %d: %s", name, code, strings.TrimSpace(stderr))
	oneLine(t, name, stderr, append([]string{`^brickfs: `}, patterns...)...)
}

// TestBrickfsTLSManagement: a glusterd with management TLS on (as with
// /var/lib/glusterd/secure-access; its bricks fetch their volfiles over
// TLS too). brickfs with the secure-access file and this host's
// certificate fetches the volfile, asks for the brick's port and follows
// the volfile over TLS; without the file, without a certificate, or with a
// certificate of another CA, the mount fails with one line saying what to
// do.
func TestBrickfsTLSManagement(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	d := newTLSDirs(t)
	c := NewClusterWith(t, 1, ClusterOptions{ManagementTLS: d.server})
	const vol = "mtls"
	c.CreateVolume(t, vol, Single)
	c.Start(t, vol)
	secure := filepath.Join(t.TempDir(), "secure-access")
	if err := os.WriteFile(secure, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	brickfsEnv(t, filepath.Join(t.TempDir(), "no-secure-access"), d.client)
	mountFails(t, c, "clear", c.Spec(vol), `no volfile server answered`, `glusterd hung up: if the servers use management TLS, this host needs it too: create /var/lib/glusterd/secure-access`)

	brickfsEnv(t, secure, d.none)
	mountFails(t, c, "nocert", c.Spec(vol), `management TLS is on \(`+regexp.QuoteMeta(secure)+` exists\), but this host's certificate `+regexp.QuoteMeta(filepath.Join(d.none, "glusterfs.pem")),
		`install them \(or, if the servers do not use management TLS, remove `+regexp.QuoteMeta(secure)+`\)$`)

	brickfsEnv(t, secure, d.foreign)
	mountFails(t, c, "foreign", c.Spec(vol), `no volfile server accepted the management TLS connection`,
		`glusterd does not trust this host's certificate .*glusterfs\.pem \(CN=foreign, issued by .*another CA`, `add this host's CA to the servers' CA list`)

	brickfsEnv(t, secure, d.client)
	mnt := c.MountBrickfs(t, c.Spec(vol))
	content := []byte(strings.Repeat("managed over TLS\n", 500))
	if err := os.WriteFile(filepath.Join(mnt, "f"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("read back: %d bytes, %v", len(got), err)
	}
	if len(LogLines(c.MountLog(mnt), "management TLS is on")) == 0 {
		t.Error("the mount log does not say management TLS is on")
	}
	// A volume option that changes the client volfile: glusterd tells the
	// follower (FETCHSPEC), which fetches the new volfile over TLS.
	c.Set(t, vol, "performance.write-behind", "off")
	waitFor(t, 60*time.Second, "brickfs to fetch and apply the changed volfile over management TLS", func() (bool, string) {
		return len(LogLines(c.MountLog(mnt), "the volume's volfile changed; applied")) > 0, ""
	})
	for _, l := range LogLines(c.MountLog(mnt), "cannot fetch the volfile") {
		t.Errorf("the follower failed: %s", l)
	}
}

// TestBrickfsTLSRevoked: revocation lists (ssl.crl-path) both ways. The
// bricks refuse this host's certificate when their list revokes it (a TLS
// alert brickfs turns into one line naming the brick); brickfs refuses a
// brick whose certificate the volume's list revokes. Either way the mount
// exits non-zero. Management TLS is on, so that the bricks' certificate
// (OpenSSL's default files, as the glusterd namespace has them) and this
// host's (BRICKFS_SSL_DIR) can differ on one machine.
func TestBrickfsTLSRevoked(t *testing.T) {
	RequireGlusterFS(t)
	RequireFUSE(t)
	BrickfsBin(t)
	d := newTLSDirs(t)
	c := NewClusterWith(t, 1, ClusterOptions{ManagementTLS: d.server})
	secure := filepath.Join(t.TempDir(), "secure-access")
	if err := os.WriteFile(secure, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// crlDir is a hashed CRL directory with the CA's list revoking certs.
	crlDir := func(certs ...*x509.Certificate) string {
		dir := t.TempDir()
		name, err := tlsconf.CRLFileName(d.ca.Cert.RawSubject, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.ca.WriteCRL(filepath.Join(dir, name), bricktest.CRLOptions{}, certs...); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tlsVolume := func(vol string, opts ...[2]string) {
		c.CreateVolume(t, vol, Single)
		for _, kv := range append([][2]string{{"auth.ssl-allow", "*"}, {"client.ssl", "on"}, {"server.ssl", "on"}}, opts...) {
			c.Set(t, vol, kv[0], kv[1])
		}
		c.Start(t, vol)
	}

	t.Run("ClientRevokedByBricks", func(t *testing.T) {
		const vol = "crlc"
		tlsVolume(vol, [2]string{"ssl.crl-path", crlDir(d.clientCert)})
		brickfsEnv(t, secure, d.client)
		mountFails(t, c, "revoked", c.Spec(vol), vol+`-client-0`,
			`the brick refused this host's certificate .*glusterfs\.pem \(CN=client, serial `+d.clientCert.SerialNumber.String()+`\): a revocation list of the server \(ssl\.crl-path\) revokes it`,
			`install a new certificate and key for this host$`)
		// Another certificate of this host, not revoked: mounts.
		brickfsEnv(t, secure, d.client2)
		mnt := c.MountBrickfs(t, c.Spec(vol))
		if err := os.WriteFile(filepath.Join(mnt, "f"), []byte("not revoked"), 0o644); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("BrickRevokedHere", func(t *testing.T) {
		const vol = "crlb"
		now := time.Now()
		dir := t.TempDir()
		cert, key, revoked, err := d.ca.Issue(dir, "brick", "revoked-brick", now.Add(-time.Hour), now.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		crls := crlDir(revoked)
		tlsVolume(vol, [2]string{"ssl.own-cert", cert}, [2]string{"ssl.private-key", key},
			[2]string{"ssl.ca-list", filepath.Join(d.server, "glusterfs.ca")}, [2]string{"ssl.crl-path", crls})
		brickfsEnv(t, secure, d.client)
		name, _ := tlsconf.CRLFileName(d.ca.Cert.RawSubject, 0)
		mountFails(t, c, "brick-revoked", c.Spec(vol), vol+`-client-0`,
			`the brick's certificate \(CN=revoked-brick, serial `+revoked.SerialNumber.String()+`\) was revoked on .* by the revocation list `+regexp.QuoteMeta(filepath.Join(crls, name)),
			`give the server a new certificate, or take the revocation out of that list$`)
	})
}
