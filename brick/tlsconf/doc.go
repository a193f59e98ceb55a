// Package tlsconf builds the client side of GlusterFS's TLS, as its socket
// transport (rpc/rpc-transport/socket/src/socket.c) sets OpenSSL up: this
// host's certificate and key, a CA list to which the server's certificate
// must chain through at most ssl-cert-depth intermediates, no host name
// check, and optionally a directory of certificate revocation lists
// (ssl-crl-path). One Config serves brick connections (a volume with
// client.ssl on) and glusterd connections (management TLS, turned on for
// the whole host by /var/lib/glusterd/secure-access).
//
// # Files
//
// Where the volfile names no files, GlusterFS uses glusterfs.pem,
// glusterfs.key and glusterfs.ca in the OpenSSL directory it was built
// against (OPENSSLDIR: /usr/lib/ssl on Debian and Ubuntu, /etc/pki/tls on
// Fedora and RHEL, /etc/ssl elsewhere). DefaultDir picks the first of those
// that holds glusterfs.pem. The certificate, key and CA list are read once,
// when the Config is made, as GlusterFS reads them once per transport.
//
// # Revocation
//
// With a CRL directory, every certificate of the server's chain but the
// CA-list anchor is checked against the revocation list of its issuer. The
// directory is read as OpenSSL's hashed directory (X509_LOOKUP_hash_dir):
// the lists of an issuer are the files HASH.r0, HASH.r1, ... up to the
// first missing one, HASH being the issuer name's X509_NAME_hash; a list
// may be PEM or DER. The directory is read again at every new connection,
// so an updated list takes effect on the next reconnect. Decisions:
//
//   - The directory missing or unreadable, a list file that cannot be read
//     or parsed, or a list that names an issuer of the chain but is not
//     signed by it: the connection is refused with an error naming the file
//     (fail closed; Load says so at once too).
//   - An issuer with no list in the directory: nothing of its is revoked.
//     GlusterFS's servers (OpenSSL's X509_V_FLAG_CRL_CHECK_ALL) refuse such
//     a chain, but its clients do not check the server's certificate
//     against revocation lists at all (ssl_clear_crl_verify_flags), so a
//     stricter brickfs would refuse mounts the native client makes.
//   - The list's own dates (thisUpdate, nextUpdate) are not checked: an
//     outdated list still revokes what it lists. Of several lists of one
//     issuer the one with the latest thisUpdate counts.
//
// # Errors
//
// Everything this package returns for a user to read is an *Error, one line
// saying what happened and what to do. Config.Explain turns what a failed
// connection returned (a TLS alert from the server that refused this host's
// certificate, a server that does not speak TLS) into one.
//
// # Concurrency
//
// A Config is immutable and safe for concurrent use by any number of
// connections.
package tlsconf
