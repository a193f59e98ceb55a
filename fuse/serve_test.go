package fuse

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
)

func TestBufClass(t *testing.T) {
	for _, c := range []struct{ n, class int }{
		{0, 0}, {1, 0}, {4096, 0}, {8192, 0}, {8193, 1}, {12288, 1}, {12289, 2},
		{64<<10 + 4096, 4}, {1 << 20, 8}, {1<<20 + 4096, 8}, {1<<20 + 4097, 9},
		{4<<20 + 4096, 10}, {4<<20 + 4097, -1},
	} {
		if got := bufClass(c.n); got != c.class {
			t.Errorf("bufClass(%d) = %d, want %d", c.n, got, c.class)
		}
		if c.class >= 0 && classBytes(c.class) < c.n {
			t.Errorf("class %d (%d bytes) does not hold %d", c.class, classBytes(c.class), c.n)
		}
	}
}

// A buffer given back is the next one of its class handed out, and the
// pool maps no more than were in use at once.
func TestBufPoolReuses(t *testing.T) {
	p := newBufPool(2 << 20)
	a, err := p.get(5000)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 5000 || cap(a) != 8192 {
		t.Fatalf("get(5000): len %d cap %d, want 5000 and 8192", len(a), cap(a))
	}
	if a, _ := p.get(1<<20 + 4096); cap(a) != 1<<20+4096 {
		t.Fatalf("a buffer for a 1 MiB READ reply has %d bytes, want 1 MiB and a page", cap(a))
	} else {
		p.put(a)
	}
	b, _ := p.get(9000)
	p.put(a)
	p.put(b)
	for i := 0; i < 100; i++ {
		c, _ := p.get(6000)
		if &c[0] != &a[0] {
			t.Fatalf("round %d: a class-0 buffer was not reused", i)
		}
		d, _ := p.get(12000)
		if &d[0] != &b[0] {
			t.Fatalf("round %d: a class-1 buffer was not reused", i)
		}
		p.put(d)
		p.put(c)
	}
	st := p.stats()
	if want := int64(8192 + 12288 + 1<<20 + 4096); st.Maps != 3 || st.Mapped != want || st.InUse != 0 || st.Warm != want || st.Released != 0 {
		t.Errorf("stats %+v, want 3 maps of %d bytes, none in use, all warm", st, want)
	}
}

// Idle buffers past keepWarm return their pages to the kernel at a trim,
// once they stayed idle since the one before: a released buffer reads as
// zeros, stays usable, and is handed out again.
func TestBufPoolTrimsIdle(t *testing.T) {
	p := newBufPool(4 * pageBytes) // two class-0 buffers
	var bufs [][]byte
	for i := 0; i < 3; i++ {
		b, err := p.get(pageBytes)
		if err != nil {
			t.Fatal(err)
		}
		b = b[:cap(b)]
		for j := range b {
			b[j] = 0xa5
		}
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		p.put(b)
	}
	p.trim() // they were in use since the start: none stayed idle
	if st := p.stats(); st.Released != 0 || st.Warm != 6*pageBytes {
		t.Fatalf("after the first trim: %+v, want all 3 warm", st)
	}
	// One taken and given back: the idle low-water mark is 2 buffers.
	b, _ := p.get(10)
	p.put(b)
	p.trim()
	if st := p.stats(); st.Released != 0 || st.Warm != 6*pageBytes {
		t.Fatalf("after a trim with 2 idle throughout: %+v, want all 3 warm", st)
	}
	p.trim() // all 3 idle since the last trim: one past keepWarm
	st := p.stats()
	if st.Released != 1 || st.Warm != 4*pageBytes || st.InUse != 0 {
		t.Fatalf("stats %+v, want 1 released, 2 buffers (4 pages) warm", st)
	}
	zeroed := 0
	for _, b := range bufs {
		switch {
		case bytes.Equal(b, make([]byte, 2*pageBytes)):
			zeroed++
		case !bytes.Equal(b, bytes.Repeat([]byte{0xa5}, 2*pageBytes)):
			t.Errorf("a buffer holds neither its data nor zeros")
		}
	}
	if zeroed != 1 {
		t.Errorf("%d buffers read as zeros, want the released one", zeroed)
	}
	// Warm ones first, then the released one; no new mapping.
	got := map[*byte]bool{}
	for i := 0; i < 3; i++ {
		b, _ := p.get(10)
		got[&b[:1][0]] = true
		b[0] = 1
	}
	if len(got) != 3 || p.stats().Maps != 3 {
		t.Errorf("handed out %d distinct buffers with %d maps, want the 3 mapped", len(got), p.stats().Maps)
	}
	if _, err := p.get(8<<20 + 1); err == nil {
		t.Errorf("a buffer past the largest class was handed out")
	}
}

// The buffers released are those nobody took since the last trim: the
// bottom of the stack, not the one in use.
func TestBufPoolTrimReleasesTheIdleOnes(t *testing.T) {
	p := newBufPool(0)
	var bufs [][]byte
	for i := 0; i < 3; i++ {
		b, _ := p.get(100)
		b = b[:cap(b)]
		for j := range b {
			b[j] = byte(i + 1)
		}
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		p.put(b)
	}
	p.trim() // sets the marks
	b, _ := p.get(100)
	if &b[0] != &bufs[2][0] {
		t.Fatal("the buffer given back last was not handed out first")
	}
	p.put(b)
	p.trim()
	for i, b := range bufs {
		zero := bytes.Equal(b, make([]byte, len(b)))
		if want := i < 2; zero != want {
			t.Errorf("buffer %d (%d: the one in use) released: %v, want %v", i, 2, zero, want)
		}
	}
}

// A class in steady use keeps its buffers however large; the idle ones of
// another class past keepWarm go.
func TestBufPoolTrimKeepsBusyClasses(t *testing.T) {
	p := newBufPool(0)
	big, _ := p.get(1 << 20)
	var small [][]byte
	for i := 0; i < 4; i++ {
		b, _ := p.get(100)
		small = append(small, b)
	}
	p.put(big)
	for _, b := range small {
		p.put(b)
	}
	p.trim() // sets the marks
	for round := 0; round < 3; round++ {
		b, _ := p.get(1 << 20) // the large class is in use between trims
		p.put(b)
		p.trim()
	}
	st := p.stats()
	if st.Released != 4 || st.Warm != int64(classBytes(8)) {
		t.Errorf("stats %+v: want the 4 idle small buffers released and the busy 1 MiB one kept", st)
	}
}

// newPipeServer is a Server over the filesystem whose replies go to a pipe,
// for feeding it requests by hand.
func newPipeServer(t *testing.T) (*Server, *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	// Non-blocking, so that the read deadline holds: a missing reply
	// fails the test instead of hanging it.
	if err := unix.SetNonblock(p[0], true); err != nil {
		t.Fatal(err)
	}
	r := os.NewFile(uintptr(p[0]), "replies")
	t.Cleanup(func() { r.Close(); unix.Close(p[1]) })
	fsys := New(memVolume{foptest.NewMem("mem-client-0")}, Options{})
	raw := &rawFS{RawFileSystem: newNodeFS(fsys), fsys: fsys}
	s := &Server{
		fd:       p[1],
		ps:       gofuse.NewProtocolServer(raw, &gofuse.MountOptions{MaxWrite: 1 << 20}),
		bufs:     newBufPool(keepWarm),
		log:      zap.NewNop(),
		readSize: 1<<20 + pageBytes,
		inflight: map[uint64]struct{}{},
		fsys:     fsys,
	}
	return s, r
}

// request lays out a FUSE request: the header, then the rest of in's
// fields, then payload.
func request[T any](in *T, opcode uint32, unique uint64, payload []byte) []byte {
	b := make([]byte, int(unsafe.Sizeof(*in))+len(payload))
	copy(b, unsafe.Slice((*byte)(unsafe.Pointer(in)), unsafe.Sizeof(*in)))
	copy(b[unsafe.Sizeof(*in):], payload)
	h := (*gofuse.InHeader)(unsafe.Pointer(&b[0]))
	h.Length, h.Opcode, h.Unique, h.NodeId = uint32(len(b)), opcode, unique, 1
	return b
}

// feed hands the request to s as the loop does, in a read buffer, and
// returns the reply's header and body.
func feed(t *testing.T, s *Server, r *os.File, req []byte) (gofuse.OutHeader, []byte) {
	t.Helper()
	buf, err := s.bufs.get(s.readSize)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, req)
	s.handle(buf, len(req))
	reply := make([]byte, 1<<16)
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := r.Read(reply)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	var h gofuse.OutHeader
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h)), reply[:n])
	if int(h.Length) != n {
		t.Fatalf("reply of %d bytes says %d", n, h.Length)
	}
	return h, reply[unsafe.Sizeof(h):n]
}

// The serve loop answers every request it takes, the ones go-fuse cannot
// take apart included, and gives every buffer back.
func TestServeAnswersEveryRequest(t *testing.T) {
	s, r := newPipeServer(t)
	init := gofuse.InitIn{Major: 7, Minor: 31, MaxReadAhead: 1 << 20}
	h, body := feed(t, s, r, request(&init, 26, 1, nil))
	if h.Status != 0 || h.Unique != 1 {
		t.Fatalf("INIT: %+v", h)
	}
	if out := (*gofuse.InitOut)(unsafe.Pointer(&body[0])); out.MaxWrite < 128<<10 {
		t.Errorf("INIT: max_write %d", out.MaxWrite)
	}
	var ga gofuse.GetAttrIn
	h, body = feed(t, s, r, request(&ga, 3, 2, nil))
	if h.Status != 0 || h.Unique != 2 || len(body) != int(unsafe.Sizeof(gofuse.AttrOut{})) {
		t.Errorf("GETATTR of the root: %+v, %d bytes", h, len(body))
	}
	// A READ larger than any buffer: EIO, not silence.
	rd := gofuse.ReadIn{Size: 16 << 20}
	if h, _ = feed(t, s, r, request(&rd, opREAD, 3, nil)); h.Status != -int32(syscall.EIO) || h.Unique != 3 {
		t.Errorf("READ of 16 MiB: %+v, want EIO", h)
	}
	// A request cut short of its fixed part: go-fuse's EIO.
	short := request(&rd, opREAD, 4, nil)[:48]
	(*gofuse.InHeader)(unsafe.Pointer(&short[0])).Length = 48
	if h, _ = feed(t, s, r, short); h.Status != -int32(syscall.EIO) || h.Unique != 4 {
		t.Errorf("READ cut short: %+v, want EIO", h)
	}
	// An unknown opcode: ENOSYS.
	if h, _ = feed(t, s, r, request(&ga, 9999, 5, nil)); h.Status != -int32(syscall.ENOSYS) || h.Unique != 5 {
		t.Errorf("opcode 9999: %+v, want ENOSYS", h)
	}
	// READLINK's answer is as long as the target, up to a page: known only
	// once the handler has it.
	target := bytes.Repeat([]byte("t"), 4090)
	var sl gofuse.InHeader
	h, body = feed(t, s, r, request(&sl, 6, 6, append(append([]byte("link\x00"), target...), 0)))
	if h.Status != 0 {
		t.Fatalf("SYMLINK: %+v", h)
	}
	node := (*gofuse.EntryOut)(unsafe.Pointer(&body[0])).NodeId
	rl := request(&sl, 5, 7, nil)
	(*gofuse.InHeader)(unsafe.Pointer(&rl[0])).NodeId = node
	if h, body = feed(t, s, r, rl); h.Status != 0 || h.Unique != 7 || !bytes.Equal(body, target) {
		t.Errorf("READLINK of a %d-byte target: %+v, %d bytes", len(target), h, len(body))
	}
	if st := s.bufs.stats(); st.InUse != 0 {
		t.Errorf("%d bytes of buffers still in use after the replies", st.InUse)
	}
}

// Through a real mount: O_DIRECT reads and writes of every size from 4 KiB
// to 1 MiB, several at once, come back intact, and the buffers they used
// are the pool's, reused: few mappings, and none in use but the waiting
// readers' once the I/O is done.
func TestMemMountBuffersReused(t *testing.T) {
	dir, fsys, srv := mountServed(t, memVolume{foptest.NewMem("mem-client-0")}, Options{Log: zaptest.NewLogger(t)})
	const workers, rounds = 4, 40
	pass := func() {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				errs <- directIO(dir+"/disk"+string(rune('0'+w)), w, rounds)
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	const passes = 4
	for i := 0; i < passes; i++ {
		pass()
	}
	st := fsys.bufs.stats()
	requests := passes * 2 * workers * rounds
	t.Logf("FUSE buffers after %d reads and writes: %+v", requests, st)
	// Each buffer is mapped once and used again: at most a request and its
	// reply per worker in flight in each class a size falls in (15), and
	// the readers'. Without reuse there would be two per request.
	if st.Maps > int64(requests/8) {
		t.Errorf("%d buffers mapped for %d requests: they are not reused", st.Maps, requests)
	}
	// Idle, only the readers waiting on /dev/fuse hold a buffer each.
	deadline := time.Now().Add(5 * time.Second)
	for st.InUse > int64(srv.maxWaiting+1)*int64(classBytes(bufClass(srv.readSize))) {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of buffers in use with no I/O", st.InUse)
		}
		time.Sleep(10 * time.Millisecond)
		st = fsys.bufs.stats()

	}
}

// directIO writes and reads back, with O_DIRECT, rounds of every size
// from 4 KiB to 1 MiB to name.
func directIO(name string, w, rounds int) error {
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR|syscall.O_DIRECT, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	wbuf, rbuf := alignedBuf(1<<20), alignedBuf(1<<20)
	for i := 0; i < rounds; i++ {
		n := 4096 << (i % 9) // 4 KiB .. 1 MiB
		for j := 0; j < n; j++ {
			wbuf[j] = byte(i*7 + j + w)
		}
		off := int64(i%5) << 20
		if _, err := f.WriteAt(wbuf[:n], off); err != nil {
			return err
		}
		if _, err := f.ReadAt(rbuf[:n], off); err != nil {
			return err
		}
		if !bytes.Equal(rbuf[:n], wbuf[:n]) {
			return fmt.Errorf("%s round %d: the %d bytes read back differ from those written", name, i, n)
		}
	}
	return nil
}

// alignedBuf is n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	b := make([]byte, n+pageBytes)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (pageBytes - 1))
	if off != 0 {
		off = pageBytes - off
	}
	return b[off : off+n]
}

// laggingVolume reads the data of a WRITE of 'A's in the background after
// the write returned, as a replica set's call to a brick cut for lagging does, and
// counts that use in the write's fop.DataHold.
type laggingVolume struct {
	memVolume
	release chan struct{}
	got     chan []byte
}

func (v laggingVolume) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if data[0] != 'A' {
		return v.memVolume.Write(ctx, f, off, data, xd)
	}
	h := fop.DataHoldOf(ctx)
	if !h.Add() {
		panic("the WRITE's context carries no open DataHold")
	}
	go func() {
		<-v.release
		v.got <- append([]byte(nil), data...)
		h.Done()
	}()
	return v.memVolume.Write(ctx, f, off, data, xd)
}

// A WRITE's request buffer is not reused while a call still reads its
// data after the reply: the call sends the bytes the VM wrote, not the
// next request's (or zeros). The buffer comes back once the call ends.
func TestServeKeepsWriteDataWhileACallReadsIt(t *testing.T) {
	s, r := newPipeServer(t)
	v := laggingVolume{memVolume{foptest.NewMem("mem-client-0")}, make(chan struct{}), make(chan []byte, 8)}
	fsys := New(v, Options{})
	raw := &rawFS{RawFileSystem: newNodeFS(fsys), fsys: fsys}
	s.fsys, s.raw, s.ps = fsys, raw, gofuse.NewProtocolServer(raw, &gofuse.MountOptions{MaxWrite: 1 << 20})
	init := gofuse.InitIn{Major: 7, Minor: 31, MaxReadAhead: 1 << 20}
	if h, _ := feed(t, s, r, request(&init, opINIT, 1, nil)); h.Status != 0 {
		t.Fatalf("INIT: %+v", h)
	}
	cr := gofuse.CreateIn{Flags: uint32(os.O_RDWR), Mode: 0o644}
	h, body := feed(t, s, r, request(&cr, 35, 2, []byte("disk\x00")))
	if h.Status != 0 {
		t.Fatalf("CREATE: %+v", h)
	}
	out := (*gofuse.CreateOut)(unsafe.Pointer(&body[0]))
	write := func(unique uint64, fill byte) {
		t.Helper()
		w := gofuse.WriteIn{Fh: out.Fh, Size: 4096}
		req := request(&w, 16, unique, bytes.Repeat([]byte{fill}, 4096))
		(*gofuse.InHeader)(unsafe.Pointer(&req[0])).NodeId = out.NodeId
		if h, _ := feed(t, s, r, req); h.Status != 0 || h.Unique != unique {
			t.Fatalf("WRITE %d: %+v", unique, h)
		}
	}
	write(3, 'A')
	held := s.bufs.stats().InUse
	if held == 0 {
		t.Errorf("no buffer kept for the data a call still reads")
	}
	for u := uint64(4); u < 8; u++ {
		write(u, 'B') // would take the first write's buffer, given back
	}
	close(v.release)
	want := bytes.Repeat([]byte{'A'}, 4096)
	select {
	case got := <-v.got:
		if !bytes.Equal(got, want) {
			t.Errorf("the background call read %q... after later requests, not the data written (%q...)", got[:8], want[:8])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the background call never read the data")
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.bufs.stats().InUse != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of buffers still in use once every call ended", s.bufs.stats().InUse)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockWaitVolume holds every blocking lock request until block closes,
// as a brick does while another client holds the lock.
type lockWaitVolume struct {
	memVolume
	entered chan struct{}
	block   chan struct{}
}

func (v lockWaitVolume) Lk(ctx context.Context, f *fop.Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error) {
	if cmd == fop.LkSetW {
		v.entered <- struct{}{}
		<-v.block
	}
	return v.memVolume.Lk(ctx, f, cmd, fl, xd)
}

// When the kernel ends the connection (here a forced unmount, which
// aborts it), a request waiting on a brick is interrupted, as go-fuse's
// own server did: a lock wait returns, and Wait with it, instead of
// holding the daemon until the brick grants the lock.
func TestMemMountAbortInterruptsWaits(t *testing.T) {
	needMount(t)
	dir := t.TempDir()
	v := lockWaitVolume{memVolume{foptest.NewMem("mem-client-0")}, make(chan struct{}, 1), make(chan struct{})}
	fsys := New(v, Options{AttrTimeout: time.Second, EntryTimeout: time.Second, Log: zaptest.NewLogger(t)})
	srv, err := fsys.Mount(dir, MountConfig{FsName: "mem", Type: "brickfs-test", Flags: syscall.MS_NOSUID | syscall.MS_NODEV})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	unblocked := false
	t.Cleanup(func() {
		if !unblocked {
			close(v.block)
		}
		syscall.Unmount(dir, syscall.MNT_DETACH)
		srv.Wait()
	})
	f, err := os.Create(dir + "/disk")
	if err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() {
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		locked <- unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk)
	}()
	select {
	case <-v.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the lock request never reached the volume")
	}
	// MNT_FORCE aborts the FUSE connection, busy or not.
	_ = syscall.Unmount(dir, syscall.MNT_FORCE)
	waited := make(chan struct{})
	go func() { srv.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("with the connection gone, the daemon still waits for a lock request's handler")
	}
	close(v.block)
	unblocked = true
	if err := <-locked; err == nil {
		t.Errorf("the lock was granted through an aborted connection")
	}
	f.Close()
}
