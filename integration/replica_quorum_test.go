package integration

import (
	endian "encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// qBlock and qBlocks shape the quorum test's file: qBlocks blocks of qBlock
// bytes, each written whole with O_DIRECT.
const (
	qBlock  = 4096
	qBlocks = 256
)

// qContent is the block written as the seq'th write to block blk: a header
// naming both, then bytes derived from them.
func qContent(buf []byte, blk, seq int) {
	endian.BigEndian.PutUint64(buf[0:], uint64(blk))
	endian.BigEndian.PutUint64(buf[8:], uint64(seq))
	r := rand.New(rand.NewPCG(uint64(blk), uint64(seq)))
	for i := 16; i < len(buf); i += 8 {
		endian.LittleEndian.PutUint64(buf[i:], r.Uint64())
	}
}

// alignedBlock is a qBlock-sized buffer aligned for O_DIRECT.
func alignedBlock() []byte {
	raw := make([]byte, 2*qBlock)
	off := int(uintptr(unsafe.Pointer(&raw[0])) & (qBlock - 1))
	if off != 0 {
		off = qBlock - off
	}
	return raw[off : off+qBlock]
}

// qWriter writes random blocks of one file in a loop and remembers, per
// block, which contents may be there: the last write that succeeded, and
// any failed write after it (a write that failed may have reached some
// bricks).
type qWriter struct {
	fd   int
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	ok     []int          // GUARDED_BY(mu): per block, seq of the last successful write (0: zeros)
	maybe  []map[int]bool // GUARDED_BY(mu): per block, seqs of failed writes since
	errnos map[error]int  // GUARDED_BY(mu): failures by errno
	lastOK time.Time      // GUARDED_BY(mu)
	lastEr time.Time      // GUARDED_BY(mu)
	nOK    int            // GUARDED_BY(mu)
	seq    int            // GUARDED_BY(mu)
	maxLat time.Duration  // GUARDED_BY(mu)
	phase  map[string]int // GUARDED_BY(mu): errors per phase
	cur    string         // GUARDED_BY(mu)
	// In the current phase, in the order the writes finished: how many
	// succeeded and failed, and how many succeeded after one had failed
	// and failed after one had succeeded.
	inOK, inErr, okAfterErr, errAfterOK int // GUARDED_BY(mu)
}

func startQWriter(t *testing.T, path string) *qWriter {
	t.Helper()
	fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	w := &qWriter{fd: fd, stop: make(chan struct{}), done: make(chan struct{}),
		ok: make([]int, qBlocks), maybe: make([]map[int]bool, qBlocks), errnos: map[error]int{}, phase: map[string]int{}, cur: "start"}
	for i := range w.maybe {
		w.maybe[i] = map[int]bool{}
	}
	go w.loop()
	return w
}

func (w *qWriter) loop() {
	defer close(w.done)
	buf := alignedBlock()
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		w.mu.Lock()
		w.seq++
		seq := w.seq
		w.mu.Unlock()
		blk := rand.IntN(qBlocks)
		qContent(buf, blk, seq)
		start := time.Now()
		_, err := syscall.Pwrite(w.fd, buf, int64(blk)*qBlock)
		lat := time.Since(start)
		w.mu.Lock()
		w.maxLat = max(w.maxLat, lat)
		if err == nil {
			w.ok[blk] = seq
			clear(w.maybe[blk])
			w.nOK++
			w.lastOK = time.Now()
			w.inOK++
			if w.inErr > 0 {
				w.okAfterErr++
			}
		} else {
			w.maybe[blk][seq] = true
			w.errnos[err]++
			w.phase[w.cur]++
			w.lastEr = time.Now()
			w.inErr++
			if w.inOK > 0 {
				w.errAfterOK++
			}
		}
		w.mu.Unlock()
		if err != nil {
			time.Sleep(20 * time.Millisecond) // do not spin on a volume without quorum
		}
	}
}

// setPhase names what happens from now on, for the error counts, and
// starts the phase's counts afresh.
func (w *qWriter) setPhase(p string) {
	w.mu.Lock()
	w.cur = p
	w.inOK, w.inErr, w.okAfterErr, w.errAfterOK = 0, 0, 0, 0
	w.mu.Unlock()
}

// inPhase returns the current phase's counts (see qWriter).
func (w *qWriter) inPhase() (ok, failed, okAfterErr, errAfterOK int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inOK, w.inErr, w.okAfterErr, w.errAfterOK
}

// waitWrites waits until the current phase has seen n writes finish the
// way want says.
func (w *qWriter) waitWrites(t *testing.T, n int, ok bool, what string) {
	t.Helper()
	waitFor(t, 60*time.Second, what, func() (bool, string) {
		o, f, _, _ := w.inPhase()
		if ok {
			return o >= n, fmt.Sprintf("%d ok, %d failed", o, f)
		}
		return f >= n, fmt.Sprintf("%d ok, %d failed", o, f)
	})
}

// snapshot returns the successful writes so far, the failures by errno and
// when the last write succeeded or failed.
func (w *qWriter) snapshot() (nOK int, errnos map[error]int, lastOK, lastErr time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := map[error]int{}
	for k, v := range w.errnos {
		m[k] = v
	}
	return w.nOK, m, w.lastOK, w.lastEr
}

func (w *qWriter) close() {
	close(w.stop)
	<-w.done
	syscall.Close(w.fd)
}

// check reads the file (through the mount, O_DIRECT) and verifies every
// block holds an allowed write.
func (w *qWriter) check(t *testing.T, path string) {
	t.Helper()
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer syscall.Close(fd)
	buf := alignedBlock()
	want := make([]byte, qBlock)
	w.mu.Lock()
	defer w.mu.Unlock()
	bad := 0
	for blk := 0; blk < qBlocks; blk++ {
		n, err := syscall.Pread(fd, buf, int64(blk)*qBlock)
		if err != nil {
			t.Fatalf("read block %d: %v", blk, err)
		}
		got := buf[:n]
		seq := 0
		if n >= 16 {
			seq = int(endian.BigEndian.Uint64(got[8:16]))
		}
		allowed := seq == w.ok[blk] || w.maybe[blk][seq]
		if n < qBlock && w.ok[blk] == 0 {
			continue // never written, beyond EOF
		}
		if allowed && seq == 0 {
			if string(got) != string(make([]byte, qBlock)) {
				allowed = false
			}
		} else if allowed {
			qContent(want, blk, seq)
			allowed = string(got) == string(want)
		}
		if !allowed {
			bad++
			if bad <= 5 {
				t.Errorf("block %d: holds seq %d (%d bytes), want seq %d or one of the failed writes %v", blk, seq, n, w.ok[blk], w.maybe[blk])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d blocks hold data that was never written there last", bad, qBlocks)
	}
}

// TestReplicaQuorum: with 2 of 3 bricks killed during writes, writes fail
// with ENOTCONN (AFR's quorum errno in 10.3); once both are restarted,
// writes succeed again on the same fd, and every block holds what was last
// written to it (or, for a write that failed, possibly that write).
func TestReplicaQuorum(t *testing.T) {
	e := newRepEnv(t, "rquorum", Replica3)
	path := filepath.Join(e.mnt, "q")
	w := startQWriter(t, path)
	defer func() {
		select {
		case <-w.done:
		default:
			w.close()
		}
	}()
	w.waitWrites(t, 50, true, "50 writes before any fault")
	if n, errs, _, _ := w.snapshot(); n == 0 || len(errs) > 0 {
		t.Fatalf("before any fault: %d writes, errors %v", n, errs)
	}

	w.setPhase("one brick down")
	e.c.KillBrick(t, e.vol, 2)
	w.waitWrites(t, 50, true, "50 writes with one brick down")
	n1, errs, _, _ := w.snapshot()
	if _, failed, _, _ := w.inPhase(); failed > 0 {
		t.Errorf("with 2 of 3 bricks up (quorum kept), writes failed: %v", errs)
	}

	w.setPhase("quorum lost")
	lost := time.Now()
	e.c.KillBrick(t, e.vol, 1)
	w.waitWrites(t, 1, false, "writes to fail without quorum")
	t.Logf("QUORUM-LOST writes failing %.2fs after the second kill", time.Since(lost).Seconds())
	// Once one write failed for want of quorum, none may succeed until the
	// bricks are back.
	w.waitWrites(t, 20, false, "20 writes to fail without quorum")
	n2, errs, _, _ := w.snapshot()
	if _, _, okAfterErr, _ := w.inPhase(); okAfterErr > 0 {
		t.Errorf("%d writes succeeded after writes had started failing without quorum", okAfterErr)
	}
	for err, n := range errs {
		if !errors.Is(err, syscall.ENOTCONN) {
			t.Errorf("without quorum %d writes failed with %v (%d), want ENOTCONN", n, err, err)
		}
	}
	t.Logf("writes: %d before the second kill, %d after; failures %v", n1, n2-n1, errs)

	w.setPhase("bricks back")
	back := time.Now()
	e.c.StartForce(t, e.vol)
	w.waitWrites(t, 1, true, "writes to succeed again on the same fd")
	t.Logf("QUORUM-BACK writes succeed %.2fs after volume start force", time.Since(back).Seconds())
	// Once one succeeded with quorum back, none may fail.
	w.waitWrites(t, 50, true, "50 writes with quorum back")
	n3, errs, _, _ := w.snapshot()
	if _, _, _, errAfterOK := w.inPhase(); errAfterOK > 0 {
		t.Errorf("%d writes failed after quorum came back and writes had succeeded: %v", errAfterOK, errs)
	}
	for err := range errs {
		if !errors.Is(err, syscall.ENOTCONN) {
			t.Errorf("a write failed with %v, want only ENOTCONN", err)
		}
	}
	w.close()
	w.mu.Lock()
	t.Logf("STALL quorum=%.2fs (longest single pwrite, failed ones included); %d writes ok in all, errors by phase %v", w.maxLat.Seconds(), n3, w.phase)
	w.mu.Unlock()

	e.c.WaitHealed(t, e.vol, []string{"q"}, repHealWait)
	w.check(t, path)
	e.c.CheckBackends(t, e.vol, e.kind, "q", e.mnt)
	if _, err := os.Stat(path); err != nil {
		t.Errorf("stat after quorum came back: %v", err)
	}
}
