package sunrpc

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"sync"
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

// lastWords is a connection whose peer refused this end after the TLS
// handshake: the write meets the reset while the peer's alert still waits
// for the reader, which gets it a little later.
type lastWords struct {
	net.Conn
	alert  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (l *lastWords) Write(p []byte) (int, error) {
	defer close(l.alert) // the reader wakes only after the write failed
	return 0, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
}

func (l *lastWords) Read(p []byte) (int, error) {
	select {
	case <-l.alert:
		time.Sleep(20 * time.Millisecond)
		return 0, &net.OpError{Op: "remote error", Err: errors.New(tls.AlertError(44).Error())}
	case <-l.closed:
		return 0, net.ErrClosed
	}
}

func (l *lastWords) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

// A write that fails on a reset leaves the connection's error to the
// reader when the peer's last words (a TLS alert) are still to be read:
// the caller gets the alert to explain, not the bare reset.
func TestWriteResetYieldsToAlert(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	conn := NewConn(&lastWords{Conn: a, alert: make(chan struct{}), closed: make(chan struct{})}, 1, Options{})
	defer conn.Close()
	_, err := conn.Call(context.Background(), 1, 1, 1, CredV2(0, 0, 0, nil, nil), nil, nil)
	var oe *net.OpError
	if !errors.Is(err, ErrDisconnected) || !errors.As(err, &oe) || oe.Op != "remote error" {
		t.Fatalf("call whose write met the reset before the alert was read: %v; want ErrDisconnected and the TLS alert", err)
	}
}
