package brick

import (
	"sync/atomic"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
)

// clientStats are a Client's figures: atomics only, so the fop path pays
// a few uncontended adds and never a lock.
type clientStats struct {
	connects    atomic.Uint64 // connections made
	disconnects atomic.Uint64 // connections lost
	since       atomic.Int64  // unix ns the connection up now was made; 0 while down
	port        atomic.Int64  // the brick's port at the last connect
	pingRTT     atomic.Int64  // ns, the last ping answered on the connection up now; 0 while down
	calls       atomic.Uint64 // fops sent
	errs        atomic.Uint64 // fops that failed (on the wire or with op_ret < 0)
	bytesOut    atomic.Uint64 // fop arguments and payloads sent
	bytesIn     atomic.Uint64 // fop replies received
	lastErrAt   atomic.Int64  // unix ns of Client.lastErr
	downStall   atomic.Int64  // ns, the silence of the last connection when it broke
}

func (s *clientStats) connected(port int) {
	s.port.Store(int64(port))
	s.since.Store(time.Now().UnixNano())
	s.connects.Add(1)
}

func (s *clientStats) disconnected() {
	s.since.Store(0)
	s.pingRTT.Store(0) // no round trip to a brick that is not there
	s.disconnects.Add(1)
}

func (s *clientStats) call(sent, received int, err error) {
	s.calls.Add(1)
	s.bytesOut.Add(uint64(sent))
	s.bytesIn.Add(uint64(received))
	if err != nil {
		s.errs.Add(1)
	}
}

// DownStall is how long the last connection's calls had waited with no
// reply when it broke (sunrpc.Conn.SilenceAtBreak): for a hung brick, the
// stall before the ping timeout dropped it; zero when nothing waited. A
// replica set reads it when the brick goes down.
func (c *Client) DownStall() time.Duration { return time.Duration(c.stats.downStall.Load()) }

// setErr records why a connect failed or the connection broke.
func (c *Client) setErr(err error) {
	c.lastErr.Store(&err)
	c.stats.lastErrAt.Store(time.Now().UnixNano())
}

// Stats returns the client's figures, for `brickfs status`, the metrics
// and the statedump. It takes Client.mu only to read the connection.
func (c *Client) Stats() fop.BrickStats {
	host, _, path := c.Target()
	s := fop.BrickStats{
		Host: host, Port: int(c.stats.port.Load()), Path: path,
		PingRTT:  time.Duration(c.stats.pingRTT.Load()),
		Inflight: len(c.slots),
		Calls:    c.stats.calls.Load(), Errors: c.stats.errs.Load(),
		BytesSent: c.stats.bytesOut.Load(), BytesReceived: c.stats.bytesIn.Load(),
		Disconnects: c.stats.disconnects.Load(),
	}
	if n := c.stats.connects.Load(); n > 1 {
		s.Reconnects = n - 1
	}
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		s.Connected = true
		s.Pending = conn.Pending()
		if ns := c.stats.since.Load(); ns != 0 {
			s.Since = time.Unix(0, ns)
		}
	}
	if p := c.lastErr.Load(); p != nil && *p != nil {
		s.LastError = (*p).Error()
		s.LastErrorAt = time.Unix(0, c.stats.lastErrAt.Load())
	}
	return s
}
