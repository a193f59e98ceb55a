package brick

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
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

	if c, err := brickTLS(clientXlator(t, files)); c != nil || err != nil {
		t.Fatalf("ssl-enabled unset: %v, %v; want no TLS", c, err)
	}
	c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled true\n"+files))
	if err != nil || c == nil || len(c.Certificates) != 1 {
		t.Fatalf("ssl-enabled true: %v, %v", c, err)
	}
	// The CA list's own certificate passes; another self-signed one,
	// or garbage, does not.
	pemBytes, _ := os.ReadFile(cert)
	blk, _ := pem.Decode(pemBytes)
	if err := c.VerifyPeerCertificate([][]byte{blk.Bytes}, nil); err != nil {
		t.Errorf("the CA list's certificate: %v", err)
	}
	other, _, _, err := bricktest.TLSFiles(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, _ = os.ReadFile(other)
	blk, _ = pem.Decode(pemBytes)
	if err := c.VerifyPeerCertificate([][]byte{blk.Bytes}, nil); err == nil || !strings.Contains(err.Error(), "not signed by the CA list") {
		t.Errorf("a certificate outside the CA list: %v", err)
	}
	if err := c.VerifyPeerCertificate([][]byte{[]byte("junk")}, nil); err == nil {
		t.Error("junk accepted as a certificate")
	}
	if err := c.VerifyPeerCertificate(nil, nil); err == nil {
		t.Error("no certificate accepted")
	}

	if c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled On\n"+files+" option transport.socket.ssl-crl-path NULL\n")); err != nil || c == nil {
		t.Errorf("ssl-enabled On with crl-path NULL (no list): %v, %v", c, err)
	}
	if c, err := brickTLS(clientXlator(t, " option transport.socket.ssl-enabled OFF\n"+files)); c != nil || err != nil {
		t.Errorf("ssl-enabled OFF: %v, %v; want no TLS", c, err)
	}
	for _, tc := range []struct{ opts, want string }{
		{" option transport.socket.ssl-enabled on\n option transport.socket.ssl-own-cert /nonexistent/c.pem\n option transport.socket.ssl-private-key " + key + "\n", "/nonexistent/c.pem"},
		{" option transport.socket.ssl-enabled on\n option transport.socket.ssl-own-cert " + cert + "\n option transport.socket.ssl-private-key " + key + "\n option transport.socket.ssl-ca-list /nonexistent/ca\n", "ssl.ca-list"},
		{" option transport.socket.ssl-enabled on\n" + files + " option transport.socket.ssl-crl-path /etc/crl\n", "revocation"},
	} {
		if _, err := brickTLS(clientXlator(t, tc.opts)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error mentioning %q", tc.opts, err, tc.want)
		}
	}
}

// testCA makes a certificate signed by parent (self-signed when parent
// is nil).
func testCA(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	if parent == nil {
		parent, parentKey = tmpl, k
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

// The chain rules OpenSSL applies for GlusterFS: at most ssl-cert-depth
// intermediates (default 1), and the anchor in the CA list must be
// self-signed.
func TestVerifyChainDepthAndAnchor(t *testing.T) {
	root, rootKey := testCA(t, "root", nil, nil, true)
	i1, i1Key := testCA(t, "i1", root, rootKey, true)
	i2, i2Key := testCA(t, "i2", i1, i1Key, true)
	leaf0, _ := testCA(t, "leaf0", root, rootKey, false)
	leaf1, _ := testCA(t, "leaf1", i1, i1Key, false)
	leaf2, _ := testCA(t, "leaf2", i2, i2Key, false)
	pool := func(cs ...*x509.Certificate) *x509.CertPool {
		p := x509.NewCertPool()
		for _, c := range cs {
			p.AddCert(c)
		}
		return p
	}
	raw := func(cs ...*x509.Certificate) [][]byte {
		var out [][]byte
		for _, c := range cs {
			out = append(out, c.Raw)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		chain [][]byte
		roots *x509.CertPool
		depth int
		ok    bool
	}{
		{"leaf under the root", raw(leaf0), pool(root), 1, true},
		{"one intermediate, depth 1", raw(leaf1, i1), pool(root), 1, true},
		{"two intermediates, depth 1", raw(leaf2, i2, i1), pool(root), 1, false},
		{"two intermediates, depth 2", raw(leaf2, i2, i1), pool(root), 2, true},
		{"an intermediate as the only anchor", raw(leaf1), pool(i1), 1, false},
		{"a self-signed leaf in the list", raw(root), pool(root), 1, true},
		{"another root", raw(leaf0), pool(i1), 1, false},
	} {
		err := verifyChain(tc.chain, tc.roots, tc.depth)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
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
