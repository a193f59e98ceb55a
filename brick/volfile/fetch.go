package volfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/xdr"
)

const (
	// getspecFlagServersList is GF_GETSPEC_FLAG_SERVERS_LIST: ask for the
	// list of peers, as the FUSE client does.
	getspecFlagServersList = 1
	// maxSpec bounds a volfile read from the wire.
	maxSpec = MaxSize
)

// ErrNoVolume means glusterd answered that the volume does not exist.
var ErrNoVolume = errors.New("no such volume")

// Fetched is a volfile as one glusterd served it.
type Fetched struct {
	Volfile []byte
	From    Server
	// Peers lists the cluster's glusterds as the server reported them
	// (cluster.brick-vol-servers); usable as further volfile servers.
	Peers []Server
}

// FetchOptions tune Fetch.
type FetchOptions struct {
	// Timeout bounds each server; 0 means 5 s.
	Timeout time.Duration
	// TLS, when set, is management TLS (tlsconf.Management): glusterd
	// is spoken to over TLS with this host's certificate.
	TLS *tlsconf.Config
}

// Fetch asks each server in turn for the client volfile of key (the volume
// name, or "vol.transport") and returns the first answer. When none
// answers, the error names every server tried and what went wrong with it.
func Fetch(ctx context.Context, servers []Server, key string, o FetchOptions) (*Fetched, error) {
	if len(servers) == 0 {
		return nil, errors.New("no volfile server given")
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	var errs *multierror.Error
	noVolume, tlsFailed := 0, 0
	for _, s := range servers {
		sctx, cancel := context.WithTimeout(ctx, o.Timeout)
		spec, peers, err := getSpec(sctx, s, key, o.TLS)
		cancel()
		if err == nil {
			return &Fetched{Volfile: spec, From: s, Peers: peers}, nil
		}
		var te *tlsconf.Error
		switch {
		case errors.Is(err, ErrNoVolume):
			noVolume++
		case errors.As(err, &te):
			tlsFailed++
		}
		errs = multierror.Append(errs, fmt.Errorf("%s: %w", s, err))
		if ctx.Err() != nil {
			break
		}
	}
	errs.ErrorFormat = func(es []error) string {
		parts := make([]string, len(es))
		for i, e := range es {
			parts[i] = e.Error()
		}
		return strings.Join(parts, "; ")
	}
	if noVolume == len(servers) {
		return nil, fmt.Errorf("volume %q does not exist on %s; check the name with `gluster volume list`: %w", key, serverList(servers), ErrNoVolume)
	}
	if tlsFailed == len(servers) {
		// Each error says what to do; "check that glusterd runs" would
		// mislead.
		return nil, fmt.Errorf("no volfile server accepted the management TLS connection (%s exists here): %w", o.TLS.SecureAccess(), errs)
	}
	return nil, fmt.Errorf("no volfile server answered (tried %s); check that glusterd runs on them or pass backup-volfile-servers=HOST2:HOST3", errs.Error())
}

// ExplainMgmt says what to do about a failed connection to glusterd when
// TLS may be why: with management TLS (tc set), a certificate refused by
// either side or a glusterd that does not expect TLS; without it, glusterd
// hanging up on the first call, as one with management TLS on does to a
// client speaking in the clear. Other errors come back as they are.
func ExplainMgmt(tc *tlsconf.Config, err error) error {
	if err == nil {
		return nil
	}
	if tc != nil {
		err = tc.ExplainHandshake(err)
		var te *tlsconf.Error
		if errors.As(err, &te) && errors.Is(err, tlsconf.ErrNotTLS) {
			return &tlsconf.Error{What: te.What, Fix: fmt.Sprintf("if it keeps doing so, glusterd does not use management TLS, which this host uses because %s exists: remove that file, or turn management TLS on at the servers", tc.SecureAccess()), Err: te.Err}
		}
		if !errors.As(err, &te) && errors.Is(err, sunrpc.ErrDisconnected) {
			// Hung up on after the handshake, with the alert lost.
			return tc.ExplainHangup(err)
		}
		return err
	}
	if errors.Is(err, sunrpc.ErrDisconnected) {
		return fmt.Errorf("%w (glusterd hung up: if the servers use management TLS, this host needs it too: create %s, with this host's glusterfs.pem, glusterfs.key and glusterfs.ca)", err, tlsconf.SecureAccessFile)
	}
	return err
}

func serverList(servers []Server) string {
	parts := make([]string, len(servers))
	for i, s := range servers {
		parts[i] = s.String()
	}
	return strings.Join(parts, ", ")
}

func getSpec(ctx context.Context, s Server, key string, tc *tlsconf.Config) ([]byte, []Server, error) {
	conn, err := sunrpc.Dial(ctx, s.String(), 0, sunrpc.Options{TLS: tc.TLS()})
	if err != nil {
		if e := ExplainMgmt(tc, err); e != err {
			return nil, nil, e
		}
		var oe interface{ Timeout() bool }
		if errors.As(err, &oe) && oe.Timeout() {
			return nil, nil, errors.New("timed out connecting")
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, errors.New("connection refused")
		}
		return nil, nil, err
	}
	defer conn.Close()
	spec, peers, err := GetSpec(ctx, conn, key)
	return spec, peers, ExplainMgmt(tc, err)
}

// GetSpec asks glusterd on conn for the client volfile of key; it also
// returns the cluster's glusterds as glusterd listed them.
func GetSpec(ctx context.Context, conn *sunrpc.Conn, key string) ([]byte, []Server, error) {
	body, err := conn.Call(ctx, ProgHandshake, VersHandshake, ProcGetSpec, MgmtCred, EncodeGetSpec(key), nil)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil, errors.New("timed out waiting for the volfile")
		}
		return nil, nil, err
	}
	return DecodeGetSpec(body)
}

// EncodeGetSpec encodes gf_getspec_req {u32 flags; string key; opaque xdata}
// with the op-version range glusterd requires (max-op-version below a
// volume's client-op-version gets EOPNOTSUPP).
func EncodeGetSpec(key string) []byte {
	x := xdr.OldDict{}.Set("max-op-version", "100000").Set("min-op-version", "1")
	e := xdr.NewEncoder(64 + len(key))
	e.Uint32(getspecFlagServersList)
	e.String(key)
	e.Opaque(x.Marshal())
	return e.B
}

// DecodeGetSpec decodes gf_getspec_rsp {int op_ret; int op_errno; string
// spec; opaque xdata}.
func DecodeGetSpec(body []byte) ([]byte, []Server, error) {
	d := xdr.NewDecoder(body)
	ret, errno := d.Int32(), d.Int32()
	spec := d.Opaque(maxSpec)
	xd := d.Opaque(1 << 20)
	if d.Err() != nil {
		return nil, nil, fmt.Errorf("malformed GETSPEC reply: %w", d.Err())
	}
	if ret < 0 {
		switch en := syscall.Errno(errno); en {
		case syscall.ENOENT:
			return nil, nil, ErrNoVolume
		case syscall.EOPNOTSUPP:
			return nil, nil, errors.New("glusterd refused to serve the volfile: the volume needs a newer client op-version")
		default:
			return nil, nil, fmt.Errorf("glusterd refused to serve the volfile: %v", en)
		}
	}
	if len(spec) == 0 {
		return nil, nil, errors.New("glusterd sent an empty volfile")
	}
	var peers []Server
	if dict, err := xdr.UnmarshalOldDict(xd); err == nil {
		if v, ok := dict.Get("cluster.brick-vol-servers"); ok {
			for _, hp := range strings.Fields(v) {
				if srv, err := parseServer(hp, true); err == nil {
					peers = append(peers, srv)
				}
			}
		}
	}
	return append([]byte(nil), spec...), peers, nil
}
