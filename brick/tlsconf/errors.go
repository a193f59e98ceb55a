package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// Error is a TLS failure as a user reads it: what happened, then what to
// do. Err is the cause, or one of the Err* reasons below.
type Error struct {
	What string
	Fix  string
	Err  error
}

func (e *Error) Error() string {
	if e.Fix == "" {
		return e.What
	}
	return e.What + "; " + e.Fix
}

func (e *Error) Unwrap() error { return e.Err }

// Reasons an *Error wraps, for callers and tests to tell them apart.
var (
	// ErrExpired: a certificate (this host's or the server's) has expired.
	ErrExpired = errors.New("certificate expired")
	// ErrRevoked: a certificate is revoked by a revocation list.
	ErrRevoked = errors.New("certificate revoked")
	// ErrUnknownCA: a certificate does not chain to the CA list that
	// checked it.
	ErrUnknownCA = errors.New("certificate not signed by the CA list")
	// ErrCRL: a revocation list directory or file cannot be used.
	ErrCRL = errors.New("revocation list unusable")
	// ErrRefused: the server refused this host's certificate (a TLS
	// alert), for a reason other than the ones above.
	ErrRefused = errors.New("certificate refused by the server")
	// ErrNotTLS: the peer does not speak TLS, or closed the connection
	// during the handshake.
	ErrNotTLS = errors.New("no TLS handshake")
)

// TLS alerts a server sends when it refuses a certificate (RFC 8446 §6).
const (
	alertHandshakeFailure       = 40
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertDecryptError           = 51
	alertProtocolVersion        = 70
	alertInsufficientSecurity   = 71
	alertCertificateRequired    = 116
)

// remoteAlert returns the alert a server sent, if err carries one. crypto/tls
// reports it as a *net.OpError "remote error" around a value of its own
// unexported alert type, whose text is the same as tls.AlertError's.
func remoteAlert(err error) (uint8, bool) {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" || oe.Err == nil {
		return 0, false
	}
	text := oe.Err.Error()
	for a := 0; a < 256; a++ {
		if tls.AlertError(a).Error() == text {
			return uint8(a), true
		}
	}
	return 0, false
}

// Explain turns the error of a connection made with c (a dial, or the first
// call on it: in TLS 1.3 the server judges this host's certificate after
// the client's side of the handshake is done) into an *Error when TLS is
// the reason, and returns any other error as it is. A nil c returns err.
func (c *Config) Explain(err error) error {
	if c == nil || err == nil {
		return err
	}
	var te *Error
	if errors.As(err, &te) {
		return te // our own verification, already said
	}
	if a, ok := remoteAlert(err); ok {
		return c.alert(a, err)
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return &Error{What: c.peer() + " does not speak TLS on this connection",
			Fix: "turn TLS on at the server as well, or off here", Err: ErrNotTLS}
	}
	return err
}

// ExplainHandshake is Explain for a failed TLS dial: a connection closed or
// reset in the middle of the handshake may also mean the server does not
// expect TLS there (a GlusterFS socket reads a ClientHello as a broken RPC
// record and hangs up), or only that it is going down.
func (c *Config) ExplainHandshake(err error) error {
	if c == nil || err == nil {
		return err
	}
	if e := c.Explain(err); e != err {
		return e
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		// Also what a server going down does: said as a guess.
		return &Error{What: fmt.Sprintf("%s closed the connection during the TLS handshake (%v)", c.peer(), err),
			Fix: "if it keeps doing so, it does not expect TLS: turn TLS on at the server as well, or off here", Err: ErrNotTLS}
	}
	return err
}

// ExplainHangup explains a server that hung up on the first call over a
// TLS connection it had let through the handshake. In TLS 1.3 the server
// checks this host's certificate only after the client's side of the
// handshake is done: one that refuses it sends an alert and closes, and
// the alert is lost when the close arrives as a reset first. So the
// likely cause is said, as a guess.
func (c *Config) ExplainHangup(err error) error {
	if c == nil || err == nil {
		return err
	}
	if e := c.Explain(err); e != err {
		return e
	}
	peer, what := c.peer(), "this host's certificate "+c.files.Cert
	if c.own != nil {
		what = fmt.Sprintf("%s (%s, issued by %s)", what, c.own.Subject, c.own.Issuer)
	}
	return &Error{What: fmt.Sprintf("%s hung up right after the TLS handshake without saying why (%v); most likely %s does not trust %s", peer, err, peer, what),
		Fix: "add this host's CA to the servers' CA list (glusterfs.ca, or ssl.ca-list on the volume) or install a certificate signed by one on it; if the servers trust it, see glusterd's log", Err: errors.Join(ErrRefused, err)}
}

// alert explains a TLS alert the server sent about this host's certificate.
func (c *Config) alert(a uint8, err error) error {
	own, path, peer := c.own, c.files.Cert, c.peer()
	name := tls.AlertError(a).Error()
	switch a {
	case alertCertificateExpired:
		if time.Now().After(own.NotAfter) {
			return &Error{What: fmt.Sprintf("%s refused this host's certificate %s: it expired on %s", peer, path, date(own.NotAfter)),
				Fix: "renew it", Err: ErrExpired}
		}
		return &Error{What: fmt.Sprintf("%s refused this host's certificate %s as expired, though by this host's clock it is valid until %s", peer, path, date(own.NotAfter)),
			Fix: "check the server's clock, and its revocation lists (ssl.crl-path), which OpenSSL also reports as expired when they are out of date", Err: ErrExpired}
	case alertCertificateRevoked:
		return &Error{What: fmt.Sprintf("%s refused this host's certificate %s (%s, serial %s): a revocation list of the server (ssl.crl-path) revokes it", peer, path, own.Subject, own.SerialNumber),
			Fix: "install a new certificate and key for this host", Err: ErrRevoked}
	case alertUnknownCA:
		return &Error{What: fmt.Sprintf("%s does not trust this host's certificate %s (%s, issued by %s): it chains to no certificate of the server's CA list", peer, path, own.Subject, own.Issuer),
			Fix: "add this host's CA to the servers' CA list (glusterfs.ca, or ssl.ca-list on the volume) or install a certificate signed by one on it; with ssl.crl-path the servers also need a revocation list from that CA", Err: ErrUnknownCA}
	case alertBadCertificate, alertUnsupportedCertificate, alertCertificateUnknown, alertDecryptError:
		return &Error{What: fmt.Sprintf("%s refused this host's certificate %s (%s)", peer, path, name),
			Fix: "check that it is signed by a CA of the servers' CA list, valid now, and matches its key", Err: ErrRefused}
	case alertCertificateRequired:
		return &Error{What: fmt.Sprintf("%s wants a certificate and did not get %s", peer, path), Fix: "check the certificate and key files", Err: ErrRefused}
	case alertHandshakeFailure, alertProtocolVersion, alertInsufficientSecurity:
		return &Error{What: fmt.Sprintf("%s and brickfs agree on no TLS version or cipher (%s)", peer, name),
			Fix: "brickfs speaks TLS 1.2 and 1.3 with Go's cipher suites; check ssl.cipher-list on the volume", Err: err}
	}
	return &Error{What: fmt.Sprintf("%s ended the TLS connection (%s)", peer, name), Fix: "see the server's log", Err: err}
}

// verifyError explains why the server's certificate chain did not verify
// against the CA list.
func (c *Config) verifyError(leaf *x509.Certificate, err error, now time.Time) error {
	peer := c.peer()
	var inv x509.CertificateInvalidError
	if errors.As(err, &inv) && inv.Reason == x509.Expired && inv.Cert != nil {
		which := fmt.Sprintf("%s's certificate (%s)", peer, inv.Cert.Subject)
		if inv.Cert != leaf {
			which = fmt.Sprintf("the CA certificate %s in the chain of %s's certificate (%s)", inv.Cert.Subject, peer, leaf.Subject)
		}
		if now.After(inv.Cert.NotAfter) {
			return &Error{What: fmt.Sprintf("%s expired on %s", which, date(inv.Cert.NotAfter)),
				Fix: "renew it on the server (glusterfs.pem there, or the volume's ssl.own-cert)", Err: ErrExpired}
		}
		return &Error{What: fmt.Sprintf("%s is not valid until %s", which, date(inv.Cert.NotBefore)),
			Fix: "check the clocks of this host and the server", Err: ErrExpired}
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return &Error{What: fmt.Sprintf("%s's certificate (%s, issued by %s) is not signed by any certificate of the CA list %s", peer, leaf.Subject, leaf.Issuer, c.files.CA),
			Fix: hinted("add the server's CA to it, or give the server a certificate signed by a CA on it", c.files.Hint), Err: ErrUnknownCA}
	}
	return &Error{What: fmt.Sprintf("%s's certificate (%s) does not verify against the CA list %s (%v)", peer, leaf.Subject, c.files.CA, err),
		Fix: "give the server a certificate signed by a CA of that list and valid now", Err: ErrUnknownCA}
}

// peer is how messages name the server: Files.Peer, or "the server".
func (c *Config) peer() string {
	if c.files.Peer != "" {
		return c.files.Peer
	}
	return "the server"
}
