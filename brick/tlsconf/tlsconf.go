package tlsconf

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SecureAccessFile turns management TLS on for every GlusterFS process of
// the host when it exists (SECURE_ACCESS_FILE,
// libglusterfs/src/glusterfs/glusterfs.h). It is GLUSTERD_DEFAULT_WORKDIR,
// fixed when GlusterFS is built, not the working-directory a glusterd is
// started with.
const SecureAccessFile = "/var/lib/glusterd/secure-access"

// DefaultDepth is socket.c's default ssl-cert-depth.
const DefaultDepth = 1

// openSSLDirs are the OPENSSLDIRs GlusterFS's packages are built against,
// in the order DefaultDir tries them.
var openSSLDirs = []string{"/usr/lib/ssl", "/etc/pki/tls", "/etc/ssl"}

// DefaultDir is the directory of this host's glusterfs.pem, glusterfs.key
// and glusterfs.ca when nothing names them: the first OpenSSL directory
// that holds glusterfs.pem, else the first that exists, else /etc/ssl.
func DefaultDir() string {
	for _, d := range openSSLDirs {
		if _, err := os.Stat(filepath.Join(d, "glusterfs.pem")); err == nil {
			return d
		}
	}
	for _, d := range openSSLDirs {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return "/etc/ssl"
}

// OpenSSLDirs lists the directories DefaultDir looks in.
func OpenSSLDirs() []string { return append([]string(nil), openSSLDirs...) }

// Files says where one connection's TLS material is and how deep the
// server's chain may be, as the socket transport's options name them.
type Files struct {
	Cert   string // transport.socket.ssl-own-cert
	Key    string // transport.socket.ssl-private-key
	CA     string // transport.socket.ssl-ca-list
	CRLDir string // transport.socket.ssl-crl-path; "" for none
	// Depth is transport.socket.ssl-cert-depth: how many intermediate
	// certificates may stand between the server's and the CA list's.
	Depth int
	// Hint is added to the fix of a problem with these files, e.g. "or
	// set ssl.own-cert on the volume".
	Hint string
	// Peer is how messages name the server: "the brick", "glusterd";
	// "" means "the server".
	Peer string
}

// InDir returns the default files of dir: glusterfs.pem, glusterfs.key and
// glusterfs.ca, depth 1, no revocation lists.
func InDir(dir string) Files {
	return Files{
		Cert:  filepath.Join(dir, "glusterfs.pem"),
		Key:   filepath.Join(dir, "glusterfs.key"),
		CA:    filepath.Join(dir, "glusterfs.ca"),
		Depth: DefaultDepth,
	}
}

// Config is a client TLS setup made from Files by Load.
type Config struct {
	files  Files
	own    *x509.Certificate // this host's certificate, for messages
	roots  *x509.CertPool
	tls    *tls.Config
	secure string // the secure-access file, for a Config made by Management
}

// Load reads f and returns the TLS configuration of a client connection:
// this host's certificate and key, the server's certificate checked
// against the CA list (and the revocation lists, read again at each
// connection). It refuses a certificate of this host that has expired or
// is not valid yet, since every server would refuse it.
func Load(f Files) (*Config, error) {
	if f.Depth < 0 {
		f.Depth = DefaultDepth
	}
	kp, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, &Error{What: fmt.Sprintf("this host's certificate %s and key %s cannot be used (%v)", f.Cert, f.Key, err),
			Fix: hinted("install them", f.Hint), Err: err}
	}
	own, err := x509.ParseCertificate(kp.Certificate[0])
	if err != nil {
		return nil, &Error{What: fmt.Sprintf("this host's certificate %s cannot be parsed (%v)", f.Cert, err), Fix: hinted("replace it", f.Hint), Err: err}
	}
	if now := time.Now(); now.After(own.NotAfter) {
		return nil, &Error{What: fmt.Sprintf("this host's certificate %s (%s) expired on %s", f.Cert, own.Subject, date(own.NotAfter)),
			Fix: hinted("renew it", f.Hint), Err: ErrExpired}
	} else if now.Before(own.NotBefore) {
		return nil, &Error{What: fmt.Sprintf("this host's certificate %s (%s) is not valid until %s", f.Cert, own.Subject, date(own.NotBefore)),
			Fix: "check this host's clock, or install a certificate valid now"}
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, &Error{What: fmt.Sprintf("the CA list %s cannot be read (%v)", f.CA, err), Fix: hinted("install it", f.Hint), Err: err}
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, &Error{What: fmt.Sprintf("the CA list %s holds no PEM certificate", f.CA), Fix: hinted("install the CA certificates there", f.Hint)}
	}
	if f.CRLDir != "" {
		if err := checkCRLDir(f.CRLDir); err != nil {
			return nil, err
		}
	}
	c := &Config{files: f, own: own, roots: roots}
	c.tls = &tls.Config{
		// GetClientCertificate rather than Certificates: the server's
		// request names acceptable CAs, and Go would send no
		// certificate to a server whose list leaves ours out; OpenSSL
		// sends its own anyway and lets the server decide, and so does
		// this.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &kp, nil },
		MinVersion:           tls.VersionTLS12,
		// Verified by verify, against the CA list, without a host name.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return c.verify(raw, time.Now())
		},
	}
	return c, nil
}

// TLS is the configuration to dial with; nil for a nil Config, which
// stands for no TLS.
func (c *Config) TLS() *tls.Config {
	if c == nil {
		return nil
	}
	return c.tls
}

// Files are the files c was made from.
func (c *Config) Files() Files { return c.files }

// Management returns the TLS configuration of this host's connections to
// glusterd (volfile fetch and follow, PORTBYBRICK) when secureAccess
// exists, or nil when it does not, as glusterfsd's main and
// glusterfs_mgmt_init decide it: the certificate, key and CA list are dir's
// glusterfs.pem, glusterfs.key and glusterfs.ca, and the depth is the
// file's "option transport.socket.ssl-cert-depth N" line, 1 without one
// (glusterfs_read_secure_access_file). Revocation lists are not used on
// management connections.
func Management(secureAccess, dir string) (*Config, error) {
	if _, err := os.Stat(secureAccess); err != nil {
		return nil, nil // access(F_OK) failed: management TLS is off
	}
	f := InDir(dir)
	f.Depth = secureAccessDepth(secureAccess)
	f.Peer = "glusterd"
	f.Hint = fmt.Sprintf("or, if the servers do not use management TLS, remove %s", secureAccess)
	c, err := Load(f)
	if err != nil {
		var te *Error
		if errors.As(err, &te) {
			return nil, &Error{What: fmt.Sprintf("management TLS is on (%s exists), but %s", secureAccess, te.What), Fix: te.Fix, Err: te.Err}
		}
		return nil, err
	}
	c.secure = secureAccess
	return c, nil
}

// SecureAccess is the file whose existence turned management TLS on, for
// a Config made by Management; "" otherwise.
func (c *Config) SecureAccess() string {
	if c == nil {
		return ""
	}
	return c.secure
}

// secureAccessDepth reads the certificate depth from the secure-access file
// as glusterfs_read_secure_access_file (libglusterfs/src/graph.c) does: the
// number after the first line starting "option
// transport.socket.ssl-cert-depth"; 0, a missing number, a missing line or
// an unreadable file mean 1.
func secureAccessDepth(path string) int {
	const key = "option transport.socket.ssl-cert-depth"
	f, err := os.Open(path)
	if err != nil {
		return DefaultDepth
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), key)
		if !ok {
			continue
		}
		n := atoi(rest)
		if n <= 0 {
			// atoi of garbage is 0, which GlusterFS takes as the
			// default; a negative depth would refuse every chain.
			return DefaultDepth
		}
		return n
	}
	return DefaultDepth
}

// atoi is C's atoi: leading blanks, a sign, the digits that follow.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(s[:end])
	return n
}

func hinted(fix, hint string) string {
	if hint == "" {
		return fix
	}
	return fix + " (" + hint + ")"
}

// date formats a certificate time for a message.
func date(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }

// CommonName is the common name of this host's certificate: what a brick
// checks against auth.ssl-allow.
func (c *Config) CommonName() string {
	if c == nil {
		return ""
	}
	return c.own.Subject.CommonName
}
