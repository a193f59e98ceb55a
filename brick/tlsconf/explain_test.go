package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
)

// serveOnce accepts one connection on a fresh listener and hands it to fn.
func serveOnce(t *testing.T, fn func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fn(c)
	}()
	return l.Addr().String()
}

// handshake dials addr with c and returns what the handshake, or failing
// that the first read, returned.
func handshake(t *testing.T, c *Config, addr string) error {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(nc, c.TLS())
	if err := tc.Handshake(); err != nil {
		return err
	}
	_, err = tc.Read(make([]byte, 1))
	return err
}

// A server that answers the ClientHello with a fatal alert, as OpenSSL
// does when it refuses this host's certificate in TLS 1.2: each alert
// comes out as what it means for this host's certificate.
func TestExplainAlerts(t *testing.T) {
	p := newPKI(t)
	c := p.load(t)
	for _, tc := range []struct {
		alert    byte
		reason   error
		patterns []string
	}{
		{alertCertificateRevoked, ErrRevoked, []string{`refused this host's certificate .*glusterfs\.pem \(CN=client, serial \d+\): a revocation list of the server \(ssl\.crl-path\) revokes it`, `install a new certificate`}},
		{alertCertificateExpired, ErrExpired, []string{`refused this host's certificate .*glusterfs\.pem as expired, though by this host's clock it is valid until`, `server's clock`}},
		{alertUnknownCA, ErrUnknownCA, []string{`does not trust this host's certificate .*glusterfs\.pem \(CN=client, issued by CN=test CA`, `add this host's CA to the servers' CA list`}},
		{alertBadCertificate, ErrRefused, []string{`refused this host's certificate .*\(tls: bad certificate\)`}},
		{alertHandshakeFailure, nil, []string{`agree on no TLS version or cipher`, `ssl\.cipher-list`}},
		{99, nil, []string{`ended the TLS connection \(tls: alert\(99\)\)`}},
	} {
		addr := serveOnce(t, func(nc net.Conn) {
			nc.Read(make([]byte, 4096))                               // the ClientHello
			nc.Write([]byte{21, 3, 3, 0, 2, 2 /* fatal */, tc.alert}) // an alert record
		})
		err := handshake(t, c, addr)
		wantError(t, "alert "+tls.AlertError(tc.alert).Error(), c.ExplainHandshake(err), tc.reason, tc.patterns...)
	}
	// This host's certificate did expire (since the Config was made).
	_, _, old, err := p.ca.Issue(p.dir, "old", "client", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	addr := serveOnce(t, func(nc net.Conn) {
		nc.Read(make([]byte, 4096))
		nc.Write([]byte{21, 3, 3, 0, 2, 2, alertCertificateExpired})
	})
	err = handshake(t, c, addr)
	expired := *c
	expired.own = old
	wantError(t, "this host's certificate expired", expired.Explain(err), ErrExpired, `refused this host's certificate .*: it expired on \d{4}-`, `renew it$`)
}

func TestExplainNotTLS(t *testing.T) {
	c := newPKI(t).load(t)
	addr := serveOnce(t, func(nc net.Conn) {
		nc.Read(make([]byte, 4096))
		nc.Write([]byte("\x80\x00\x00\x1cnot a TLS record, an RPC one"))
	})
	wantError(t, "an RPC answer", c.Explain(handshake(t, c, addr)), ErrNotTLS, `does not speak TLS`)
	addr = serveOnce(t, func(nc net.Conn) { nc.Read(make([]byte, 4096)) })
	err := handshake(t, c, addr)
	if c.Explain(err) != err {
		t.Errorf("Explain took a bare EOF for TLS: %v", c.Explain(err))
	}
	wantError(t, "a hang-up during the handshake", c.ExplainHandshake(err), ErrNotTLS, `closed the connection during the TLS handshake`)
	// Not TLS at all: left alone; no Config: left alone.
	if e := c.Explain(io.ErrClosedPipe); e != io.ErrClosedPipe {
		t.Errorf("Explain(%v) = %v", io.ErrClosedPipe, e)
	}
	var none *Config
	if e := none.ExplainHandshake(io.EOF); e != io.EOF || none.TLS() != nil {
		t.Errorf("nil Config: %v", e)
	}
}

// Over TLS 1.3 a server judges the client's certificate after the
// client's handshake is done: the refusal arrives on the first read, and
// comes out the same.
func TestExplainTLS13Refusal(t *testing.T) {
	p := newPKI(t)
	c := p.load(t)
	other, err := bricktest.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(p.files.Cert, p.files.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(other.Cert)
	srv := &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS13}
	addr := serveOnce(t, func(nc net.Conn) {
		tc := tls.Server(nc, srv)
		tc.Handshake()
		tc.Read(make([]byte, 1))
	})
	err = handshake(t, c, addr)
	if err == nil {
		t.Fatal("a server that refuses this host's CA accepted it")
	}
	wantError(t, "refused after the handshake", c.Explain(err), ErrUnknownCA, `does not trust this host's certificate`)
}
