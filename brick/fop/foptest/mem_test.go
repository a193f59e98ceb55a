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
		d, _, err := m.Xattrop(ctx, RootGFID, flags, xdr.Dict{{Key: "trusted.x", Value: xdr.Ptr(b)}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := d.Bytes("trusted.x")
		return v
	}
	add(fop.XattropAddArray, []byte{0, 0, 0, 1, 0, 0, 0, 2})
	if got := add(fop.XattropAddArray, []byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}); string(got) != string([]byte{0, 0, 0, 2, 0, 0, 0, 1}) {
		t.Errorf("int32 adds: %x", got)
	}
	m2 := NewMem("m2")
	m = m2
	if got := add(fop.XattropAddArray64, []byte{0, 0, 0, 0, 0, 0, 1, 0}); string(got) != string([]byte{0, 0, 0, 0, 0, 0, 1, 0}) {
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
	if _, err := m.Inodelk(a, RootGFID, "dom", fop.LkSet, w, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Inodelk(b, RootGFID, "dom", fop.LkSet, w, nil); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("second owner: %v, want EAGAIN", err)
	}
	if _, err := m.Inodelk(b, RootGFID, "other", fop.LkSet, w, nil); err != nil {
		t.Fatalf("another domain: %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- fop.ErrOnly(m.Inodelk(b, RootGFID, "dom", fop.LkSetW, w, nil)) }()
	// The fourth INODELK reached the brick: it waits (the brick's lock is
	// held from its arrival until it waits).
	waitCalls(t, m, "INODELK", 4)
	m.mu.Lock()
	m.mu.Unlock()
	select {
	case err := <-got:
		t.Fatalf("blocking lock granted while held: %v", err)
	default:
	}
	if _, err := m.Inodelk(a, RootGFID, "dom", fop.LkSet, xdr.Flock{Type: fop.LkUnlock}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("blocking lock after the unlock: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("blocking lock not granted 10 s after the unlock")
	}
	// A lock on the whole directory conflicts with every name.
	if _, err := m.Entrylk(a, RootGFID, "", "d2", fop.EntrylkLockNB, fop.LkWrite, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Entrylk(b, RootGFID, "n", "d2", fop.EntrylkLockNB, fop.LkWrite, nil); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("a name under a whole-directory lock: %v, want EAGAIN", err)
	}
	// A waiter whose brick goes down is refused, not granted on return.
	if _, err := m.Inodelk(a, RootGFID, "d3", fop.LkSet, w, nil); err != nil {
		t.Fatal(err)
	}
	go func() { got <- fop.ErrOnly(m.Inodelk(b, RootGFID, "d3", fop.LkSetW, w, nil)) }()
	waitCalls(t, m, "INODELK", 7)
	m.mu.Lock()
	m.mu.Unlock()
	m.SetDown(true)
	select {
	case err := <-got:
		if fop.Errno(err) != syscall.ENOTCONN {
			t.Fatalf("a lock waiting when the brick went down: %v, want ENOTCONN", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter was not woken by the brick going down")
	}
}

// A blocked lock request is not overtaken (features/locks: a request that
// conflicts with one queued before it waits behind it): once the holder
// lets go, a later non-blocking request is refused while the waiter gets
// the lock, and a later blocking one waits for the waiter.
func TestMemLockQueueIsFair(t *testing.T) {
	m := NewMem("m")
	own := func(o string) context.Context {
		return fop.WithCaller(context.Background(), &fop.Caller{LkOwner: []byte(o)})
	}
	w := xdr.Flock{Type: fop.LkWrite}
	unlock := xdr.Flock{Type: fop.LkUnlock}
	if _, err := m.Inodelk(own("a"), RootGFID, "dom", fop.LkSet, w, nil); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() { got <- fop.ErrOnly(m.Inodelk(own("b"), RootGFID, "dom", fop.LkSetW, w, nil)) }()
	for m.Waiters() == 0 {
		time.Sleep(time.Millisecond)
	}
	// While b waits, c may not take the lock past it, even with a free
	// range at the moment of the unlock.
	m.mu.Lock()
	if err := m.inodelk(own("a"), "INODELK", RootGFID, "dom", fop.LkSet, unlock); err != nil {
		m.mu.Unlock()
		t.Fatal(err)
	}
	err := m.inodelk(own("c"), "INODELK", RootGFID, "dom", fop.LkSet, w)
	if err == nil {
		_ = m.inodelk(own("c"), "INODELK", RootGFID, "dom", fop.LkSet, unlock) // let the waiter go
	}
	m.mu.Unlock()
	if fop.Errno(err) != syscall.EAGAIN {
		t.Errorf("a non-blocking request past a waiter, right after the unlock: %v, want EAGAIN", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the waiter after the unlock: %v", err)
	}
	// b holds it now; its owner may take more (no queue for a holder).
	if _, err := m.Inodelk(own("b"), RootGFID, "dom", fop.LkSet, xdr.Flock{Type: fop.LkWrite, Start: 10, Len: 1}, nil); err != nil {
		t.Errorf("the holder's own second lock: %v", err)
	}
}

// TestMemEntrylkNames: different names do not conflict, the same does.
func TestMemEntrylkNames(t *testing.T) {
	m := NewMem("m")
	a := fop.WithCaller(context.Background(), &fop.Caller{LkOwner: []byte("a")})
	b := fop.WithCaller(context.Background(), &fop.Caller{LkOwner: []byte("b")})
	if _, err := m.Entrylk(a, RootGFID, "x", "dom", fop.EntrylkLockNB, fop.LkWrite, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Entrylk(b, RootGFID, "y", "dom", fop.EntrylkLockNB, fop.LkWrite, nil); err != nil {
		t.Fatalf("another name: %v", err)
	}
	if _, err := m.Entrylk(b, RootGFID, "x", "dom", fop.EntrylkLockNB, fop.LkWrite, nil); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("same name: %v, want EAGAIN", err)
	}
	if _, err := m.Entrylk(b, RootGFID, "", "dom", fop.EntrylkLockNB, fop.LkWrite, nil); fop.Errno(err) != syscall.EAGAIN {
		t.Fatalf("the whole directory while a name is locked: %v, want EAGAIN", err)
	}
}

// waitCalls waits until n calls of op reached m.
func waitCalls(t *testing.T, m *Mem, op string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.Calls(op) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d %s calls after 10 s, want %d", m.Calls(op), op, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Without O_EXCL, create on an existing name opens that file, as a posix
// brick does; with it, EEXIST.
func TestMemCreateExisting(t *testing.T) {
	m := NewMem("m")
	ctx := context.Background()
	if _, _, _, err := m.Create(ctx, RootGFID, "f", 2, 0o644, 0, GFID(1), nil); err != nil {
		t.Fatal(err)
	}
	if _, st, _, err := m.Create(ctx, RootGFID, "f", 2, 0o644, 0, GFID(2), nil); err != nil || st.GFID != GFID(1) {
		t.Errorf("create without O_EXCL: gfid %v, %v; want the existing file's", st.GFID, err)
	}
	if _, _, _, err := m.Create(ctx, RootGFID, "f", 2|syscall.O_EXCL, 0o644, 0, GFID(3), nil); fop.Errno(err) != syscall.EEXIST {
		t.Errorf("create O_EXCL: %v, want EEXIST", err)
	}
}

// Faults: down is ENOTCONN and loses locks (fds are reopened), refuse gives the
// errno, a hang ends with the caller's context.
func TestMemFaults(t *testing.T) {
	m := NewMem("m")
	ctx := context.Background()
	f, _, _, err := m.Create(ctx, RootGFID, "f", 2, 0o644, 0, GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SetDown(true)
	if _, _, err := m.Stat(ctx, GFID(1), nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Errorf("down: %v", err)
	}
	m.SetDown(false)
	if _, _, err := m.Read(ctx, f, 0, 1, nil); err != nil {
		t.Errorf("an fd from before the brick went down is reopened: %v", err)
	}
	m.Refuse("STAT", syscall.ENOSPC)
	if _, _, err := m.Stat(ctx, GFID(1), nil); fop.Errno(err) != syscall.ENOSPC {
		t.Errorf("refused: %v", err)
	}
	m.Refuse("STAT", 0)
	release := m.Hang("STAT")
	defer release()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := m.Stat(cctx, GFID(1), nil); fop.Errno(err) != syscall.ETIMEDOUT {
		t.Errorf("hung: %v", err)
	}
	if m.Calls("STAT") != 3 {
		t.Errorf("STAT calls %d, want 3", m.Calls("STAT"))
	}
}

// An fd open when the brick went down works again once it is back, as the
// brick client reopens it by gfid; one whose file was unlinked meanwhile
// does not.
func TestMemReopensAfterReconnect(t *testing.T) {
	m := NewMem("m-client-0")
	ctx := context.Background()
	f, _, _, err := m.Create(ctx, RootGFID, "f", uint32(syscall.O_RDWR), 0o644, 0, GFID(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _, err := m.Create(ctx, RootGFID, "g", uint32(syscall.O_RDWR), 0o644, 0, GFID(2), nil)
	if err != nil {
		t.Fatal(err)
	}
	m.SetDown(true)
	m.SetDown(false)
	if _, _, _, err := m.Write(ctx, f, 0, []byte("x"), nil); err != nil {
		t.Errorf("write through an fd after the brick came back: %v", err)
	}
	if _, err := m.Unlink(ctx, RootGFID, "g", nil); err != nil {
		t.Fatal(err)
	}
	m.SetDown(true)
	m.SetDown(false)
	if _, _, err := m.Fstat(ctx, g, nil); err == nil {
		t.Error("an fd of a file unlinked while the brick was away still works")
	}
	_ = m.Release(ctx, f)
	_ = m.Release(ctx, g)
}

// Delay holds a fop back for a while; Drop loses it (never carried out,
// answered only by the caller's deadline).
func TestMemDelayAndDrop(t *testing.T) {
	m := NewMem("m")
	ctx := context.Background()
	m.Delay("STAT", 30*time.Millisecond)
	start := time.Now()
	if _, _, err := m.Stat(ctx, RootGFID, nil); err != nil || time.Since(start) < 30*time.Millisecond {
		t.Errorf("delayed stat: %v after %v", err, time.Since(start))
	}
	m.Delay("STAT", 0)
	m.Drop("MKDIR", true)
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := m.Mkdir(dctx, RootGFID, "d", 0o755, 0, GFID(1), nil); fop.Errno(err) != syscall.ETIMEDOUT {
		t.Errorf("dropped mkdir: %v, want ETIMEDOUT", err)
	}
	if len(m.Names(RootGFID)) != 0 {
		t.Error("a dropped mkdir was carried out")
	}
	m.Drop("MKDIR", false)
	if _, _, err := m.Mkdir(ctx, RootGFID, "d", 0o755, 0, GFID(1), nil); err != nil {
		t.Errorf("mkdir after the drop ended: %v", err)
	}
}
