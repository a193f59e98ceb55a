package tlsconf

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"
)

// verify checks the server's certificate chain as OpenSSL checks it for
// GlusterFS (SSL_VERIFY_PEER, X509_PURPOSE_ANY, SSL_CTX_set_verify_depth,
// no host name), then against the revocation lists when there are any.
func (c *Config) verify(raw [][]byte, now time.Time) error {
	chain, err := c.verifyChain(raw, now)
	if err != nil {
		return err
	}
	if c.files.CRLDir != "" {
		return checkRevoked(c.files.CRLDir, chain, c.peer())
	}
	return nil
}

// verifyChain returns a chain from the server's certificate to a
// self-signed certificate of the CA list with at most Depth certificates
// between them (a certificate of the CA list that is not self-signed is no
// anchor: OpenSSL accepts no partial chains).
func (c *Config) verifyChain(raw [][]byte, now time.Time) ([]*x509.Certificate, error) {
	if len(raw) == 0 {
		return nil, &Error{What: c.peer() + " sent no TLS certificate", Fix: "give the server a certificate (glusterfs.pem, or the volume's ssl.own-cert)", Err: ErrRefused}
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		cert, err := x509.ParseCertificate(b)
		if err != nil {
			return nil, &Error{What: fmt.Sprintf("%s's certificate cannot be parsed (%v)", c.peer(), err), Fix: "give the server a valid certificate", Err: err}
		}
		certs[i] = cert
	}
	inter := x509.NewCertPool()
	for _, cert := range certs[1:] {
		inter.AddCert(cert)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, c.verifyError(certs[0], err, now)
	}
	for _, ch := range chains {
		if len(ch)-2 <= c.files.Depth && selfSigned(ch[len(ch)-1]) {
			return ch, nil
		}
	}
	return nil, &Error{What: fmt.Sprintf("%s's certificate (%s) chains to the CA list %s only through more than %d intermediate certificates, or to a certificate of it that is not self-signed", c.peer(), certs[0].Subject, c.files.CA, c.files.Depth),
		Fix: "raise ssl.cert-depth, or put the root certificate in the CA list", Err: ErrUnknownCA}
}

// selfSigned reports whether c is its own issuer and signer.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawSubject, c.RawIssuer) && c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
