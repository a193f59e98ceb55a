package brick

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/brickfs/brickfs/brick/volfile"
)

// GlusterFS's default TLS files (rpc/rpc-transport/socket/src/socket.c),
// used when the volume does not set ssl.own-cert, ssl.private-key or
// ssl.ca-list.
const (
	defaultOwnCert = "/etc/ssl/glusterfs.pem"
	defaultKey     = "/etc/ssl/glusterfs.key"
	defaultCAList  = "/etc/ssl/glusterfs.ca"
)

// brickTLS builds the TLS configuration of a protocol/client translator
// whose transport.socket.ssl-enabled is on, as the native client's socket
// transport uses it: this host's certificate and key are presented to the
// brick (which checks the name against auth.ssl-allow), and the brick's
// certificate must chain to the CA list. As in GlusterFS, no host name is
// checked: the bricks of a cluster usually share one self-signed list. It
// returns nil for a translator without TLS.
func brickTLS(cl *volfile.Volume) (*tls.Config, error) {
	on, _ := cl.Option("transport.socket.ssl-enabled")
	if !glusterBool(on) {
		return nil, nil
	}
	opt := func(key, def string) string {
		if v, ok := cl.Option("transport.socket." + key); ok && v != "" {
			return v
		}
		return def
	}
	certFile, keyFile, caFile := opt("ssl-own-cert", defaultOwnCert), opt("ssl-private-key", defaultKey), opt("ssl-ca-list", defaultCAList)
	depth := 1 // socket.c's default ssl-cert-depth
	if d, ok := cl.Option("transport.socket.ssl-cert-depth"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("volfile: %s has ssl-cert-depth %q, not a depth; fix ssl.cert-depth on the volume", cl.Name, d)
		}
		depth = n
	}
	if crl, ok := cl.Option("transport.socket.ssl-crl-path"); ok && crl != "" && !strings.EqualFold(crl, "NULL") {
		return nil, fmt.Errorf("volfile: %s checks certificates against a revocation list (ssl.crl-path %s), which brickfs does not support; unset ssl.crl-path, or use GlusterFS's own client (its helper is /sbin/mount.glusterfs.distrib while brickfs stands in for mount.glusterfs)", cl.Name, crl)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("volfile: %s uses TLS, but this host's certificate %s and key %s cannot be used (%v); install them (or set ssl.own-cert and ssl.private-key on the volume)", cl.Name, certFile, keyFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("volfile: %s uses TLS, but the CA list %s cannot be read (%v); install it (or set ssl.ca-list on the volume)", cl.Name, caFile, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("volfile: %s uses TLS, but the CA list %s holds no PEM certificate", cl.Name, caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		// Verified below against the CA list, without a host name.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, roots, depth)
		},
	}, nil
}

// verifyChain checks that the peer's certificate chains, for any purpose
// and any host name, to a self-signed certificate of roots with at most
// depth certificates between them, as OpenSSL verifies it for GlusterFS
// (SSL_CTX_set_verify_depth, no partial chains): a certificate of the CA
// list that is not self-signed is no anchor.
func verifyChain(raw [][]byte, roots *x509.CertPool, depth int) error {
	if len(raw) == 0 {
		return errors.New("the brick sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("the brick's certificate cannot be parsed: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("the brick's certificate (%s) is not signed by the CA list: %w", certs[0].Subject, err)
	}
	for _, ch := range chains {
		anchor := ch[len(ch)-1]
		if len(ch)-2 <= depth && selfSigned(anchor) {
			return nil
		}
	}
	return fmt.Errorf("the brick's certificate (%s) chains to the CA list only through more than %d intermediate certificates or a CA-list certificate that is not self-signed; raise ssl.cert-depth or put the root certificate in ssl.ca-list", certs[0].Subject, depth)
}

// selfSigned reports whether c is its own issuer and signer.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// glusterBool reads a boolean option as gf_string2boolean does: on, yes,
// true, enable and 1 in any case are true; anything else is false.
func glusterBool(v string) bool {
	for _, t := range []string{"on", "yes", "true", "enable", "1"} {
		if strings.EqualFold(v, t) {
			return true
		}
	}
	return false
}
