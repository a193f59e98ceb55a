package tlsconf

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// crlName matches the files of a hashed directory that hold revocation
// lists (X509_LOOKUP_hash_dir names them "%08lx.r%d").
var crlName = regexp.MustCompile(`^[0-9a-f]{8}\.r[0-9]+$`)

// checkCRLDir checks, when a Config is made, that dir can be read and that
// every revocation list file in it parses, so that a mistake is reported at
// mount time rather than at the first connection.
func checkCRLDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return crlDirError(dir, err)
	}
	for _, e := range ents {
		if !crlName.MatchString(e.Name()) {
			continue
		}
		if _, err := readCRLFile(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func crlDirError(dir string, err error) error {
	return &Error{What: fmt.Sprintf("the revocation list directory %s (ssl.crl-path) cannot be read (%v)", dir, err),
		Fix: "create it (it may be empty), or unset ssl.crl-path on the volume", Err: errors.Join(ErrCRL, err)}
}

// readCRLFile parses every revocation list of a file: PEM blocks "X509
// CRL", or one DER list.
func readCRLFile(path string) ([]*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{What: fmt.Sprintf("the revocation list %s cannot be read (%v)", path, err),
			Fix: "make it readable, or remove it", Err: errors.Join(ErrCRL, err)}
	}
	bad := func(err error) error {
		return &Error{What: fmt.Sprintf("the revocation list %s cannot be parsed (%v)", path, err),
			Fix: "replace it with a CRL in PEM or DER form, or remove it", Err: errors.Join(ErrCRL, err)}
	}
	var out []*x509.RevocationList
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		l, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, bad(err)
		}
		out = append(out, l)
	}
	if len(out) > 0 {
		return out, nil
	}
	l, err := x509.ParseRevocationList(b)
	if err != nil {
		return nil, bad(errors.New("neither a PEM X509 CRL nor a DER CRL"))
	}
	return []*x509.RevocationList{l}, nil
}

// checkRevoked reads, for every certificate of chain but the anchor, the
// revocation lists of its issuer from dir and refuses a certificate one of
// them lists (check_revocation with X509_V_FLAG_CRL_CHECK_ALL, without
// requiring a list: see the package comment).
func checkRevoked(dir string, chain []*x509.Certificate, peer string) error {
	if st, err := os.Stat(dir); err != nil {
		return crlDirError(dir, err)
	} else if !st.IsDir() {
		return crlDirError(dir, errors.New("not a directory"))
	}
	for i := 0; i+1 < len(chain); i++ {
		cert, issuer := chain[i], chain[i+1]
		crl, file, err := issuerCRL(dir, issuer)
		if err != nil {
			return err
		}
		if crl == nil {
			continue
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber != nil && e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				who := peer + "'s certificate"
				if i > 0 {
					who = "the CA certificate in " + peer + "'s chain"
				}
				return &Error{What: fmt.Sprintf("%s (%s, serial %s) was revoked on %s by the revocation list %s of %s",
					who, cert.Subject, cert.SerialNumber, date(e.RevocationTime), file, issuer.Subject),
					Fix: "give the server a new certificate, or take the revocation out of that list", Err: ErrRevoked}
			}
		}
	}
	return nil
}

// issuerCRL returns issuer's newest revocation list in dir and its file,
// nil when dir has none: the files HASH.r0, HASH.r1, ... up to the first
// that does not exist (by_dir's get_cert_by_subject), keeping the lists
// whose issuer is issuer's name; each of those must be signed by issuer.
func issuerCRL(dir string, issuer *x509.Certificate) (*x509.RevocationList, string, error) {
	h, err := NameHash(issuer.RawSubject)
	if err != nil {
		return nil, "", nil // a name OpenSSL could not hash has no list either
	}
	want, _ := canonicalName(issuer.RawSubject)
	var best *x509.RevocationList
	var bestFile string
	var unsigned error // the first list in the issuer's name that another key signed
	for k := 0; ; k++ {
		file := filepath.Join(dir, fmt.Sprintf("%08x.r%d", h, k))
		if _, err := os.Stat(file); err != nil {
			break
		}
		lists, err := readCRLFile(file)
		if err != nil {
			return nil, "", err
		}
		for _, l := range lists {
			if got, err := canonicalName(l.RawIssuer); err != nil || !bytes.Equal(got, want) {
				continue // another name with the same hash
			}
			if err := l.CheckSignatureFrom(issuer); err != nil {
				// Another key of the same name (a CA's key rolled
				// over, its old list left beside the new one): it
				// counts against us only if no list of this key is
				// there.
				if unsigned == nil {
					unsigned = &Error{What: fmt.Sprintf("the revocation list %s names %s as its issuer but is not signed by it (%v)", file, issuer.Subject, err),
						Fix: "replace it with the list that CA issued", Err: errors.Join(ErrCRL, err)}
				}
				continue
			}
			if best == nil || l.ThisUpdate.After(best.ThisUpdate) {
				best, bestFile = l, file
			}
		}
	}
	if best == nil && unsigned != nil {
		return nil, "", unsigned
	}
	return best, bestFile, nil
}

// CRLFileName is the name OpenSSL's hashed directory gives the k-th
// revocation list of the issuer named rawIssuer (DER), as `openssl rehash`
// names it: "HASH.rK".
func CRLFileName(rawIssuer []byte, k int) (string, error) {
	h, err := NameHash(rawIssuer)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%08x.r%d", h, k), nil
}

// NameHash is OpenSSL's X509_NAME_hash of a DER Name: the first four bytes,
// little-endian, of the SHA-1 of its canonical encoding.
func NameHash(rawName []byte) (uint32, error) {
	canon, err := canonicalName(rawName)
	if err != nil {
		return 0, err
	}
	sum := sha1.Sum(canon)
	return binary.LittleEndian.Uint32(sum[:4]), nil
}

// ASN.1 string tags x509_name_canon rewrites (ASN1_MASK_CANON).
const (
	tagUTF8String      = 12
	tagPrintableString = 19
	tagT61String       = 20
	tagIA5String       = 22
	tagVisibleString   = 26
	tagUniversalString = 28
	tagBMPString       = 30
)

// canonicalName is x509_name_canon (crypto/x509/x_name.c): each RDN's SET
// re-encoded with every string value turned into a UTF8String, without
// leading or trailing white space, inner runs of white space made one
// space and ASCII letters lower-cased; the SETs concatenated without the
// outer SEQUENCE. An empty name encodes as nothing.
func canonicalName(raw []byte) ([]byte, error) {
	var rdns []asn1.RawValue
	if rest, err := asn1.Unmarshal(raw, &rdns); err != nil {
		return nil, err
	} else if len(rest) > 0 {
		return nil, errors.New("trailing data after the name")
	}
	var out []byte
	for _, rdn := range rdns {
		if rdn.Class != asn1.ClassUniversal || rdn.Tag != asn1.TagSet {
			return nil, errors.New("name component is not a SET")
		}
		var avas [][]byte
		for b := rdn.Bytes; len(b) > 0; {
			var ava struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}
			var err error
			if b, err = asn1.Unmarshal(b, &ava); err != nil {
				return nil, err
			}
			val := ava.Value.FullBytes
			if ava.Value.Class == asn1.ClassUniversal {
				if s, ok := asn1String(ava.Value.Tag, ava.Value.Bytes); ok {
					v, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: tagUTF8String, Bytes: []byte(canonString(s))})
					if err != nil {
						return nil, err
					}
					val = v
				}
			}
			enc, err := asn1.Marshal(struct {
				Type  asn1.ObjectIdentifier
				Value asn1.RawValue
			}{ava.Type, asn1.RawValue{FullBytes: val}})
			if err != nil {
				return nil, err
			}
			avas = append(avas, enc)
		}
		// DER orders a SET OF by its encodings.
		slices.SortFunc(avas, bytes.Compare)
		set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: bytes.Join(avas, nil)})
		if err != nil {
			return nil, err
		}
		out = append(out, set...)
	}
	return out, nil
}

// asn1String converts a string value of a type x509_name_canon rewrites to
// UTF-8 as ASN1_STRING_to_UTF8 does; ok is false for other types.
func asn1String(tag int, b []byte) (string, bool) {
	switch tag {
	case tagUTF8String:
		return string(b), true
	case tagPrintableString, tagIA5String, tagVisibleString, tagT61String: // one byte a character, Latin-1
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	case tagBMPString:
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.BigEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), true
	case tagUniversalString:
		var sb strings.Builder
		for i := 0; i+4 <= len(b); i += 4 {
			r := rune(binary.BigEndian.Uint32(b[i:]))
			if !utf8.ValidRune(r) {
				r = utf8.RuneError
			}
			sb.WriteRune(r)
		}
		return sb.String(), true
	}
	return "", false
}

// canonString is asn1_string_canon's rewriting of the UTF-8 bytes.
func canonString(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }
	b := []byte(s)
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c >= 0x80:
			out = append(out, c)
			i++
		case isSpace(c):
			out = append(out, ' ')
			for i < len(b) && isSpace(b[i]) {
				i++
			}
		default:
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
		}
	}
	return string(out)
}
