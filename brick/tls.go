package brick

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/volfile"
)

// brickTLS builds the TLS configuration of a protocol/client translator
// whose transport.socket.ssl-enabled is on, as the native client's socket
// transport uses it (ssl_setup_connection_params in socket.c): this host's
// certificate and key are presented to the brick (which checks the name
// against auth.ssl-allow), and the brick's certificate must chain to the CA
// list and, with ssl-crl-path, be revoked by none of its issuers' lists.
// As in GlusterFS, no host name is checked: the bricks of a cluster usually
// share one self-signed list. Files the translator does not name are in dir
// (tlsconf.DefaultDir when empty). It returns nil for a translator without
// TLS.
func brickTLS(cl *volfile.Volume, dir string) (*tlsconf.Config, error) {
	on, _ := cl.Option("transport.socket.ssl-enabled")
	if !glusterBool(on) {
		return nil, nil
	}
	if dir == "" {
		dir = tlsconf.DefaultDir()
	}
	f := tlsconf.InDir(dir)
	opt := func(key string, def *string) {
		if v, ok := cl.Option("transport.socket." + key); ok && v != "" {
			*def = v
		}
	}
	opt("ssl-own-cert", &f.Cert)
	opt("ssl-private-key", &f.Key)
	opt("ssl-ca-list", &f.CA)
	if d, ok := cl.Option("transport.socket.ssl-cert-depth"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("volfile: %s has ssl-cert-depth %q, not a depth; fix ssl.cert-depth on the volume", cl.Name, d)
		}
		f.Depth = n
	}
	// socket.c takes "NULL" as no list.
	if crl, ok := cl.Option("transport.socket.ssl-crl-path"); ok && crl != "" && !strings.EqualFold(crl, "NULL") {
		f.CRLDir = crl
	}
	f.Peer = "the brick"
	f.Hint = "or set ssl.own-cert, ssl.private-key, ssl.ca-list and ssl.crl-path on the volume"
	c, err := tlsconf.Load(f)
	if err != nil {
		var te *tlsconf.Error
		if errors.As(err, &te) {
			return nil, fmt.Errorf("volfile: %s uses TLS (client.ssl), but %w", cl.Name, err)
		}
		return nil, fmt.Errorf("volfile: %s uses TLS (client.ssl): %w", cl.Name, err)
	}
	return c, nil
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
