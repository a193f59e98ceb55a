package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
)

// X509_NAME_hash of names OpenSSL 3.0 computed (`openssl x509 -hash` of a
// certificate with that subject): string types rewritten (case, spaces,
// Latin-1, BMP, Universal), a multi-valued RDN re-sorted, a NumericString
// kept as it is, the empty name.
var nameHashes = []struct{ name, der, hash string }{
	{"printable", "3017311530130603550403130c627269636b66732d74657374", "a5b67f6a"},
	{"utf8-case-spaces", "303a311f301d060355040a0c1620204578616d706c65202020436f727009204c7464203117301506035504030c0e427269636b204653202054657374", "c929486d"},
	{"multi-valued", "301d311b300b060355040a13045a657461300c06035504031305416c706861", "94184468"},
	{"bmp", "301b3119301706035504031e100047007200f600df0065002000430041", "b05dd19a"},
	{"ia5-email", "30223120301e06092a864886f70d010901161141646d696e404578616d706c652e434f4d", "8fa7d0f5"},
	{"universal", "302731253023060355040b1c1c000000550000006e000000690000007400000020000000c400000042", "2e65f6fb"},
	{"utf8-nonascii-upper", "30163114301206035504030c0bc389434f4c452020537570", "ae909dbd"},
	{"t61-latin1", "30143112301006035504031409436166e920524f4f54", "7e87976b"},
	{"numeric-kept", "3021311330110603550405120a20303031322020333420310a30080603550403130158", "58333a48"},
	{"empty", "3000", "eea339da"},
}

func TestNameHash(t *testing.T) {
	for _, tc := range nameHashes {
		der, _ := hex.DecodeString(tc.der)
		h, err := NameHash(der)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := fmt.Sprintf("%08x", h); got != tc.hash {
			t.Errorf("%s: hash %s, OpenSSL's is %s", tc.name, got, tc.hash)
		}
	}
	if _, err := NameHash([]byte{0x30, 0x05, 1}); err == nil {
		t.Error("a truncated name hashed")
	}
	der, _ := hex.DecodeString(nameHashes[0].der)
	if n, _ := CRLFileName(der, 2); n != "a5b67f6a.r2" {
		t.Errorf("CRLFileName: %s", n)
	}
}

// pki is a CA with a certificate for the server and one for this host,
// and a Config for this host that trusts the CA.
type pki struct {
	dir            string
	ca             *bricktest.CA
	server, client *x509.Certificate
	files          Files
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	ca, err := bricktest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	p := &pki{dir: dir, ca: ca}
	now := time.Now()
	if _, _, p.server, err = ca.Issue(dir, "server", "server", now.Add(-time.Hour), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	cert, key, client, err := ca.Issue(dir, "glusterfs", "client", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p.client = client
	if err := bricktest.WriteCAList(filepath.Join(dir, "glusterfs.ca"), ca); err != nil {
		t.Fatal(err)
	}
	p.files = Files{Cert: cert, Key: key, CA: filepath.Join(dir, "glusterfs.ca"), Depth: 1}
	return p
}

func (p *pki) load(t *testing.T) *Config {
	t.Helper()
	c, err := Load(p.files)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// crlPath is where OpenSSL looks for the k-th revocation list of ca.
func crlPath(t *testing.T, dir string, ca *bricktest.CA, k int) string {
	t.Helper()
	n, err := CRLFileName(ca.Cert.RawSubject, k)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, n)
}

// wantError checks err is an *Error wrapping reason whose one-line text
// matches every pattern.
func wantError(t *testing.T, what string, err error, reason error, patterns ...string) {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Errorf("%s: %v (%T), want a *tlsconf.Error", what, err, err)
		return
	}
	if reason != nil && !errors.Is(err, reason) {
		t.Errorf("%s: %v does not wrap %v", what, err, reason)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("%s: message has several lines: %q", what, msg)
	}
	for _, p := range patterns {
		if !regexp.MustCompile(p).MatchString(msg) {
			t.Errorf("%s: %q does not match %q", what, msg, p)
		}
	}
}

func TestLoadRefusesUnusableFiles(t *testing.T) {
	p := newPKI(t)
	expCert, expKey, _, err := p.ca.Issue(p.dir, "expired", "client", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(p.dir, "junk")
	os.WriteFile(junk, []byte("not a certificate\n"), 0o644)
	badCRLs := t.TempDir()
	os.WriteFile(crlPath(t, badCRLs, p.ca, 0), []byte("garbage"), 0o644)
	for _, tc := range []struct {
		name     string
		edit     func(f *Files)
		reason   error
		patterns []string
	}{
		{"missing certificate", func(f *Files) { f.Cert = "/nonexistent/glusterfs.pem" }, nil, []string{`/nonexistent/glusterfs\.pem`, `install them \(or set ssl\.own-cert\)`}},
		{"expired certificate", func(f *Files) { f.Cert, f.Key = expCert, expKey }, ErrExpired, []string{`this host's certificate .*expired\.pem .*expired on \d{4}-\d\d-\d\d`, `renew it`}},
		{"missing CA list", func(f *Files) { f.CA = "/nonexistent/ca" }, nil, []string{`CA list /nonexistent/ca cannot be read`, `install it`}},
		{"CA list without certificates", func(f *Files) { f.CA = junk }, nil, []string{`holds no PEM certificate`}},
		{"missing CRL directory", func(f *Files) { f.CRLDir = "/nonexistent/crl" }, ErrCRL, []string{`revocation list directory /nonexistent/crl \(ssl\.crl-path\) cannot be read`, `create it .*or unset ssl\.crl-path`}},
		{"unparsable CRL", func(f *Files) { f.CRLDir = badCRLs }, ErrCRL, []string{`revocation list .*\.r0 cannot be parsed`, `replace it`}},
	} {
		f := p.files
		f.Hint = "or set ssl.own-cert"
		tc.edit(&f)
		_, err := Load(f)
		wantError(t, tc.name, err, tc.reason, tc.patterns...)
	}
	// Files that do not look like a hashed directory's lists are not
	// read: OpenSSL never looks at them.
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "README"), []byte("garbage"), 0o644)
	os.WriteFile(filepath.Join(other, "a5b67f6a.0"), []byte("garbage"), 0o644)
	f := p.files
	f.CRLDir = other
	if _, err := Load(f); err != nil {
		t.Errorf("a CRL directory with no list files: %v", err)
	}
}

func TestVerifyServerCertificate(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	other, err := bricktest.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	_, _, foreign, err := other.Issue(p.dir, "foreign", "server", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, _, expired, err := p.ca.Issue(p.dir, "old", "server", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, _, future, err := p.ca.Issue(p.dir, "future", "server", now.Add(24*time.Hour), now.Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := p.load(t)
	if err := c.verify([][]byte{p.server.Raw}, now); err != nil {
		t.Errorf("the CA's certificate: %v", err)
	}
	wantError(t, "another CA's certificate", c.verify([][]byte{foreign.Raw}, now), ErrUnknownCA,
		`not signed by any certificate of the CA list .*glusterfs\.ca`, `issued by .*other CA`, `add the server's CA`)
	wantError(t, "an expired certificate", c.verify([][]byte{expired.Raw}, now), ErrExpired,
		`the server's certificate \(CN=server\) expired on `+regexp.QuoteMeta(date(expired.NotAfter)), `renew it on the server`)
	wantError(t, "a certificate not valid yet", c.verify([][]byte{future.Raw}, now), ErrExpired, `not valid until`, `clocks`)
	wantError(t, "junk", c.verify([][]byte{[]byte("junk")}, now), nil, `cannot be parsed`)
	wantError(t, "no certificate", c.verify(nil, now), ErrRefused, `sent no TLS certificate`)
}

func TestRevocation(t *testing.T) {
	p := newPKI(t)
	crls := t.TempDir()
	p.files.CRLDir = crls
	c := p.load(t) // an empty directory: nothing revoked
	now := time.Now()
	if err := c.verify([][]byte{p.server.Raw}, now); err != nil {
		t.Fatalf("no list yet: %v", err)
	}
	// A list revoking another certificate: the server's passes.
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 0), bricktest.CRLOptions{}, p.client); err != nil {
		t.Fatal(err)
	}
	if err := c.verify([][]byte{p.server.Raw}, now); err != nil {
		t.Fatalf("a list that revokes another certificate: %v", err)
	}
	// The list updated to revoke the server's: read again at the next
	// connection, without a new Config.
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 0), bricktest.CRLOptions{}, p.client, p.server); err != nil {
		t.Fatal(err)
	}
	wantError(t, "revoked (PEM)", c.verify([][]byte{p.server.Raw}, now), ErrRevoked,
		`the server's certificate \(CN=server, serial `+p.server.SerialNumber.String()+`\) was revoked on .* by the revocation list .*\.r0 of .*test CA`,
		`give the server a new certificate`)
	// DER, in the second file of the issuer; r0 holds an older list that
	// does not revoke it: the newest list counts.
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 0), bricktest.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 1), bricktest.CRLOptions{DER: true}, p.server); err != nil {
		t.Fatal(err)
	}
	wantError(t, "revoked (DER, .r1)", c.verify([][]byte{p.server.Raw}, now), ErrRevoked, `\.r1 of`)
	// ... and when the older list is the one that revokes, it does not.
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 0), bricktest.CRLOptions{ThisUpdate: now.Add(-2 * time.Hour)}, p.server); err != nil {
		t.Fatal(err)
	}
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 1), bricktest.CRLOptions{DER: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.verify([][]byte{p.server.Raw}, now); err != nil {
		t.Errorf("revoked only by an older list: %v", err)
	}
	if err := p.ca.WriteCRL(crlPath(t, crls, p.ca, 1), bricktest.CRLOptions{DER: true}, p.server); err != nil {
		t.Fatal(err)
	}
	// r1 is not read when r0 is missing (by_dir stops at the first gap).
	os.Remove(crlPath(t, crls, p.ca, 0))
	if err := c.verify([][]byte{p.server.Raw}, now); err != nil {
		t.Errorf("a list after a gap was read: %v", err)
	}
	// A list in the issuer's name that another key signed: refused.
	impostor, err := bricktest.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	if err := impostor.WriteCRL(crlPath(t, crls, p.ca, 0), bricktest.CRLOptions{}); err != nil {
		t.Fatal(err)
	}
	// Beside the CA's own list (r1, which revokes): that one counts (a
	// key rolled over, the old key's list left in place).
	wantError(t, "another key's list beside the CA's own", c.verify([][]byte{p.server.Raw}, now), ErrRevoked, `\.r1 of`)
	// Alone: refused.
	os.Remove(crlPath(t, crls, p.ca, 1))
	wantError(t, "a list signed by another key", c.verify([][]byte{p.server.Raw}, now), ErrCRL,
		`revocation list .*\.r0 names .*test CA.* as its issuer but is not signed by it`)
	// A list file that went bad, and the directory gone: refused.
	os.WriteFile(crlPath(t, crls, p.ca, 0), []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), 0o644)
	wantError(t, "a broken list", c.verify([][]byte{p.server.Raw}, now), ErrCRL, `cannot be parsed`)
	os.RemoveAll(crls)
	wantError(t, "the directory gone", c.verify([][]byte{p.server.Raw}, now), ErrCRL, `directory .* cannot be read`)
}

// An intermediate CA revoked by the root's list takes its certificates
// with it (X509_V_FLAG_CRL_CHECK_ALL); the anchor is not checked.
func TestRevokedIntermediate(t *testing.T) {
	root, rootKey := testCA(t, "root", nil, nil, true)
	mid, midKey := testCA(t, "mid", root, rootKey, true)
	leaf, _ := testCA(t, "leaf", mid, midKey, false)
	p := newPKI(t)
	os.WriteFile(p.files.CA, pemCert(root), 0o644)
	crls := t.TempDir()
	p.files.CRLDir = crls
	c := p.load(t)
	chain := [][]byte{leaf.Raw, mid.Raw}
	if err := c.verify(chain, time.Now()); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	rootCA := &bricktest.CA{Cert: root, Key: rootKey}
	if err := rootCA.WriteCRL(crlPath(t, crls, rootCA, 0), bricktest.CRLOptions{}, mid, root); err != nil {
		t.Fatal(err)
	}
	wantError(t, "revoked intermediate", c.verify(chain, time.Now()), ErrRevoked, `CA certificate in the server's chain \(CN=mid`)
	if err := c.verify([][]byte{root.Raw}, time.Now()); err != nil {
		t.Errorf("the anchor itself was checked against its own list: %v", err)
	}
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
		c := &Config{files: Files{CA: "ca", Depth: tc.depth}, roots: tc.roots}
		_, err := c.verifyChain(tc.chain, time.Now())
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestManagement(t *testing.T) {
	p := newPKI(t)
	dir := filepath.Dir(p.files.Cert) // glusterfs.pem, .key, .ca
	secure := filepath.Join(t.TempDir(), "secure-access")
	if c, err := Management(secure, dir); c != nil || err != nil {
		t.Fatalf("no secure-access file: %v, %v; want management TLS off", c, err)
	}
	os.WriteFile(secure, nil, 0o644)
	c, err := Management(secure, dir)
	if err != nil || c == nil {
		t.Fatalf("secure-access present: %v, %v", c, err)
	}
	if c.SecureAccess() != secure {
		t.Errorf("SecureAccess %q, want %q", c.SecureAccess(), secure)
	}
	if f := c.Files(); f.Cert != filepath.Join(dir, "glusterfs.pem") || f.CA != filepath.Join(dir, "glusterfs.ca") || f.Depth != 1 || f.CRLDir != "" {
		t.Errorf("files %+v", f)
	}
	os.WriteFile(secure, []byte("# tuned\noption transport.socket.ssl-cert-depth 3\n"), 0o644)
	if c, _ := Management(secure, dir); c == nil || c.Files().Depth != 3 {
		t.Errorf("depth from the file: %+v", c)
	}
	_, err = Management(secure, t.TempDir())
	wantError(t, "secure-access without certificates", err, nil,
		`^management TLS is on \(`+regexp.QuoteMeta(secure)+` exists\), but this host's certificate .*glusterfs\.pem`,
		`install them \(or, if the servers do not use management TLS, remove `+regexp.QuoteMeta(secure)+`\)`)
}

func TestSecureAccessDepth(t *testing.T) {
	for body, want := range map[string]int{
		"": 1,
		"option transport.socket.ssl-cert-depth 2\n":                                              2,
		"option transport.socket.ssl-cert-depth   5 # x\n":                                        5,
		"option transport.socket.ssl-cert-depth 0\n":                                              1,
		"option transport.socket.ssl-cert-depth -2\n":                                             1,
		"option transport.socket.ssl-cert-depth deep\n":                                           1,
		" option transport.socket.ssl-cert-depth 4\n":                                             1, // anchored at the line's start
		"x\noption transport.socket.ssl-cert-depth 7\noption transport.socket.ssl-cert-depth 8\n": 7,
	} {
		f := filepath.Join(t.TempDir(), "secure-access")
		os.WriteFile(f, []byte(body), 0o644)
		if got := secureAccessDepth(f); got != want {
			t.Errorf("%q: depth %d, want %d", body, got, want)
		}
	}
	if got := secureAccessDepth("/nonexistent"); got != 1 {
		t.Errorf("unreadable file: depth %d", got)
	}
}

func TestDefaultDir(t *testing.T) {
	defer func(d []string) { openSSLDirs = d }(openSSLDirs)
	a, b := t.TempDir(), t.TempDir()
	openSSLDirs = []string{"/nonexistent", a, b}
	if got := DefaultDir(); got != a {
		t.Errorf("no glusterfs.pem anywhere: %s, want the first directory that exists (%s)", got, a)
	}
	os.WriteFile(filepath.Join(b, "glusterfs.pem"), nil, 0o644)
	if got := DefaultDir(); got != b {
		t.Errorf("glusterfs.pem in %s: got %s", b, got)
	}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// testCA makes a certificate signed by parent (self-signed when parent
// is nil).
func testCA(t *testing.T, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, ca bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: ca, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
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
