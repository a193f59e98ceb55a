package fuse

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// brickfs serves /dev/fuse itself: it mounts, reads requests into its own
// buffers (bufpool.go) and writes the replies, and hands each request to
// go-fuse's ProtocolServer, which decodes it and calls the node bridge. So
// a request's buffers are sized by what it carries and reused, instead of
// go-fuse's pools of max_write per request and of a reply per page count.

// Server is a mounted filesystem.
type Server struct {
	dir    string
	fd     int  // /dev/fuse; closed once every loop has returned
	direct bool // mounted by mount(2), not by fusermount3
	ps     *gofuse.ProtocolServer
	raw    gofuse.RawFileSystem
	fsys   *FS
	bufs   *bufPool
	log    *zap.Logger

	readSize   int // the buffer a request is read into
	maxWaiting int // readers blocked in read(2) at most

	mu       sync.Mutex
	waiting  int                 // GUARDED_BY(mu)
	inflight map[uint64]struct{} // GUARDED_BY(mu); the uniques of the requests being handled
	dead     bool                // GUARDED_BY(mu); the connection ended
	loops    sync.WaitGroup
	done     chan struct{} // closed when the loops have returned and fd is closed

	unmountMu sync.Mutex
	unmounted bool // GUARDED_BY(unmountMu)

	gone chan struct{}
}

// smallRequest is the largest request copied out of its read buffer
// (max_write and a page) into one of its own size, so that the read buffer
// goes back at once: every request but a large WRITE.
const smallRequest = 64<<10 + pageBytes

// replyRoom is the room for a reply's header and fixed part (the largest,
// CREATE's, is 160 bytes), to which READ, READDIR, the xattr lists and
// IOCTL add the payload their request names. A handler may use the whole
// buffer (at least two pages): READLINK's payload, up to a page, is known
// only from its answer.
const replyRoom = pageBytes

// maxReaders bounds the readers waiting on /dev/fuse, as go-fuse does.
const maxReaders = 16

// keepWarm is how many bytes of idle FUSE buffers keep their pages.
const keepWarm = 4 << 20

// Mount mounts f at dir (type fuse.TYPE) and serves it.
func (f *FS) Mount(dir string, mc MountConfig) (*Server, error) {
	if mc.Type == "" {
		mc.Type = "brickfs"
	}
	mo := gofuse.MountOptions{
		FsName:      mc.FsName,
		Name:        mc.Type,
		EnableLocks: true,
		MaxWrite:    f.opts.MaxWrite,
		// Async direct I/O lets a VM's queue depth reach the bricks: without
		// it the kernel serializes O_DIRECT requests of one file. The native
		// fuse-bridge asks for it too, with the same background queue.
		ExtraCapabilities:   gofuse.CAP_ASYNC_DIO,
		MaxBackground:       64,
		CongestionThreshold: 48,
		EnableAcl:           mc.ACL,
		Logger:              zap.NewStdLog(f.log.Named("go-fuse")),
	}
	raw := &rawFS{RawFileSystem: newNodeFS(f), fsys: f}
	s := &Server{
		dir:        filepath.Clean(dir),
		ps:         gofuse.NewProtocolServer(raw, &mo),
		raw:        raw,
		fsys:       f,
		bufs:       f.bufs,
		log:        f.log,
		readSize:   max(f.opts.MaxWrite+pageBytes, 8192),
		maxWaiting: min(max(2, runtime.GOMAXPROCS(0)), maxReaders),
		inflight:   map[uint64]struct{}{},
		done:       make(chan struct{}),
		gone:       make(chan struct{}),
	}
	if bufClass(s.readSize) < 0 {
		return nil, fmt.Errorf("a largest request of %d bytes is more than brickfs serves (max-request up to 1M)", f.opts.MaxWrite)
	}
	if !filepath.IsAbs(s.dir) {
		abs, err := filepath.Abs(s.dir)
		if err != nil {
			return nil, err
		}
		s.dir = abs
	}
	opts := mountOptions(mc, f.opts.MaxWrite)
	var err error
	if os.Geteuid() == 0 {
		// The mount flags apply only to a direct mount: never fall back
		// to fusermount3, which would mount without them (a ro mount
		// read-write) and hide the kernel's errno.
		s.direct = true
		s.fd, err = mountDirect(s.dir, mc, opts)
	} else {
		// Not root: fusermount3 mounts, and takes the flags as options.
		s.fd, err = mountFusermount(s.dir, mc, append(opts, flagOptions(mc.Flags)...))
	}
	if err != nil {
		return nil, err
	}
	// INIT first, here: it sets what every later request is decoded by,
	// before another reader runs.
	if err := s.init(); err != nil {
		s.detach()
		unix.Close(s.fd)
		return nil, err
	}
	watch, err := unix.FcntlInt(uintptr(s.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		f.log.Warn("cannot watch the FUSE connection; the daemon exits only once every request handler has returned", zap.Error(err))
	} else {
		go watchConnection(watch, s.gone, s.done, f.log)
	}
	s.loops.Add(1)
	go s.loop()
	go func() {
		s.loops.Wait()
		unix.Close(s.fd)
		s.raw.OnUnmount()
		close(s.done)
	}()
	go s.trimBuffers()
	// Tell the kernel this filesystem has no POLL before a file of the
	// mount is ever polled; it also shows the mount serves.
	if err := pollHack(s.dir); err != nil {
		if uerr := s.Unmount(); uerr != nil {
			s.detach()
		}
		return nil, fmt.Errorf("the new mount at %s does not answer (%v); the log says why", s.dir, err)
	}
	return s, nil
}

// trimInterval is how often idle FUSE buffers past keepWarm give their
// pages back.
const trimInterval = time.Second

func (s *Server) trimBuffers() {
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.bufs.trim()
		}
	}
}

// init reads and answers the kernel's INIT, the first request.
func (s *Server) init() error {
	buf, err := s.bufs.get(s.readSize)
	if err != nil {
		return err
	}
	n, err := readFuse(s.fd, buf)
	if err != nil {
		s.bufs.put(buf)
		return fmt.Errorf("reading the kernel's INIT from /dev/fuse: %v", err)
	}
	if n < int(unsafe.Sizeof(gofuse.InHeader{})) {
		s.bufs.put(buf)
		return fmt.Errorf("the kernel's first FUSE request is %d bytes, too short for INIT", n)
	}
	if op := (*gofuse.InHeader)(unsafe.Pointer(&buf[0])).Opcode; op != opINIT {
		s.bufs.put(buf)
		return fmt.Errorf("the kernel's first FUSE request is opcode %d, not INIT", op)
	}
	s.handle(buf, n)
	return nil
}

// detach takes a mount that never served away at once, busy or not.
func (s *Server) detach() {
	if s.direct {
		_ = unix.Unmount(s.dir, unix.MNT_DETACH)
		return
	}
	_ = exec.Command("fusermount3", "-u", "-z", s.dir).Run()
}

// mountOptions are the FUSE mount's options, as mount(2)'s data and
// fusermount3's -o share them.
func mountOptions(mc MountConfig, maxWrite int) []string {
	o := []string{fmt.Sprintf("max_read=%d", maxWrite)}
	if os.Geteuid() == 0 {
		o = append(o, "allow_other")
	}
	if !mc.ACL {
		o = append(o, "default_permissions")
	}
	return o
}

// mountDirect mounts dir with mount(2) on a new /dev/fuse descriptor.
func mountDirect(dir string, mc MountConfig, opts []string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return -1, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	fd, err := unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/fuse: %w (is the fuse module loaded? modprobe fuse)", err)
	}
	flags := mc.Flags
	if flags == 0 {
		flags = unix.MS_NOSUID | unix.MS_NODEV
	}
	data := append([]string{
		fmt.Sprintf("fd=%d", fd),
		fmt.Sprintf("rootmode=%o", st.Mode&unix.S_IFMT),
		fmt.Sprintf("user_id=%d", os.Geteuid()),
		fmt.Sprintf("group_id=%d", os.Getegid()),
	}, opts...)
	source := mc.FsName
	if source == "" {
		source = mc.Type
	}
	if err := unix.Mount(source, dir, "fuse."+mc.Type, flags, strings.Join(data, ",")); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount(2) of fuse.%s: %w", mc.Type, err)
	}
	return fd, nil
}

// mountFusermount has fusermount3 mount dir and pass back the /dev/fuse
// descriptor over a socket (its _FUSE_COMMFD protocol).
func mountFusermount(dir string, mc MountConfig, opts []string) (int, error) {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		return -1, fmt.Errorf("mounting as a user needs fusermount3 (apt-get install fuse3): %w", err)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair for fusermount3: %w", err)
	}
	local, remote := os.NewFile(uintptr(pair[0]), "fusermount3-local"), os.NewFile(uintptr(pair[1]), "fusermount3-remote")
	defer local.Close()
	defer remote.Close()
	if mc.FsName != "" {
		opts = append(opts, "fsname="+mc.FsName)
	}
	opts = append(opts, "subtype="+mc.Type)
	for i, o := range opts {
		opts[i] = strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(o)
	}
	cmd := exec.Command(bin, "-o", strings.Join(opts, ","), "--", dir)
	cmd.Env = []string{"_FUSE_COMMFD=3"}
	cmd.ExtraFiles = []*os.File{remote}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	remote.Close() // fusermount3's end: a Recvmsg after it exited without sending sees EOF
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "/dev/fuse") && strings.Contains(msg, "ermission denied") {
			mode := "not there"
			if fi, serr := os.Stat("/dev/fuse"); serr == nil {
				mode = fmt.Sprintf("mode %#o", fi.Mode().Perm())
			}
			return -1, fmt.Errorf("fusermount3: %s: an ordinary user needs to read and write /dev/fuse (%s; udev makes it 0666): chmod 0666 /dev/fuse, or mount as root", msg, mode)
		}
		return -1, fmt.Errorf("fusermount3: %v: %s", err, msg)
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(local.Fd()), buf, oob, 0)
	if err != nil {
		return -1, fmt.Errorf("fusermount3 passed no descriptor: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("fusermount3 passed no descriptor (%d messages, %v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("fusermount3 passed no descriptor (%d, %v)", len(fds), err)
	}
	unix.CloseOnExec(fds[0])
	return fds[0], nil
}

// pollHack opens go-fuse's hidden file in the mount and polls it, which
// the protocol server answers with ENOSYS: from then on the kernel does
// not send POLL, which a Go program that opens a file of its own mount
// would otherwise wait on.
func pollHack(dir string) error {
	fd, err := unix.Open(filepath.Join(dir, ".go-fuse-epoll-hack"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}, 0)
	return unix.Close(fd)
}

// Unmount asks the kernel to unmount; it fails while the mount is busy.
// Once it succeeds it waits for the loops, like Wait.
func (s *Server) Unmount() error {
	s.unmountMu.Lock()
	defer s.unmountMu.Unlock()
	if s.unmounted {
		return nil
	}
	var err error
	delay := time.Duration(0)
	for try := 0; try < 5; try++ {
		if err = s.unmount(); err == nil {
			break
		}
		// The kernel may not have seen the last files closed yet.
		delay = 2*delay + 5*time.Millisecond
		time.Sleep(delay)
	}
	if err != nil {
		return err
	}
	s.unmounted = true
	s.Wait()
	return nil
}

func (s *Server) unmount() error {
	if s.direct {
		return unix.Unmount(s.dir, 0)
	}
	out, err := exec.Command("fusermount3", "-u", s.dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("fusermount3 -u %s: %v: %s", s.dir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Wait returns once the filesystem has been unmounted and every request
// handler has returned: one still waiting on a brick holds it up.
func (s *Server) Wait() { <-s.done }

// Gone is closed when the kernel has ended the FUSE connection: the
// mount is gone (after a lazy unmount, only once nobody uses it any more)
// or was aborted. A request in flight then can no longer be answered. It
// is seen within connectionCheck.
func (s *Server) Gone() <-chan struct{} { return s.gone }

// loop reads requests and handles each in the goroutine that read it, as
// go-fuse does: a reader that finds no other waiting starts one before it
// handles its request, so the kernel always has a reader, and one that
// finds maxWaiting readers waiting when it is done returns.
func (s *Server) loop() {
	defer s.loops.Done()
	for {
		s.mu.Lock()
		if s.waiting >= s.maxWaiting {
			s.mu.Unlock()
			return
		}
		s.waiting++
		s.mu.Unlock()
		buf, err := s.bufs.get(s.readSize)
		for err != nil {
			s.log.Error("cannot map a buffer for FUSE requests; retrying", zap.Error(err))
			time.Sleep(100 * time.Millisecond)
			buf, err = s.bufs.get(s.readSize)
		}
		n, err := readFuse(s.fd, buf)
		s.mu.Lock()
		s.waiting--
		// A FORGET needs no answer: the kernel can send them faster than
		// they are handled, so they start no reader (as in go-fuse).
		spawn := err == nil && s.waiting == 0 && !isForget(buf[:n])
		if spawn {
			s.loops.Add(1)
		}
		s.mu.Unlock()
		if spawn {
			go s.loop()
		}
		if err != nil {
			s.bufs.put(buf)
			switch {
			case errors.Is(err, unix.ENOENT):
				// The request was interrupted before it was read.
				continue
			case errors.Is(err, unix.ENODEV):
				// Unmounted, or the connection was aborted: nobody can
				// take an answer any more.
				s.interruptAll()
				return
			default:
				s.log.Error("reading /dev/fuse failed; this reader stops", zap.Error(err))
				return
			}
		}
		s.handle(buf, n)
	}
}

func isForget(in []byte) bool {
	if len(in) < int(unsafe.Sizeof(gofuse.InHeader{})) {
		return false
	}
	op := (*gofuse.InHeader)(unsafe.Pointer(&in[0])).Opcode
	return op == opFORGET || op == opBATCH_FORGET
}

// interruptAll interrupts every request being handled, once the
// connection has ended, as go-fuse's server did: a handler that waits on
// its context (a lock wait) returns instead of holding the loops, and
// with them Wait, until a brick answers. It goes through the protocol
// server's own INTERRUPT, which closes the request's cancel channel.
//
// A request read just before the end may not be handled yet, or not be
// known to the protocol server yet, when the INTERRUPTs go (it answers
// EAGAIN, and the kernel, which would send it again, is gone): so the
// requests being handled are interrupted again every interruptRetry
// until the loops have returned (again is harmless: EAGAIN).
func (s *Server) interruptAll() {
	s.mu.Lock()
	if s.dead {
		s.mu.Unlock()
		return
	}
	s.dead = true
	s.mu.Unlock()
	go func() {
		out := make([]byte, 2*pageBytes)
		t := time.NewTicker(interruptRetry)
		defer t.Stop()
		for {
			s.mu.Lock()
			uniques := make([]uint64, 0, len(s.inflight))
			for u := range s.inflight {
				uniques = append(uniques, u)
			}
			s.mu.Unlock()
			for _, u := range uniques {
				in := gofuse.InterruptIn{InHeader: gofuse.InHeader{Opcode: opINTERRUPT, Unique: u | 1<<63}, Unique: u}
				in.Length = uint32(unsafe.Sizeof(in))
				b := unsafe.Slice((*byte)(unsafe.Pointer(&in)), unsafe.Sizeof(in))
				_, _ = s.ps.HandleRequest([][]byte{b}, [][]byte{out})
			}
			select {
			case <-s.done:
				return
			case <-t.C:
			}
		}
	}()
}

// interruptRetry is how often requests left on a dead connection are
// interrupted again.
const interruptRetry = 100 * time.Millisecond

// readFuse reads one request, retrying an interrupted read.
func readFuse(fd int, buf []byte) (int, error) {
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// handle answers the request of n bytes in buf and gives buf back.
func (s *Server) handle(buf []byte, n int) {
	in := buf[:n]
	if n <= smallRequest {
		if small, err := s.bufs.get(n); err == nil {
			copy(small, in)
			s.bufs.put(buf)
			buf, in = small, small
		}
	}
	defer func() {
		// A WRITE's data that a call still reads (to a brick cut for
		// lagging) keeps its buffer until the call ends.
		if holds := s.fsys.heldIn(buf); len(holds) > 0 {
			go func() {
				for _, h := range holds {
					h.Wait()
				}
				s.bufs.put(buf)
			}()
			return
		}
		s.bufs.put(buf)
	}()
	if n < int(unsafe.Sizeof(gofuse.InHeader{})) {
		s.log.Error("short FUSE request ignored", zap.Int("bytes", n))
		return
	}
	hdr := (*gofuse.InHeader)(unsafe.Pointer(&in[0]))
	out, err := s.bufs.get(replyRoom + replyPayload(in))
	if err != nil {
		s.log.Error("no room for a FUSE reply", zap.Uint32("opcode", hdr.Opcode), zap.Error(err))
		s.replyError(hdr, unix.EIO)
		return
	}
	defer s.bufs.put(out)
	unique := hdr.Unique
	s.mu.Lock()
	s.inflight[unique] = struct{}{}
	s.mu.Unlock()
	w, st := s.ps.HandleRequest([][]byte{in}, [][]byte{out[:cap(out)]})
	s.mu.Lock()
	delete(s.inflight, unique)
	s.mu.Unlock()
	if !st.Ok() {
		// The protocol server could not take the request apart (it says
		// why in go-fuse's log); the kernel still waits for an answer.
		s.replyError(hdr, syscall.Errno(st))
		return
	}
	if w == 0 {
		return // FORGET and the like: no reply
	}
	if w < int(unsafe.Sizeof(gofuse.OutHeader{})) || (*gofuse.OutHeader)(unsafe.Pointer(&out[0])).Length != uint32(w) {
		// A reply that did not fit (cut short by the protocol server):
		// the kernel would refuse it and the caller would wait forever.
		s.log.Error("a FUSE reply did not fit its buffer; answering EIO", zap.Uint32("opcode", hdr.Opcode), zap.Int("bytes", w), zap.Int("room", cap(out)))
		s.replyError(hdr, unix.EIO)
		return
	}
	if err := writeFuse(s.fd, out[:w]); err != nil {
		s.writeFailed(hdr.Opcode, err)
		if errors.Is(err, unix.EINVAL) {
			// The kernel refused the reply as malformed: the request is
			// still waiting; an error is a reply it takes.
			s.replyError(hdr, unix.EIO)
		}
	}
}

// replyPayload is the size of the data the reply to in may carry.
func replyPayload(in []byte) int {
	hdr := (*gofuse.InHeader)(unsafe.Pointer(&in[0]))
	switch hdr.Opcode {
	case opREAD, opREADDIR, opREADDIRPLUS:
		if len(in) >= int(unsafe.Sizeof(gofuse.ReadIn{})) {
			return int((*gofuse.ReadIn)(unsafe.Pointer(&in[0])).Size)
		}
	case opGETXATTR, opLISTXATTR:
		if len(in) >= int(unsafe.Sizeof(gofuse.GetXAttrIn{})) {
			return int((*gofuse.GetXAttrIn)(unsafe.Pointer(&in[0])).Size)
		}
	case opIOCTL:
		if len(in) >= int(unsafe.Sizeof(gofuse.IoctlIn{})) {
			return int((*gofuse.IoctlIn)(unsafe.Pointer(&in[0])).OutSize)
		}
	}
	return 0
}

// The FUSE opcodes whose replies carry data (linux/fuse.h).
const (
	opREAD         = 15
	opGETXATTR     = 22
	opLISTXATTR    = 23
	opREADDIR      = 28
	opIOCTL        = 39
	opREADDIRPLUS  = 44
	opINTERRUPT    = 36
	opINIT         = 26
	opFORGET       = 2
	opBATCH_FORGET = 42
	opRELEASE      = 18
	opRELEASEDIR   = 29
)

// replyError answers a request with errno alone.
func (s *Server) replyError(hdr *gofuse.InHeader, errno syscall.Errno) {
	var out gofuse.OutHeader
	out.Length = uint32(unsafe.Sizeof(out))
	out.Status = -int32(errno)
	out.Unique = hdr.Unique
	b := unsafe.Slice((*byte)(unsafe.Pointer(&out)), unsafe.Sizeof(out))
	if err := writeFuse(s.fd, b); err != nil {
		s.writeFailed(hdr.Opcode, err)
	}
}

func writeFuse(fd int, b []byte) error {
	for {
		_, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		return err
	}
}

// writeFailed logs a reply the kernel refused, except the ENOENT it
// answers for a request it has forgotten: an interrupted one, or a
// release racing the unmount.
func (s *Server) writeFailed(opcode uint32, err error) {
	if errors.Is(err, unix.ENOENT) && (opcode == opINTERRUPT || opcode == opRELEASE || opcode == opRELEASEDIR) {
		return
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) {
		s.log.Debug("FUSE reply not taken", zap.Uint32("opcode", opcode), zap.Error(err))
		return
	}
	s.log.Warn("writing a FUSE reply failed", zap.Uint32("opcode", opcode), zap.Error(err))
}
