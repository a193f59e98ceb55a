package brick

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/sunrpc"
	"github.com/brickfs/brickfs/brick/tlsconf"
	"github.com/brickfs/brickfs/brick/volfile"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Config describes one brick: the options of its protocol/client translator
// in the volfile plus brickfs's own timing.
type Config struct {
	// Name is the client translator's name in the volfile, e.g.
	// "cinder-client-1": the brick's identity in errors and logs.
	Name string
	// RemoteHost is the glusterd host that knows the brick's port.
	RemoteHost string
	// RemotePort is glusterd's port; 0 means 24007.
	RemotePort int
	// RemoteSubvolume is the brick path, e.g. "/bricks/b1".
	RemoteSubvolume string
	// Username and Password come from a trusted volfile; empty when absent.
	Username, Password string
	// VolfileKey is the key the volfile was fetched with, e.g. "/cinder".
	VolfileKey string
	// VolumeID is checked by the brick when set.
	VolumeID string
	// TLS, when set, is used on the brick connection (the volfile's
	// transport.socket.ssl-enabled).
	TLS *tlsconf.Config
	// MgmtTLS, when set, is used on the connection to glusterd that asks
	// for the brick's port: management TLS, a host-wide setting
	// (tlsconf.Management). GlusterFS's client presents the volume's
	// ssl.own-cert there when the volume names one; brickfs presents the
	// host's, as on its other glusterd connections.
	MgmtTLS *tlsconf.Config
	// TLSDir holds this host's glusterfs.pem, glusterfs.key and
	// glusterfs.ca, for a volume with client.ssl on that does not name
	// its own files; "" means tlsconf.DefaultDir. ConfigFrom reads it.
	TLSDir string
	// Subdir, when set ("/a/b"), makes the brick serve that directory of
	// the volume as the root (subdir-mount): the root gfid this client
	// sends stands for it.
	Subdir string
	// Options are every option of the client translator, sent in SETVOLUME
	// as the native client does.
	Options [][2]string
	// PingInterval is how often the brick is pinged; 0 means 2s.
	PingInterval time.Duration
	// PingTimeout is how long calls may wait with nothing arriving from the
	// brick before the connection is dropped; 0 means 42s (GF_NETWORK_TIMEOUT).
	PingTimeout time.Duration
	// ReconnectMax caps the reconnect backoff; 0 means 3s (rpc-clnt's period).
	ReconnectMax time.Duration
	// DialTimeout bounds one TCP connect; 0 means 5s.
	DialTimeout time.Duration
	// MaxInflight bounds the fops in flight to the brick; 0 means 48. A
	// brick stops reading a connection with 64 requests outstanding
	// (server.outstanding-rpc-limit), which would also hold up pings.
	MaxInflight int
	// FilterODirect strips O_DIRECT from what the brick is asked to
	// open, read and write (the volfile's filter-O_DIRECT, set by
	// network.remote-dio enable).
	FilterODirect bool
}

func (c *Config) fill() {
	if c.RemotePort == 0 {
		c.RemotePort = 24007
	}
	if c.PingInterval == 0 {
		c.PingInterval = 2 * time.Second
	}
	if c.PingTimeout == 0 {
		c.PingTimeout = 42 * time.Second
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 3 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = 48
	}
}

// Client is a connection to one brick that survives reconnects.
//
// LOCK ORDERING: Client.mu before Fd.mu is never taken; Fd.mu may be held
// while calling Client methods that take Client.mu briefly.
type Client struct {
	cfg Config
	log *zap.Logger
	ctx string // CTX_ID part of process-uuid, unique per Client

	mu     sync.Mutex
	conn   *sunrpc.Conn  // GUARDED_BY(mu); nil while down
	gen    uint64        // GUARDED_BY(mu); a new connGen on every successful connect
	up     chan struct{} // GUARDED_BY(mu); closed when conn is set
	recon  int           // GUARDED_BY(mu); RECON_NO
	xid    uint32        // GUARDED_BY(mu); next xid, kept across reconnects
	closed bool          // GUARDED_BY(mu)
	moved  *Config       // GUARDED_BY(mu); where Retarget sent the client, if it did
	moves  uint64        // GUARDED_BY(mu); Retarget calls so far

	slots    chan struct{}          // fops in flight, at most MaxInflight
	volumeID atomic.Pointer[string] // as the brick reported it in SETVOLUME
	lastErr  atomic.Pointer[error]  // why the last connect failed or the connection broke
	stats    clientStats
	stop     chan struct{}
	stopCtx  context.Context // ends with stop: a reconnect under way gives up at Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	watchMu  sync.Mutex
	watchers []func(up bool) // GUARDED_BY(watchMu)
}

var _ fop.Subvolume = (*Client)(nil)

// Watch registers fn to be called with true each time the brick comes up
// and false each time it goes down. Register before Start to hear every
// event; fn must not block.
func (c *Client) Watch(fn func(up bool)) {
	c.watchMu.Lock()
	c.watchers = append(c.watchers, fn)
	c.watchMu.Unlock()
}

func (c *Client) notify(up bool) {
	c.watchMu.Lock()
	ws := c.watchers
	c.watchMu.Unlock()
	for _, fn := range ws {
		fn(up)
	}
}

// New returns a Client for cfg; Start connects it.
func New(cfg Config, log *zap.Logger) *Client {
	cfg.fill()
	if log == nil {
		log = zap.NewNop()
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	stopCtx, cancel := context.WithCancel(context.Background())
	return &Client{
		cfg:     cfg,
		log:     log.With(zap.String("brick", cfg.Name)),
		ctx:     hex.EncodeToString(id[:]),
		up:      make(chan struct{}),
		xid:     1,
		slots:   make(chan struct{}, cfg.MaxInflight),
		stop:    make(chan struct{}),
		stopCtx: stopCtx,
		cancel:  cancel,
	}
}

// Name is the brick's client translator name.
func (c *Client) Name() string { return c.cfg.Name }

// Start makes the first connection and, if it succeeds, keeps the brick
// connected in the background until Close. A first connection that fails is
// returned as an error and nothing keeps running.
func (c *Client) Start(ctx context.Context) error {
	if err := c.connect(ctx); err != nil {
		return err
	}
	c.wg.Add(1)
	go c.keeper()
	return nil
}

// StartBackground keeps trying to connect in the background until Close,
// for a brick that may be down when the volume is mounted.
func (c *Client) StartBackground() {
	c.wg.Add(1)
	go c.keeper()
}

// Close drops the connection and stops the background work.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	conn := c.conn
	c.mu.Unlock()
	close(c.stop)
	c.cancel()
	if conn != nil {
		_ = conn.Close()
	}
	c.wg.Wait()
	return nil
}

// VolumeID is the volume-id the brick reported when it accepted us, or "".
func (c *Client) VolumeID() string {
	if p := c.volumeID.Load(); p != nil {
		return *p
	}
	return ""
}

// Up reports whether the brick is connected.
func (c *Client) Up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// Kick drops the current connection, as a dead brick's would be: pending
// calls fail with ENOTCONN, the brick releases this client's locks and fds,
// and the client reconnects in the background. The disconnection is logged
// once, with reason.
func (c *Client) Kick(reason string) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn != nil {
		go conn.Abort(fmt.Errorf("dropping brick connection: %s", reason))
	}
}

// current returns the live connection and its generation.
func (c *Client) current() (*sunrpc.Conn, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == nil {
		err := errors.New("not connected")
		if p := c.lastErr.Load(); p != nil {
			err = *p
		}
		return nil, 0, &OpError{Brick: c.cfg.Name, Errno: syscall.ENOTCONN, Err: err}
	}
	return c.conn, c.gen, nil
}

// WaitUp waits until the brick is connected or ctx ends.
func (c *Client) WaitUp(ctx context.Context) error {
	c.mu.Lock()
	up := c.up
	c.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// target is where the client connects now: its Config, with the brick
// fields a volfile change may have moved (Retarget).
func (c *Client) target() Config {
	cfg, _ := c.targetGen()
	return cfg
}

// targetGen is target with the count of Retarget calls it reflects.
func (c *Client) targetGen() (Config, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfg
	if c.moved != nil {
		t := c.moved
		cfg.RemoteHost, cfg.RemotePort, cfg.RemoteSubvolume = t.RemoteHost, t.RemotePort, t.RemoteSubvolume
		cfg.Username, cfg.Password, cfg.Options, cfg.TLS = t.Username, t.Password, t.Options, t.TLS
		if t.VolumeID != "" {
			cfg.VolumeID = t.VolumeID
		}
	}
	return cfg, c.moves
}

// Target reports the host, glusterd port and brick path the client
// connects to.
func (c *Client) Target() (host string, port int, subvolume string) {
	t := c.target()
	return t.RemoteHost, t.RemotePort, t.RemoteSubvolume
}

// Config returns the configuration the client connects with now (after
// any Retarget).
func (c *Client) Config() Config { return c.target() }

// Connection reports whether the brick is connected and a number that
// changes with every new connection.
func (c *Client) Connection() (up bool, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil, c.gen
}

// Retarget points the client at another brick, as a replace-brick or
// reset-brick in the volfile does: the connection is dropped and the next
// one goes to cfg's host and brick path, with cfg's credentials and
// options. What the old brick held for this client (locks, fds) goes with
// the old connection; fds are reopened on the new brick by gfid.
func (c *Client) Retarget(cfg Config) {
	cfg.fill()
	c.mu.Lock()
	c.moved = &cfg
	c.moves++
	c.mu.Unlock()
	c.Kick(fmt.Sprintf("the volfile moved the brick to %s:%s", cfg.RemoteHost, cfg.RemoteSubvolume))
}

func glusterdAddr(cfg Config) string {
	return net.JoinHostPort(cfg.RemoteHost, strconv.Itoa(cfg.RemotePort))
}

// connect runs PORTBYBRICK on glusterd, then DUMP and SETVOLUME on the brick.
func (c *Client) connect(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			c.setErr(err)
		}
	}()
	cfg, moves := c.targetGen()
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	// A peer that accepts and then says nothing, or never finishes a
	// record, runs into the dial timeout: say so.
	timedOut := func(err error) error {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("%w: no complete answer within the dial timeout (%v)", err, cfg.DialTimeout)
		}
		return err
	}
	c.mu.Lock()
	xid := c.xid
	c.mu.Unlock()

	gd, err := sunrpc.Dial(dctx, glusterdAddr(cfg), xid, sunrpc.Options{Log: c.log, TLS: cfg.MgmtTLS.TLS()})
	if err != nil {
		return fmt.Errorf("brick %s: cannot reach glusterd at %s to find the brick's port: %w", c.cfg.Name, glusterdAddr(cfg), volfile.ExplainMgmt(cfg.MgmtTLS, err))
	}
	port, err := PortByBrick(dctx, gd, cfg.RemoteSubvolume)
	xid = gd.NextXid()
	_ = gd.Close()
	if err != nil {
		return fmt.Errorf("brick %s: glusterd at %s: %w", c.cfg.Name, glusterdAddr(cfg), volfile.ExplainMgmt(cfg.MgmtTLS, timedOut(err)))
	}
	addr := net.JoinHostPort(cfg.RemoteHost, strconv.Itoa(port))
	conn, err := sunrpc.Dial(dctx, addr, xid, sunrpc.Options{Log: c.log, OnCallback: c.onCallback, TLS: cfg.TLS.TLS()})
	if err != nil {
		return fmt.Errorf("brick %s (%s:%s): connect: %w", c.cfg.Name, addr, cfg.RemoteSubvolume, cfg.TLS.ExplainHandshake(err))
	}
	// In TLS 1.3 the brick judges this host's certificate after the
	// client's side of the handshake: a refusal comes as the answer to
	// the first call.
	progs, err := Dump(dctx, conn)
	if err != nil && cfg.TLS != nil && errors.Is(err, sunrpc.ErrDisconnected) {
		// Hung up on with no alert read (the reset can beat it).
		err = cfg.TLS.ExplainHangup(err)
	}
	if err == nil && !hasProgram(progs, ProgFOP, VersFOP) {
		err = fmt.Errorf("the brick does not offer the GlusterFS 4.x FOP program (%d/%d); brickfs needs GlusterFS 4.0 or later", ProgFOP, VersFOP)
	}
	if err == nil {
		err = c.setVolume(dctx, conn, cfg)
	}
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("brick %s (%s:%s): %w", c.cfg.Name, addr, cfg.RemoteSubvolume, timedOut(err))
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = conn.Close()
		return errors.New("client closed")
	}
	if c.moves != moves {
		// Retarget ran while this attempt was under way: it reached the
		// old brick. The next attempt goes to the new one.
		c.mu.Unlock()
		_ = conn.Close()
		return fmt.Errorf("brick %s moved while connecting to %s:%s", cfg.Name, addr, cfg.RemoteSubvolume)
	}
	c.conn = conn
	c.gen = connGen.Add(1)
	close(c.up)
	c.mu.Unlock()
	c.stats.connected(port)
	c.log.Info("brick connected", zap.String("remote", addr), zap.String("subvol", cfg.RemoteSubvolume))
	c.notify(true)
	return nil
}

func hasProgram(ps []Program, num, vers uint64) bool {
	for _, p := range ps {
		if p.Num == num && p.Vers == vers {
			return true
		}
	}
	return false
}

// connGen numbers connections across every Client of the process, so an
// Fd opened through one Client is never taken for open on another's
// connection (a brick replaced in the volfile gets a new Client, and the
// Fds of the old one are reopened there).
var connGen atomic.Uint64

// ErrAuth is wrapped by SETVOLUME failures that retrying cannot fix.
var ErrAuth = errors.New("brick refused the client")

func (c *Client) setVolume(ctx context.Context, conn *sunrpc.Conn, cfg Config) error {
	c.mu.Lock()
	c.recon++
	recon := c.recon
	c.mu.Unlock()
	host, _ := os.Hostname()
	d := xdr.OldDict{}.
		Set("opversion", "100000").
		Set("clnt-lk-version", "1").
		Set("volfile-checksum", "0").
		Set("volfile-key", cfg.VolfileKey)
	if cfg.VolumeID != "" {
		d = d.Set("volume-id", cfg.VolumeID)
	}
	d = d.Set("client-version", "10.3").
		Set("process-name", "fuse").
		Set("process-uuid", fmt.Sprintf("CTX_ID:%s-GRAPH_ID:0-PID:%d-HOST:%s-PC_NAME:%s-RECON_NO:-%d",
			c.ctx, os.Getpid(), host, c.cfg.Name, recon)).
		Set("fops-version", strconv.Itoa(ProgFOP))
	for _, kv := range cfg.Options {
		d = d.Set(kv[0], kv[1])
	}
	if cfg.Subdir != "" {
		d = d.Set("subdir-mount", cfg.Subdir)
	}
	d = d.Set("remote-subvolume", cfg.RemoteSubvolume)
	if cfg.Username != "" {
		d = d.Set("username", cfg.Username).Set("password", cfg.Password)
	}
	e := xdr.NewEncoder(1024)
	e.Opaque(d.Marshal())
	body, err := conn.Call(ctx, ProgHandshake, VersHandshake, ProcSetVolume, c.internalCred(0, 0), e.B, nil)
	if err != nil {
		return fmt.Errorf("SETVOLUME: %w", err)
	}
	dec := xdr.NewDecoder(body)
	ret, errno := dec.Int32(), dec.Int32()
	reply, derr := xdr.UnmarshalOldDict(dec.Opaque(1 << 20))
	if dec.Err() != nil {
		return fmt.Errorf("SETVOLUME: bad reply: %v", dec.Err())
	}
	if derr != nil {
		return fmt.Errorf("SETVOLUME: bad reply dict: %v", derr)
	}
	if ret >= 0 {
		if id, ok := reply.Get("volume-id"); ok {
			c.volumeID.Store(&id)
		}
		return nil
	}
	msg, _ := reply.Get("ERROR")
	en := syscall.Errno(errno)
	switch en {
	case syscall.EACCES:
		return authError(cfg, conn, msg)
	case syscall.ENOENT:
		if cfg.Subdir != "" && strings.HasPrefix(msg, "subdirectory for mount") {
			return fmt.Errorf("%w: %s: the directory %s does not exist on this brick; create it through a mount of the whole volume, or if other bricks have it, heal the volume (gluster volume heal VOLUME)", ErrAuth, msg, cfg.Subdir)
		}
		return fmt.Errorf("%w: %s (%v)", ErrAuth, msg, en)
	}
	return fmt.Errorf("SETVOLUME refused: %s (%v)", msg, en)
}

// authError explains a SETVOLUME refused with EACCES. The brick's auth
// modules (gf_authenticate in xlators/protocol/server/src/authenticate.c)
// answer "Authentication failed" whichever refused: the address module
// (auth.allow, auth.reject), or the login module, which checks the
// certificate's name against auth.ssl-allow on a TLS connection and the
// volfile's username and password otherwise. So the error names every
// check that could have refused this client.
func authError(cfg Config, conn *sunrpc.Conn, msg string) error {
	if msg == "" {
		msg = "Authentication failed"
	}
	vol := strings.TrimPrefix(cfg.VolfileKey, "/")
	if vol == "" {
		vol = "VOLUME"
	}
	addr := "this host's address"
	if h, _, err := net.SplitHostPort(conn.LocalAddr().String()); err == nil {
		addr = "this host's address " + h
	}
	checks := []string{fmt.Sprintf("auth.allow and auth.reject of volume %s must admit %s (see `gluster volume get %s auth.allow` and auth.reject; set them with `gluster volume set %s auth.allow ADDRESSES`)", vol, addr, vol, vol)}
	switch {
	case cfg.TLS != nil:
		checks = append(checks, fmt.Sprintf("auth.ssl-allow must list this host's certificate name %q (`gluster volume set %s auth.ssl-allow NAMES`)", cfg.TLS.CommonName(), vol))
	case cfg.Username != "":
		checks = append(checks, "the volfile's username/password (auth.login) must be the brick's: remount to fetch the volfile anew from a glusterd of this cluster")
	}
	return fmt.Errorf("%w: %s (EACCES): %s", ErrAuth, msg, strings.Join(checks, "; "))
}

// keeper pings the live connection and reconnects when it breaks.
func (c *Client) keeper() {
	defer c.wg.Done()
	for {
		conn, _, err := c.current()
		if err == nil {
			c.watch(conn)
			c.mu.Lock()
			if c.conn == conn {
				c.conn = nil
				c.up = make(chan struct{})
				c.xid = conn.NextXid()
			}
			closed := c.closed
			c.mu.Unlock()
			_ = conn.Close()
			if closed {
				return
			}
			cerr := conn.Err()
			c.setErr(cerr)
			c.stats.downStall.Store(int64(conn.SilenceAtBreak())) // before the watchers hear
			c.stats.disconnected()
			c.log.Warn("brick disconnected", zap.Stringer("remote", conn.RemoteAddr()), zap.Error(cerr))
			c.notify(false)
		}
		if !c.reconnect() {
			return
		}
	}
}

// watch checks conn's health until it breaks or the client stops. A ping
// goes out every PingInterval, each in its own goroutine so that a hung
// brick cannot hold up the checks. The brick is declared dead when calls
// (pings included) have waited PingTimeout with no reply arriving: any
// reply proves it alive, so a brick slowed by a saturating load is never
// dropped for a late ping, while a hung or silent one is dropped
// PingTimeout after its last reply, and so is one that sends anything but
// replies (callbacks only, a record that never ends).
func (c *Client) watch(conn *sunrpc.Conn) {
	check := c.cfg.PingTimeout / 30 // a hung brick is dropped at most 3 % late
	if check > c.cfg.PingInterval {
		check = c.cfg.PingInterval
	}
	if check < 10*time.Millisecond {
		check = 10 * time.Millisecond
	}
	t := time.NewTicker(check)
	defer t.Stop()
	var lastPing time.Time
	for {
		select {
		case <-c.stop:
			return
		case <-conn.Done():
			return
		case now := <-t.C:
			if now.Sub(lastPing) >= c.cfg.PingInterval {
				lastPing = now
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*c.cfg.PingTimeout)
					defer cancel()
					start := time.Now()
					if Ping(ctx, conn) == nil {
						select {
						case <-conn.Done(): // a late answer: the connection is gone
						default:
							c.stats.pingRTT.Store(int64(time.Since(start)))
						}
					}
				}()
			}
			if s := conn.Silence(now); s > c.cfg.PingTimeout {
				// The keeper logs it, with this reason.
				conn.Abort(fmt.Errorf("brick stopped answering: no reply for %v with calls waiting (ping-timeout %v)",
					s.Round(time.Millisecond), c.cfg.PingTimeout))
				return
			}
		}
	}
}

// reconnect retries with capped, jittered backoff until it succeeds or the
// client stops. It returns false when the client stopped.
func (c *Client) reconnect() bool {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		select {
		case <-c.stop:
			return false
		default:
		}
		err := c.connect(c.stopCtx)
		if err == nil {
			return true
		}
		select {
		case <-c.stop:
			return false
		default:
		}
		if attempt == 1 || attempt%20 == 0 {
			c.log.Warn("brick reconnect failed, retrying", zap.Int("attempt", attempt), zap.Error(err))
		}
		j, _ := rand.Int(rand.Reader, big.NewInt(int64(backoff/2)+1))
		select {
		case <-c.stop:
			return false
		case <-time.After(backoff/2 + time.Duration(j.Int64())):
		}
		if backoff *= 2; backoff > c.cfg.ReconnectMax {
			backoff = c.cfg.ReconnectMax
		}
	}
}

func (c *Client) onCallback(call sunrpc.Call) {
	if ce := c.log.Check(zap.DebugLevel, "brick callback"); ce != nil {
		ce.Write(zap.Uint32("prog", call.Prog), zap.Uint32("proc", call.Proc))
	}
}

// internalCred is the v2 credential of an internal frame (pid 0, lk-owner
// the pid as 4 little-endian bytes, as rpc-clnt sends when a frame has none).
func (c *Client) internalCred(uid, gid uint32) sunrpc.Cred {
	return sunrpc.CredV2(0, uid, gid, nil, []byte{0, 0, 0, 0})
}
