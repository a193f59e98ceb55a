package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// record is block k of the killed client's file: its number and a
// pattern of it, 4 KiB.
func record(k int) []byte {
	b := bytes.Repeat([]byte(fmt.Sprintf("record %08d ", k)), 4096/16)
	copy(b, fmt.Sprintf("%08x", k))
	return b[:4096]
}

// TestKilledClient: brickfs is SIGKILLed while a writer fsyncs every 4 KiB
// record it writes and fio writes beside it with fsync. Every record whose
// fsync returned is on the bricks, whole (read through a new brickfs mount
// and the native client); nothing of the dead client stays locked (the
// bricks release its locks when its connections die), so the new mount
// writes the same file at once; the heal leaves the copies identical.
func TestKilledClient(t *testing.T) {
	e := newRepEnv(t, "rkillc", Replica3)
	path := filepath.Join(e.mnt, "acked")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64 // records 0..acked-1 were fsynced
	writerDone := make(chan error, 1)
	go func() {
		defer f.Close()
		for k := 0; ; k++ {
			if _, err := f.WriteAt(record(k), int64(k)*4096); err != nil {
				writerDone <- err
				return
			}
			if err := f.Sync(); err != nil {
				writerDone <- err
				return
			}
			acked.Store(int64(k + 1))
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fioDone := make(chan FioResult, 1)
	go func() {
		fioDone <- Fio{Name: "fsync", File: filepath.Join(e.mnt, "fio"), Size: repFileSize, RW: "randwrite", IODepth: 1,
			Runtime: time.Minute, Extra: []string{"--fsync=1", "--ioengine=psync"}}.Run(ctx, t.TempDir())
	}()
	waitFor(t, 60*time.Second, "the writer to fsync 200 records", func() (bool, string) {
		return acked.Load() >= 200, fmt.Sprintf("%d fsynced", acked.Load())
	})
	// Kill the client in the middle of writes: the writer's next
	// fsync or write fails, and what it had fsynced is the promise.
	e.c.KillClient(t, e.mnt)
	werr := <-writerDone
	promised := acked.Load()
	t.Logf("brickfs killed with %d records fsynced; the writer then got: %v", promised, werr)
	r := <-fioDone
	t.Logf("fio beside it: %d writes before the kill (%v)", r.WriteIOs, r.ExitErr)
	e.c.Unmount(t, e.mnt)

	// A new mount writes the same file at once: no lock of the dead
	// client is left on the bricks.
	mnt2 := e.c.MountBrickfs(t, e.c.Spec(e.vol))
	e.mnt = mnt2
	path2 := filepath.Join(mnt2, "acked")
	tail := record(999999)
	done := make(chan error, 1)
	go func() {
		g, err := os.OpenFile(path2, os.O_RDWR, 0)
		if err == nil {
			_, err = g.WriteAt(tail, (promised+10)*4096)
			if err == nil {
				err = g.Sync()
			}
			if cerr := g.Close(); err == nil {
				err = cerr
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a new mount's write to the file the dead client wrote: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("a new mount's write to the file the dead client wrote still waits after 60 s: a lock of the dead client is held")
	}
	native := e.c.MountNative(t, e.vol)
	for _, m := range []string{mnt2, native} {
		b, err := os.ReadFile(filepath.Join(m, "acked"))
		if err != nil {
			t.Fatalf("read %s: %v", m, err)
		}
		for k := int64(0); k < promised; k++ {
			if int64(len(b)) < (k+1)*4096 {
				t.Fatalf("through %s: the file has %d bytes; record %d of %d fsynced ones is missing", m, len(b), k, promised)
			}
			if got := b[k*4096 : (k+1)*4096]; !bytes.Equal(got, record(int(k))) {
				t.Fatalf("through %s: fsynced record %d of %d differs: %q...", m, k, promised, got[:32])
			}
		}
		if got := b[(promised+10)*4096:]; !bytes.Equal(got, tail) {
			t.Errorf("through %s: the new mount's write is not there", m)
		}
	}
	t.Logf("all %d fsynced records are on the bricks", promised)
	e.c.WaitHealed(t, e.vol, []string{"acked", "fio"}, repHealWait)
	e.c.CheckBackends(t, e.vol, e.kind, "acked", mnt2)
}
