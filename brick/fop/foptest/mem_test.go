package foptest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

func TestMemContract(t *testing.T) { Contract(t, NewMem("m-client-0")) }

// Xattrop adds int32 and int64 arrays, missing values counting as zero.
func TestMemXattrop(t *testing.T) {
	m := NewMem("m")
	ctx := context.Background()
	add := func(flags uint32, b []byte) []byte {
		t.Helper()
		d, err := m.Xattrop(ctx, RootGFID, flags, xdr.Dict{{Key: "trusted.x", Value: xdr.Ptr(b)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := d.Bytes("trusted.x")
		return v
	}
	add(AddArray, []byte{0, 0, 0, 1, 0, 0, 0, 2})
	if got := add(AddArray, []byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}); string(got) != string([]byte{0, 0, 0, 2, 0, 0, 0, 1}) {
		t.Errorf("int32 adds: %x", got)
	}
	m2 := NewMem("m2")
	m = m2
	if got := add(AddArray64, []byte{0, 0, 0, 0, 0, 0, 1, 0}); string(got) != string([]byte{0, 0, 0, 0, 0, 0, 1, 0}) {
		t.Errorf("int64 add from nothing: %x", got)
	}
}

// Locks: a write lock excludes another owner's; a blocking request waits
// for the unlock; different entry names do not conflict.
func TestMemLocks(t *testing.T) {
	m := NewMem("m")
	a := fop.WithCaller(context.Background(), &fop.Caller{LkOwner: []byte("a")})
	b := fop.WithCaller(context.Background(), &fop.Caller{LkOwner: []byte("b")})
	w := xdr.Flock{Type: fop.LkWrite}
	if err := m.Inodelk(a, RootGFID, "dom", fop.LkSet, w); err != nil {
		t.Fatal(err)
	}
	if err := m.Inodelk(b, RootGFID, "dom", fop.LkSet, w); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("second owner: %v, want EAGAIN", err)
	}
	if err := m.Inodelk(b, RootGFID, "other", fop.LkSet, w); err != nil {
		t.Fatalf("another domain: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- m.Inodelk(b, RootGFID, "dom", fop.LkSetW, w) }()
	select {
	case err := <-got:
		t.Fatalf("blocking lock granted while held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := m.Inodelk(a, RootGFID, "dom", fop.LkSet, xdr.Flock{Type: fop.LkUnlock}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("blocking lock after the unlock: %v", err)
	}
	if err := m.Entrylk(a, RootGFID, "x", "dom", fop.EntrylkLockNB, fop.LkWrite); err != nil {
		t.Fatal(err)
	}
	if err := m.Entrylk(b, RootGFID, "y", "dom", fop.EntrylkLockNB, fop.LkWrite); err != nil {
		t.Fatalf("another name: %v", err)
	}
	if err := m.Entrylk(b, RootGFID, "x", "dom", fop.EntrylkLockNB, fop.LkWrite); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("same name: %v, want EAGAIN", err)
	}
}

// Faults: down is ENOTCONN and loses locks and fds, refuse gives the
// errno, a hang ends with the caller's context.
func TestMemFaults(t *testing.T) {
	m := NewMem("m")
	ctx := context.Background()
	f, _, err := m.Create(ctx, RootGFID, "f", 2, 0o644, 0, GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SetDown(true)
	if _, err := m.Stat(ctx, GFID(1)); fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("down: %v", err)
	}
	m.SetDown(false)
	if _, err := m.Read(ctx, f, 0, 1); fop.Errno(err) != syscall.EBADF {
		t.Errorf("an fd from before the brick went down: %v, want EBADF", err)
	}
	m.Refuse("STAT", syscall.ENOSPC)
	if _, err := m.Stat(ctx, GFID(1)); fop.Errno(err) != syscall.ENOSPC {
		t.Errorf("refused: %v", err)
	}
	m.Refuse("STAT", 0)
	release := m.Hang("STAT")
	defer release()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := m.Stat(cctx, GFID(1)); fop.Errno(err) != syscall.ETIMEDOUT {
		t.Errorf("hung: %v", err)
	}
	if m.Calls("STAT") != 3 {
		t.Errorf("STAT calls %d, want 3", m.Calls("STAT"))
	}
}
