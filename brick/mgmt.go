package brick

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Program is one entry of a DUMP reply (gf_prog_detail, rpc/xdr/src/glusterfs3-xdr.x).
type Program struct {
	Name      string
	Num, Vers uint64
}

var mgmtCred = volfile.MgmtCred

// Dump asks a server which RPC programs it serves (GF_DUMP_DUMP).
func Dump(ctx context.Context, conn *sunrpc.Conn) ([]Program, error) {
	e := xdr.NewEncoder(8)
	e.Uint64(0xcaed) // gfs_id, as the native client sends
	body, err := conn.Call(ctx, ProgDump, VersDump, ProcDump, mgmtCred, e.B, nil)
	if err != nil {
		return nil, fmt.Errorf("DUMP: %w", err)
	}
	progs, err := DecodeDump(body)
	if err != nil {
		return nil, fmt.Errorf("DUMP: %w", err)
	}
	return progs, nil
}

// DecodeDump decodes a gf_dump_rsp.
func DecodeDump(body []byte) ([]Program, error) {
	d := xdr.NewDecoder(body)
	_ = d.Uint64()
	ret, errno := d.Int32(), d.Int32()
	var progs []Program
	for i := 0; d.Bool(); i++ {
		if i > 1024 {
			return nil, errors.New("program list too long")
		}
		progs = append(progs, Program{Name: d.String(1024), Num: d.Uint64(), Vers: d.Uint64()})
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	if ret < 0 {
		return nil, syscall.Errno(errno)
	}
	return progs, nil
}

// Ping sends GF_DUMP_PING, the keepalive glusterfs clients use.
func Ping(ctx context.Context, conn *sunrpc.Conn) error { return volfile.Ping(ctx, conn) }

// PortByBrick asks glusterd for the port of the brick at path (PORTBYBRICK).
func PortByBrick(ctx context.Context, conn *sunrpc.Conn, path string) (int, error) {
	e := xdr.NewEncoder(8 + len(path))
	e.String(path)
	body, err := conn.Call(ctx, ProgPortmap, VersPortmap, ProcPortByBrick, mgmtCred, e.B, nil)
	if err != nil {
		return 0, fmt.Errorf("PORTBYBRICK %s: %w", path, err)
	}
	port, err := DecodePortByBrick(body)
	if err != nil {
		return 0, fmt.Errorf("PORTBYBRICK %s: %w", path, err)
	}
	return port, nil
}

// ErrNoBrickPort means glusterd knows no running brick for the path.
var ErrNoBrickPort = errors.New("glusterd has no port for this brick: it is not running (check `gluster volume status`)")

// DecodePortByBrick decodes a pmap_port_by_brick_rsp.
func DecodePortByBrick(body []byte) (int, error) {
	d := xdr.NewDecoder(body)
	ret, _, _, port := d.Int32(), d.Int32(), d.Int32(), d.Int32()
	if d.Err() != nil {
		return 0, d.Err()
	}
	if ret < 0 || port <= 0 || port > 65535 {
		return 0, ErrNoBrickPort
	}
	return int(port), nil
}
