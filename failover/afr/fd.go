package afr

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// replFd is an fd of the replica set: one brick fd per child, opened
// lazily on children that were down at open time (afr_fix_open).
type replFd struct {
	fd       *fop.Fd // the handle the filesystem holds
	ino      *inode
	released atomic.Bool

	mu        sync.Mutex
	kids      []*fop.Fd             // GUARDED_BY(mu)
	opening   map[int]chan struct{} // GUARDED_BY(mu); closed when the child's open ends
	readChild int                   // GUARDED_BY(mu); readdir sticks to one child, -1 until chosen
}

func (r *Replicate) newFd(ino *inode, flags uint32, dir bool, kids []*fop.Fd) *fop.Fd {
	fd := &fop.Fd{GFID: ino.gfid, Flags: flags, Dir: dir}
	fd.SetCtx(r, &replFd{fd: fd, ino: ino, kids: kids, readChild: -1})
	ino.mu.Lock()
	ino.fds++
	ino.mu.Unlock()
	return fd
}

func (r *Replicate) rfd(f *fop.Fd) (*replFd, error) {
	if f.Anon {
		// An anonymous fd is the same on every child and counts as no
		// open of the inode (its eager lock ends on the timer). Its state
		// is made for each fop, with the inode as the table has it now:
		// kept, it could outlive the table's entry (pruned: no fd holds
		// it) and take locks apart from the table's.
		kids := make([]*fop.Fd, r.n())
		for i := range kids {
			kids[i] = fop.AnonFd(f.GFID, f.Flags)
		}
		return &replFd{fd: f, ino: r.inode(f.GFID), kids: kids, readChild: -1}, nil
	}
	v, ok := f.Ctx(r)
	if !ok || v.(*replFd).released.Load() {
		return nil, &fop.OpError{Brick: r.name, GFID: f.GFID, Errno: syscall.EBADF, Err: errors.New("unknown fd")}
	}
	return v.(*replFd), nil
}

// child returns the brick fd of child i, opening it there if needed. The
// open runs without rf.mu held: a child whose open hangs (it lags) must
// not hold up the others' fops on the fd.
func (r *Replicate) child(ctx context.Context, rf *replFd, i int) (*fop.Fd, error) {
	rf.mu.Lock()
	for {
		if rf.kids[i] != nil {
			fd := rf.kids[i]
			rf.mu.Unlock()
			return fd, nil
		}
		// A fop that got the fd before its Release must not open it on
		// a child now: nothing would ever release that brick fd.
		// Release sets released before it takes mu to collect the
		// children's fds.
		if rf.released.Load() {
			rf.mu.Unlock()
			return nil, &fop.OpError{Brick: r.name, GFID: rf.fd.GFID, Errno: syscall.EBADF, Err: errors.New("fd already released")}
		}
		wait, busy := rf.opening[i]
		if !busy {
			break
		}
		rf.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, &fop.OpError{Brick: r.kids[i].Name(), GFID: rf.fd.GFID, Errno: syscall.ETIMEDOUT, Err: ctx.Err()}
		}
		rf.mu.Lock()
	}
	done := make(chan struct{})
	if rf.opening == nil {
		rf.opening = map[int]chan struct{}{}
	}
	rf.opening[i] = done
	rf.mu.Unlock()
	var fd *fop.Fd
	var err error
	if rf.fd.Dir {
		fd, _, err = r.kids[i].Opendir(ctx, rf.fd.GFID, nil)
	} else {
		fd, _, err = r.kids[i].Open(ctx, rf.fd.GFID, rf.fd.Flags&^uint32(syscall.O_CREAT|syscall.O_EXCL|syscall.O_TRUNC), nil)
	}
	rf.mu.Lock()
	delete(rf.opening, i)
	close(done)
	if err == nil && rf.released.Load() {
		// Release collected the fds while this one opened: it is ours
		// to give back.
		rf.mu.Unlock()
		_ = r.kids[i].Release(context.WithoutCancel(ctx), fd)
		return nil, &fop.OpError{Brick: r.name, GFID: rf.fd.GFID, Errno: syscall.EBADF, Err: errors.New("fd already released")}
	}
	if err == nil {
		rf.kids[i] = fd
	}
	rf.mu.Unlock()
	return fd, err
}

func (r *Replicate) withFd(f *fop.Fd, fn func(ctx context.Context, i int, cf *fop.Fd) error) (*replFd, func(ctx context.Context, i int) error, error) {
	rf, err := r.rfd(f)
	if err != nil {
		return nil, nil, err
	}
	return rf, func(ctx context.Context, i int) error {
		cf, err := r.child(ctx, rf, i)
		if err != nil {
			return err
		}
		return fn(ctx, i, cf)
	}, nil
}

func (r *Replicate) open(ctx context.Context, gfid xdr.GFID, flags uint32, dir bool, xd xdr.Dict) (*fop.Fd, error) {
	up := r.up()
	if !r.hasQuorum(up) {
		return nil, r.errNoQuorum("OPEN")
	}
	kids := make([]*fop.Fd, r.n())
	rs := r.fanout(ctx, up, func(ctx context.Context, i int) error {
		var err error
		if dir {
			kids[i], _, err = r.kids[i].Opendir(ctx, gfid, xd)
		} else {
			kids[i], _, err = r.kids[i].Open(ctx, gfid, flags, xd)
		}
		return err
	})
	ok := succeeded(rs, up)
	if count(ok) == 0 {
		return nil, r.finalErr(rs, up)
	}
	return r.newFd(r.inode(gfid), flags, dir, kids), nil
}

// Open opens gfid on every child that is up.
func (r *Replicate) Open(ctx context.Context, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	f, err := r.open(ctx, gfid, flags, false, xd)
	return f, nil, err
}

// Opendir opens a directory on every child that is up.
func (r *Replicate) Opendir(ctx context.Context, gfid xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	f, err := r.open(ctx, gfid, 0, true, xd)
	return f, nil, err
}

// Release finishes the eager lock if this was the inode's last fd and
// closes the brick fds.
func (r *Replicate) Release(ctx context.Context, f *fop.Fd) error {
	v, ok := f.Ctx(r)
	if !ok && f.Anon {
		return nil
	}
	if !ok {
		return &fop.OpError{Brick: r.name, Fop: "RELEASE", GFID: f.GFID, Errno: syscall.EBADF, Err: errors.New("fd was not opened on this replica set")}
	}
	rf := v.(*replFd)
	if f.Anon || !rf.released.CompareAndSwap(false, true) {
		return nil
	}
	rf.ino.mu.Lock()
	rf.ino.fds--
	last := rf.ino.fds == 0
	rf.ino.mu.Unlock()
	if last {
		r.postOpNow(rf.ino)
	}
	rf.mu.Lock()
	kids := rf.kids
	rf.mu.Unlock()
	for i, cf := range kids {
		if cf != nil {
			_ = r.kids[i].Release(ctx, cf)
		}
	}
	return nil
}

func (r *Replicate) releaseKids(ctx context.Context, kids []*fop.Fd) {
	for i, f := range kids {
		if f != nil {
			_ = r.kids[i].Release(ctx, f)
		}
	}
}
