package volfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/xdr"
)

// WatchOptions tune Watch; zero values take the defaults.
type WatchOptions struct {
	// Check is how often the glusterd connection is pinged (default 10 s);
	// one that does not answer within it is dropped for the next server.
	Check time.Duration
	// Retry is the longest wait between connection attempts (default 10 s).
	Retry time.Duration
	// TLS, when set, is management TLS, as for Fetch.
	TLS *tlsconf.Config
}

// Watch follows the volfile of key until ctx ends, as the native client
// does: it stays connected to one of servers (the next one when that one
// goes away), and whenever glusterd announces a change of the volume's
// volfile (the FETCHSPEC callback), and after every reconnect, it fetches
// the volfile and hands it to apply if it differs from the one in use.
// spec is the volfile in use now. apply returns what it changed, or why
// it could not apply the volfile; either is logged, and a volfile apply
// refused is not offered again until it changes. Watch returns once ctx
// has ended and nothing it started is still running.
func Watch(ctx context.Context, servers []Server, key string, spec []byte, o WatchOptions, log *zap.Logger, apply func(spec []byte) ([]string, error)) {
	if o.Check == 0 {
		o.Check = 10 * time.Second
	}
	if o.Retry == 0 {
		o.Retry = 10 * time.Second
	}
	log = log.With(zap.String("volfile-key", key))
	current := spec
	changed := make(chan struct{}, 1)
	onCallback := func(c sunrpc.Call) {
		if c.Prog == ProgCallback && c.Proc == CbkFetchSpec {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	// check fetches the volfile on conn and applies it if it changed; it
	// reports whether glusterd answered.
	check := func(conn *sunrpc.Conn) bool {
		cctx, cancel := context.WithTimeout(ctx, o.Check)
		got, _, err := GetSpec(cctx, conn, key)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("cannot fetch the volfile to check it for changes", zap.Stringer("remote", conn.RemoteAddr()), zap.Error(ExplainMgmt(o.TLS, err)))
			}
			return false
		}
		if bytes.Equal(got, current) {
			return true
		}
		current = got
		changes, err := apply(got)
		if err != nil {
			log.Error("the volume's volfile changed in a way brickfs cannot apply while mounted; the mount goes on as it was", zap.Error(err))
			return true
		}
		log.Info("the volume's volfile changed; applied", zap.Strings("changes", changes))
		return true
	}
	wait := time.Second
	failedRound := true // no server answered yet in this round
	failedRounds := 0   // rounds in a row that no server answered
	var lastErr error   // why the last connection attempt failed
	for i := 0; ctx.Err() == nil; i++ {
		s := servers[i%len(servers)]
		if i%len(servers) == 0 {
			if failedRound && i > 0 {
				// Said when it starts, then about every 5 minutes.
				if failedRounds%30 == 0 {
					log.Warn("no volfile server answers; volume changes (replace-brick, quorum) are not applied until one does",
						zap.Stringers("servers", servers), zap.Int("rounds", failedRounds+1), zap.Error(lastErr))
				}
				failedRounds++
			} else if i > 0 {
				failedRounds = 0
			}
			if i > 0 {
				// A full round: wait before the next one, longer each time
				// nothing lasted.
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, o.Retry)
			}
			failedRound = true
		}
		dctx, cancel := context.WithTimeout(ctx, o.Check)
		conn, err := sunrpc.Dial(dctx, s.String(), 0, sunrpc.Options{Log: log, OnCallback: onCallback, TLS: o.TLS.TLS()})
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("%s: %w", s, ExplainMgmt(o.TLS, err))
			continue
		}
		log.Debug("following the volfile", zap.Stringer("remote", s))
		if check(conn) {
			failedRound = false
			wait = time.Second
			if err := followOn(ctx, conn, changed, check, o.Check); err != nil && ctx.Err() == nil {
				lvl := zap.WarnLevel
				if errors.Is(err, sunrpc.ErrPeerClosed) {
					lvl = zap.InfoLevel // glusterd restarting
				}
				log.Log(lvl, "lost the volfile server; following the volfile from the next one", zap.Stringer("remote", s), zap.Error(err))
			}
		}
		_ = conn.Close()
	}
}

// followOn serves one glusterd connection until it breaks or ctx ends. It
// returns why the connection is no good, or nil when ctx ended or check
// failed (check logs its own failures).
func followOn(ctx context.Context, conn *sunrpc.Conn, changed <-chan struct{}, check func(*sunrpc.Conn) bool, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-conn.Done():
			return conn.Err()
		case <-changed:
			if !check(conn) {
				return nil
			}
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, every)
			err := Ping(pctx, conn)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("no answer to a ping within %v", every)
			}
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
		}
	}
}

// The management programs of glusterd and bricks
// (rpc/rpc-lib/src/protocol-common.h, xdr-common.h), defined once here;
// package brick uses the same.
const (
	ProgDump      = 123451501 // GLUSTER_DUMP_PROGRAM
	VersDump      = 1
	ProcDump      = 1        // GF_DUMP_DUMP
	ProcPing      = 2        // GF_DUMP_PING
	ProgHandshake = 14398633 // GLUSTER_HNDSK_PROGRAM
	VersHandshake = 2
	ProcGetSpec   = 2        // GF_HNDSK_GETSPEC
	ProgCallback  = 52743234 // GLUSTER_CBK_PROGRAM
	CbkFetchSpec  = 1        // GF_CBK_FETCHSPEC
)

// MgmtCred is the credential of management calls: AUTH_GLUSTERFS v2 as
// root, lock owner 0.
var MgmtCred = sunrpc.CredV2(0, 0, 0, nil, []byte{0, 0, 0, 0})

// Ping sends GF_DUMP_PING, the keepalive glusterfs clients use, to a
// glusterd or a brick.
func Ping(ctx context.Context, conn *sunrpc.Conn) error {
	body, err := conn.Call(ctx, ProgDump, VersDump, ProcPing, MgmtCred, nil, nil)
	if err != nil {
		return err
	}
	d := xdr.NewDecoder(body)
	ret, errno := d.Int32(), d.Int32()
	if d.Err() != nil {
		return d.Err()
	}
	if ret < 0 {
		return syscall.Errno(errno)
	}
	return nil
}
