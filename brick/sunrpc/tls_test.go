package sunrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/bricktest"
)

// A TLS connection to a peer that stopped reading (a hung brick), with a
// write blocked on it, is closed at once and its pending call fails: the
// failover path depends on that as much over TLS as in the clear.
func TestTLSCloseToHungPeer(t *testing.T) {
	cert, key, _, err := bricktest.TLSFiles(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	hung := make(chan struct{})
	defer close(hung)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		_ = c.(*tls.Conn).Handshake()
		<-hung // never reads again
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, l.Addr().String(), 1, Options{TLS: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// Far more than the socket buffers hold: the write blocks.
		_, err := conn.Call(context.Background(), 1, 1, 1, CredV2(0, 0, 0, nil, nil), make([]byte, 64<<20), nil)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	conn.Close()
	if d := time.Since(start); d > 5*time.Second { // immediate, but machines are loaded
		t.Errorf("Close took %v with a write blocked on a hung TLS peer", d)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("the call succeeded on a closed connection")
		}
	case <-time.After(10 * time.Second):
		t.Error("the pending call did not fail within 10 s of Close")
	}
}

// A peer that refuses this end's certificate after the TLS 1.3 handshake
// sends an alert, which the first call's error carries for the caller to
// explain (as a *net.OpError "remote error"), beside ErrDisconnected.
func TestTLSAlertReachesCaller(t *testing.T) {
	cert, key, _, err := bricktest.TLSFiles(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake() // no client certificate: an alert
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := Dial(ctx, l.Addr().String(), 1, Options{TLS: &tls.Config{InsecureSkipVerify: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = conn.Call(ctx, 1, 1, 1, CredV2(0, 0, 0, nil, nil), nil, nil)
	var oe *net.OpError
	if !errors.Is(err, ErrDisconnected) || !errors.As(err, &oe) || oe.Op != "remote error" {
		t.Fatalf("call on a connection the peer refused: %v; want ErrDisconnected and the TLS alert", err)
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		t.Errorf("a syscall.Errno (%v) shows through a disconnect", en)
	}
}
