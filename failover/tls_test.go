package failover

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
