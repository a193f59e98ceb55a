// Package foptest is an in-memory brick for the tests of the layers above
// bricks: Mem keeps a namespace, file data, xattrs (with xattrop's
// ADD_ARRAY and ADD_ARRAY64), inode and entry locks per domain, and takes
// faults (Down, Refuse, Hang, Delay, Drop), so a layer can be driven over bricks that
// behave as a posix brick does without GlusterFS.
package foptest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// RootGFID is the volume root's.
var RootGFID = xdr.GFID{15: 1}

type inode struct {
	open     int // fds open on it: an unlinked file lives on while open
	st       xdr.Iatt
	data     []byte
	xattrs   map[string][]byte
	children map[string]xdr.GFID // directories
	target   string              // symlinks
}

type lock struct {
	owner      string
	write      bool
	start, end uint64 // end exclusive; 0 means to EOF
	entry      bool   // an entry lock: name says what it covers
	name       string // "" for the whole directory
}

// Mem is one in-memory brick. It is safe for concurrent use.
type Mem struct {
	name string

	mu      sync.Mutex
	cond    *sync.Cond
	inodes  map[xdr.GFID]*inode      // GUARDED_BY(mu)
	locks   map[string][]lock        // GUARDED_BY(mu); by gfid+domain, or gfid+name+domain for entries
	down    bool                     // GUARDED_BY(mu)
	refuse  map[string]syscall.Errno // GUARDED_BY(mu); by fop name
	hang    map[string]chan struct{} // GUARDED_BY(mu); by fop name, closed to release
	delay   map[string]time.Duration // GUARDED_BY(mu); by fop name
	lose    map[string]bool          // GUARDED_BY(mu); by fop name: Drop
	calls   map[string]int           // GUARDED_BY(mu); by fop name
	kicks   []string                 // GUARDED_BY(mu)
	opened  map[*fop.Fd]bool         // GUARDED_BY(mu); fds open here
	lost    map[*fop.Fd]bool         // GUARDED_BY(mu); fds open when the brick went down
	waiting map[string]int           // GUARDED_BY(mu); blocked lock requests, by lock list
	queued  map[string][]*lock       // GUARDED_BY(mu); the blocked requests in the order they came, by lock list

	watchers []func(up bool) // GUARDED_BY(mu)
}

var _ fop.Subvolume = (*Mem)(nil)

// Watch registers fn for the brick's up and down events (SetDown).
func (m *Mem) Watch(fn func(up bool)) {
	m.mu.Lock()
	m.watchers = append(m.watchers, fn)
	m.mu.Unlock()
}

// NewMem returns an empty brick named name holding the volume root.
func NewMem(name string) *Mem {
	m := &Mem{name: name, inodes: map[xdr.GFID]*inode{}, locks: map[string][]lock{},
		refuse: map[string]syscall.Errno{}, hang: map[string]chan struct{}{}, delay: map[string]time.Duration{}, lose: map[string]bool{}, calls: map[string]int{}, opened: map[*fop.Fd]bool{}, lost: map[*fop.Fd]bool{}, waiting: map[string]int{}, queued: map[string][]*lock{}}
	m.cond = sync.NewCond(&m.mu)
	m.inodes[RootGFID] = &inode{st: xdr.Iatt{GFID: RootGFID, Ino: 1, Mode: syscall.S_IFDIR | 0o755, Nlink: 2, Blksize: 4096},
		xattrs: map[string][]byte{}, children: map[string]xdr.GFID{}}
	return m
}

// Name is the brick's translator name.
func (m *Mem) Name() string { return m.name }

// Up reports whether the brick is reachable.
func (m *Mem) Up() bool { m.mu.Lock(); defer m.mu.Unlock(); return !m.down }

// Kick records that a layer dropped the brick.
func (m *Mem) Kick(reason string) { m.mu.Lock(); m.kicks = append(m.kicks, reason); m.mu.Unlock() }

// Kicks returns the reasons given to Kick.
func (m *Mem) Kicks() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.kicks...)
}

// SetDown makes every fop fail with ENOTCONN (a crashed brick) or serves
// again. Locks held die with the connection, as on a real brick.
func (m *Mem) SetDown(down bool) {
	m.mu.Lock()
	was := m.down
	m.down = down
	if down {
		m.locks = map[string][]lock{}
		for f := range m.opened {
			m.lost[f] = true
		}
		m.opened = map[*fop.Fd]bool{}
		for g, ino := range m.inodes {
			if ino.open = 0; ino.st.Nlink == 0 {
				delete(m.inodes, g)
			}
		}
	}
	changed := m.down != was
	ws := m.watchers
	m.cond.Broadcast()
	m.mu.Unlock()
	if changed {
		for _, fn := range ws {
			fn(!down)
		}
	}
}

// Refuse makes fop fail with errno (0 stops it).
func (m *Mem) Refuse(fopName string, errno syscall.Errno) {
	m.mu.Lock()
	if errno == 0 {
		delete(m.refuse, fopName)
	} else {
		m.refuse[fopName] = errno
	}
	m.mu.Unlock()
}

// Hang makes fop wait until the returned function is called or the
// call's context ends (a hung brick).
func (m *Mem) Hang(fopName string) (release func()) {
	ch := make(chan struct{})
	m.mu.Lock()
	m.hang[fopName] = ch
	m.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			m.mu.Lock()
			delete(m.hang, fopName)
			m.mu.Unlock()
			close(ch)
		})
	}
}

// Waiters returns how many lock requests are blocked on the brick.
func (m *Mem) Waiters() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, w := range m.waiting {
		n += w
	}
	return n
}

// Delay makes fop wait d before the brick carries it out (0 stops it).
func (m *Mem) Delay(fopName string, d time.Duration) {
	m.mu.Lock()
	if d == 0 {
		delete(m.delay, fopName)
	} else {
		m.delay[fopName] = d
	}
	m.mu.Unlock()
}

// Drop makes fop get lost on the way (a silent network): the brick never
// carries it out and the caller waits for its context to end.
func (m *Mem) Drop(fopName string, on bool) {
	m.mu.Lock()
	if on {
		m.lose[fopName] = true
	} else {
		delete(m.lose, fopName)
	}
	m.mu.Unlock()
}

// OpenFds returns how many fds are open on the brick.
func (m *Mem) OpenFds() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.opened) }

// Locks returns how many inode and entry locks are held on the brick.
func (m *Mem) Locks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, held := range m.locks {
		n += len(held)
	}
	return n
}

// Calls returns how many times fop reached the brick.
func (m *Mem) Calls(fopName string) int { m.mu.Lock(); defer m.mu.Unlock(); return m.calls[fopName] }

// Data returns a copy of the file's bytes.
func (m *Mem) Data(g xdr.GFID) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.inodes[g]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), ino.data...), true
}

// Xattr returns one xattr of an inode as stored.
func (m *Mem) Xattr(g xdr.GFID, key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.inodes[g]
	if !ok {
		return nil, false
	}
	v, ok := ino.xattrs[key]
	return append([]byte(nil), v...), ok
}

// Names lists a directory's entries, sorted.
func (m *Mem) Names(dir xdr.GFID) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	if ino, ok := m.inodes[dir]; ok {
		for n := range ino.children {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

func (m *Mem) err(op string, g xdr.GFID, en syscall.Errno) error {
	return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: en}
}

// enter counts a fop and applies the faults; on success it returns with
// m.mu held.
func (m *Mem) enter(ctx context.Context, op string, g xdr.GFID) error {
	m.mu.Lock()
	m.calls[op]++
	if d, ok := m.delay[op]; ok {
		m.mu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: syscall.ETIMEDOUT, Err: ctx.Err()}
		}
		m.mu.Lock()
	}
	if m.lose[op] {
		// Lost on the way: the brick never sees it, nobody answers.
		m.mu.Unlock()
		<-ctx.Done()
		return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: syscall.ETIMEDOUT, Err: ctx.Err()}
	}
	if ch, ok := m.hang[op]; ok {
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: syscall.ETIMEDOUT, Err: ctx.Err()}
		}
		m.mu.Lock()
	}
	if m.down {
		m.mu.Unlock()
		return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: syscall.ENOTCONN, Err: errors.New("brick down")}
	}
	if en, ok := m.refuse[op]; ok {
		m.mu.Unlock()
		return m.err(op, g, en)
	}
	return nil
}

// REQUIRES m.mu.
func (m *Mem) get(op string, g xdr.GFID) (*inode, error) {
	ino, ok := m.inodes[g]
	if !ok {
		return nil, m.err(op, g, syscall.ENOENT)
	}
	return ino, nil
}

// REQUIRES m.mu.
func (m *Mem) dir(op string, g xdr.GFID) (*inode, error) {
	ino, err := m.get(op, g)
	if err != nil {
		return nil, err
	}
	if ino.children == nil {
		return nil, m.err(op, g, syscall.ENOTDIR)
	}
	return ino, nil
}

func stat(ino *inode) xdr.Iatt {
	st := ino.st
	if st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		st.Size = uint64(len(ino.data))
		st.Blocks = (st.Size + 511) / 512
	}
	return st
}

// requested returns the xattrs of ino whose keys the request names.
func requested(ino *inode, xdata xdr.Dict) xdr.Dict {
	var out xdr.Dict
	for _, p := range xdata {
		if v, ok := ino.xattrs[p.Key]; ok {
			out = append(out, xdr.Pair{Key: p.Key, Value: xdr.Ptr(append([]byte(nil), v...))})
		}
	}
	return out
}

// Lookup resolves parent/name, or gfid when name is empty, and returns the
// xattrs the request names.
func (m *Mem) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, xdata xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "LOOKUP", parent); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	if len(name) > 255 {
		return xdr.Iatt{}, nil, m.err("LOOKUP", parent, syscall.ENAMETOOLONG)
	}
	g := gfid
	if name != "" {
		d, err := m.dir("LOOKUP", parent)
		if err != nil {
			return xdr.Iatt{}, nil, err
		}
		c, ok := d.children[name]
		if !ok {
			return xdr.Iatt{}, nil, m.err("LOOKUP", parent, syscall.ENOENT)
		}
		g = c
	}
	ino, err := m.get("LOOKUP", g)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	if ino.st.Nlink == 0 {
		// Open but unlinked: a posix brick has moved its gfid handle
		// away (to .glusterfs/unlink), so only its fds reach it and a
		// nameless lookup asking for unlinked-lookup.
		if _, asked := xdata.Get("unlinked-lookup"); name != "" || !asked {
			return xdr.Iatt{}, nil, m.err("LOOKUP", g, syscall.ENOENT)
		}
	}
	rx := requested(ino, xdata)
	if _, asked := xdata.Get("glusterfs.open-fd-count"); asked {
		// How many fds are open on the file here, from every client.
		n := 0
		for f := range m.opened {
			if f.GFID == g {
				n++
			}
		}
		rx = rx.With("glusterfs.open-fd-count", xdr.Uint(uint64(n)))
	}
	return stat(ino), rx, nil
}

// Stat returns an inode's attributes.
func (m *Mem) Stat(ctx context.Context, g xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "STAT", g); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("STAT", g)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return stat(ino), requested(ino, xd), nil
}

// Fstat returns an open inode's attributes.
func (m *Mem) Fstat(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enterFd(ctx, "FSTAT", f); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("FSTAT", f.GFID)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return stat(ino), requested(ino, xd), nil
}

// enterFd is enter for an fd fop: the fd must have been opened here and
// not lost with a connection.
func (m *Mem) enterFd(ctx context.Context, op string, f *fop.Fd) error {
	if err := m.enter(ctx, op, f.GFID); err != nil {
		return err
	}
	if f.Anon {
		// The brick opens the inode by gfid for this fop; an unlinked
		// inode is gone to it (its handle moved away).
		if ino := m.inodes[f.GFID]; ino == nil || ino.st.Nlink == 0 && ino.children == nil {
			m.mu.Unlock()
			return m.err(op, f.GFID, syscall.ESTALE)
		}
		return nil
	}
	if !m.opened[f] && m.lost[f] {
		// The brick client reopens an fd by gfid on its first fop after
		// a reconnect (a file unlinked meanwhile cannot be reopened).
		if ino := m.inodes[f.GFID]; ino != nil && ino.st.Nlink > 0 {
			delete(m.lost, f)
			m.opened[f] = true
			ino.open++
		}
	}
	if !m.opened[f] {
		m.mu.Unlock()
		return m.err(op, f.GFID, syscall.EBADF)
	}
	return nil
}

func (m *Mem) setattr(op string, g xdr.GFID, attr *xdr.Iatt, valid uint32) (xdr.Iatt, xdr.Iatt, error) {
	ino, err := m.get(op, g)
	if err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, err
	}
	pre := stat(ino)
	if valid&fop.SetAttrMode != 0 {
		ino.st.Mode = ino.st.Mode&syscall.S_IFMT | attr.Mode&0o7777
	}
	if valid&fop.SetAttrUID != 0 {
		ino.st.UID = attr.UID
	}
	if valid&fop.SetAttrGID != 0 {
		ino.st.GID = attr.GID
	}
	if valid&fop.SetAttrAtime != 0 {
		ino.st.Atime, ino.st.AtimeNsec = attr.Atime, attr.AtimeNsec
	}
	if valid&fop.SetAttrMtime != 0 {
		ino.st.Mtime, ino.st.MtimeNsec = attr.Mtime, attr.MtimeNsec
	}
	return pre, stat(ino), nil
}

// Setattr changes mode, owner or times.
func (m *Mem) Setattr(ctx context.Context, g xdr.GFID, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := m.enter(ctx, "SETATTR", g); err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	pre, post, err = m.setattr("SETATTR", g, attr, valid)
	return pre, post, nil, err
}

// Fsetattr is Setattr through an fd.
func (m *Mem) Fsetattr(ctx context.Context, f *fop.Fd, attr *xdr.Iatt, valid uint32, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := m.enterFd(ctx, "FSETATTR", f); err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	pre, post, err = m.setattr("FSETATTR", f.GFID, attr, valid)
	return pre, post, nil, err
}

func (m *Mem) truncate(op string, g xdr.GFID, size uint64) (xdr.Iatt, xdr.Iatt, error) {
	ino, err := m.get(op, g)
	if err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, err
	}
	if ino.children != nil {
		return xdr.Iatt{}, xdr.Iatt{}, m.err(op, g, syscall.EISDIR)
	}
	pre := stat(ino)
	ino.data = resize(ino.data, size)
	return pre, stat(ino), nil
}

func resize(b []byte, n uint64) []byte {
	if uint64(len(b)) >= n {
		return b[:n]
	}
	return append(b, make([]byte, n-uint64(len(b)))...)
}

// Truncate sets a file's size.
func (m *Mem) Truncate(ctx context.Context, g xdr.GFID, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := m.enter(ctx, "TRUNCATE", g); err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	pre, post, err = m.truncate("TRUNCATE", g, size)
	return pre, post, nil, err
}

// Ftruncate is Truncate through an fd.
func (m *Mem) Ftruncate(ctx context.Context, f *fop.Fd, size uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := m.enterFd(ctx, "FTRUNCATE", f); err != nil {
		return xdr.Iatt{}, xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	pre, post, err = m.truncate("FTRUNCATE", f.GFID, size)
	return pre, post, nil, err
}

// Access always grants: the tests run as root.
func (m *Mem) Access(ctx context.Context, g xdr.GFID, mask uint32, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "ACCESS", g); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	_, err := m.get("ACCESS", g)
	return nil, err
}

func (m *Mem) open(ctx context.Context, op string, g xdr.GFID, flags uint32, dir bool) (*fop.Fd, error) {
	if err := m.enter(ctx, op, g); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get(op, g)
	if err != nil {
		return nil, err
	}
	if dir != (ino.children != nil) {
		if dir {
			return nil, m.err(op, g, syscall.ENOTDIR)
		}
		return nil, m.err(op, g, syscall.EISDIR)
	}
	f := &fop.Fd{GFID: g, Flags: flags, Dir: dir}
	m.opened[f] = true
	ino.open++
	return f, nil
}

// Open opens a file.
func (m *Mem) Open(ctx context.Context, g xdr.GFID, flags uint32, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	f, err := m.open(ctx, "OPEN", g, flags, false)
	return f, nil, err
}

// Opendir opens a directory.
func (m *Mem) Opendir(ctx context.Context, g xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	f, err := m.open(ctx, "OPENDIR", g, 0, true)
	return f, nil, err
}

// Release closes an fd.
func (m *Mem) Release(ctx context.Context, f *fop.Fd) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["RELEASE"]++
	if f.Anon {
		return nil
	}
	delete(m.lost, f)
	if !m.opened[f] {
		return nil
	}
	delete(m.opened, f)
	if ino := m.inodes[f.GFID]; ino != nil {
		if ino.open--; ino.open == 0 && ino.st.Nlink == 0 {
			delete(m.inodes, f.GFID)
		}
	}
	return nil
}

// Readdirp lists a directory from offset (an index into its sorted names,
// "." and ".." included).
func (m *Mem) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) (ents []fop.Dirent, eof bool, rx xdr.Dict, err error) {
	if err := m.enterFd(ctx, "READDIRP", f); err != nil {
		return nil, false, nil, err
	}
	defer m.mu.Unlock()
	d, err := m.dir("READDIRP", f.GFID)
	if err != nil {
		return nil, false, nil, err
	}
	names := []string{".", ".."}
	var rest []string
	for n := range d.children {
		rest = append(rest, n)
	}
	sort.Strings(rest)
	names = append(names, rest...)
	var out []fop.Dirent
	for i := int(offset); i < len(names); i++ {
		st := d.st
		if c, ok := d.children[names[i]]; ok {
			st = stat(m.inodes[c])
		}
		var ex xdr.Dict
		if c, ok := d.children[names[i]]; ok {
			ex = requested(m.inodes[c], xd)
		}
		out = append(out, fop.Dirent{Ino: st.Ino, Off: uint64(i + 1), Type: st.Mode & syscall.S_IFMT >> 12, Name: names[i], Stat: st, Xdata: ex})
		if len(out) >= 64 {
			return out, i+1 == len(names), nil, nil
		}
	}
	return out, true, nil, nil
}

// REQUIRES m.mu.
func (m *Mem) make(op string, parent xdr.GFID, name string, g xdr.GFID, mode uint32, xd xdr.Dict) (*inode, error) {
	d, err := m.dir(op, parent)
	if err != nil {
		return nil, err
	}
	if len(name) > 255 {
		return nil, m.err(op, parent, syscall.ENAMETOOLONG)
	}
	if _, ok := d.children[name]; ok {
		return nil, m.err(op, parent, syscall.EEXIST)
	}
	if g.IsZero() {
		return nil, m.err(op, parent, syscall.EINVAL)
	}
	// The parent-layout check a DHT client asks for
	// (glusterfs.preop.parent.key): the key names an xattr whose value in
	// the request must be the parent's on disk, else EIO.
	var preKey string
	if k, ok := xd.Bytes("glusterfs.preop.parent.key"); ok && (op == "CREATE" || op == "MKDIR") {
		preKey = string(k)
		if want, ok := xd.Bytes(preKey); ok && !bytes.Equal(want, d.xattrs[preKey]) {
			return nil, m.err(op, parent, syscall.EIO)
		}
	}
	if old, ok := m.inodes[g]; ok {
		// The gfid exists elsewhere: a heal recreating a name links it.
		if old.children != nil {
			return nil, m.err(op, parent, syscall.EEXIST)
		}
		d.children[name] = g
		old.st.Nlink++
		return old, nil
	}
	ino := &inode{st: xdr.Iatt{GFID: g, Ino: g.Ino(), Mode: mode, Nlink: 1, Blksize: 4096}, xattrs: map[string][]byte{}}
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		ino.children = map[string]xdr.GFID{}
		ino.st.Nlink = 2
	}
	// A posix brick sets the xattrs the request carries on the new inode
	// (posix_entry_create_xattr_set): a DHT layout, a shard block size.
	for _, p := range xd {
		if p.Key == preKey && preKey != "" {
			continue
		}
		if strings.HasPrefix(p.Key, "trusted.") || strings.HasPrefix(p.Key, "user.") {
			ino.xattrs[p.Key] = append([]byte(nil), p.Value.Bytes...)
		}
	}
	m.inodes[g] = ino
	d.children[name] = g
	return ino, nil
}

// Create makes and opens a file with gfid g.
func (m *Mem) Create(ctx context.Context, parent xdr.GFID, name string, flags, mode, umask uint32, g xdr.GFID, xd xdr.Dict) (*fop.Fd, xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "CREATE", parent); err != nil {
		return nil, xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	if d, err := m.dir("CREATE", parent); err == nil && flags&syscall.O_EXCL == 0 {
		// Without O_EXCL the server opens the file the name holds, with
		// its own gfid (posix_create).
		if old, ok := d.children[name]; ok && m.inodes[old].children == nil {
			f := &fop.Fd{GFID: old, Flags: flags}
			m.opened[f] = true
			m.inodes[old].open++
			return f, stat(m.inodes[old]), nil, nil
		}
	}
	ino, err := m.make("CREATE", parent, name, g, syscall.S_IFREG|mode&^umask&0o7777, xd)
	if err != nil {
		return nil, xdr.Iatt{}, nil, err
	}
	f := &fop.Fd{GFID: g, Flags: flags}
	m.opened[f] = true
	ino.open++
	return f, stat(ino), nil, nil
}

// Mkdir makes a directory with gfid g.
func (m *Mem) Mkdir(ctx context.Context, parent xdr.GFID, name string, mode, umask uint32, g xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "MKDIR", parent); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.make("MKDIR", parent, name, g, syscall.S_IFDIR|mode&^umask&0o7777, xd)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	return stat(ino), nil, nil
}

// Mknod makes a node (a regular file, a FIFO...) with gfid g.
func (m *Mem) Mknod(ctx context.Context, parent xdr.GFID, name string, mode uint32, rdev uint64, umask uint32, g xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "MKNOD", parent); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.make("MKNOD", parent, name, g, mode&syscall.S_IFMT|mode&^umask&0o7777, xd)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	ino.st.Rdev = rdev
	return stat(ino), nil, nil
}

// Symlink makes a symbolic link with gfid g.
func (m *Mem) Symlink(ctx context.Context, parent xdr.GFID, name, target string, umask uint32, g xdr.GFID, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "SYMLINK", parent); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.make("SYMLINK", parent, name, g, syscall.S_IFLNK|0o777, xd)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	ino.target = target
	ino.st.Size = uint64(len(target))
	return stat(ino), nil, nil
}

// Readlink returns a symlink's target.
func (m *Mem) Readlink(ctx context.Context, g xdr.GFID, xd xdr.Dict) (string, xdr.Dict, error) {
	if err := m.enter(ctx, "READLINK", g); err != nil {
		return "", nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("READLINK", g)
	if err != nil {
		return "", nil, err
	}
	if ino.st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		return "", nil, m.err("READLINK", g, syscall.EINVAL)
	}
	return ino.target, nil, nil
}

// Link adds a name for a file.
func (m *Mem) Link(ctx context.Context, g, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "LINK", g); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("LINK", g)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	if ino.children != nil {
		return xdr.Iatt{}, nil, m.err("LINK", g, syscall.EPERM)
	}
	d, err := m.dir("LINK", newParent)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	if _, ok := d.children[newName]; ok {
		return xdr.Iatt{}, nil, m.err("LINK", newParent, syscall.EEXIST)
	}
	d.children[newName] = g
	ino.st.Nlink++
	return stat(ino), nil, nil
}

// REQUIRES m.mu.
func (m *Mem) drop(g xdr.GFID) {
	ino := m.inodes[g]
	if ino == nil {
		return
	}
	if ino.children != nil || ino.st.Nlink <= 1 {
		ino.st.Nlink = 0
		if ino.open == 0 {
			delete(m.inodes, g)
		}
		return
	}
	ino.st.Nlink--
}

// Unlink removes a name.
func (m *Mem) Unlink(ctx context.Context, parent xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "UNLINK", parent); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	d, err := m.dir("UNLINK", parent)
	if err != nil {
		return nil, err
	}
	g, ok := d.children[name]
	if !ok {
		return nil, m.err("UNLINK", parent, syscall.ENOENT)
	}
	if m.inodes[g].children != nil {
		return nil, m.err("UNLINK", parent, syscall.EISDIR)
	}
	// DHT's guarded unlinks of linkto files (posix_unlink): refused
	// while the file is open, or when it is not a linkto file.
	if _, ok := xd.Get("dont-unlink-for-open-fd"); ok && m.inodes[g].open > 0 {
		return nil, m.err("UNLINK", parent, syscall.EBUSY)
	}
	if _, ok := xd.Get("unlink-only-if-dht-linkto-file"); ok {
		ino := m.inodes[g]
		if _, link := ino.xattrs["trusted.glusterfs.dht.linkto"]; !link || ino.st.Mode&syscall.S_IFMT != syscall.S_IFREG || ino.st.Mode&07777 != syscall.S_ISVTX {
			return nil, m.err("UNLINK", parent, syscall.EBUSY)
		}
	}
	var rx xdr.Dict
	if _, asked := xd.Get("gf_get_file_block_count"); asked {
		// posix_unlink answers the unlinked file's ia_blocks.
		rx = rx.With("gf_get_file_block_count", xdr.Uint(stat(m.inodes[g]).Blocks))
	}
	delete(d.children, name)
	m.drop(g)
	return rx, nil
}

// Rmdir removes an empty directory, or with fop.RmdirRecursive a
// directory and everything below it (a brick moves it to its landfill).
func (m *Mem) Rmdir(ctx context.Context, parent xdr.GFID, name string, flags int32, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "RMDIR", parent); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	d, err := m.dir("RMDIR", parent)
	if err != nil {
		return nil, err
	}
	g, ok := d.children[name]
	if !ok {
		return nil, m.err("RMDIR", parent, syscall.ENOENT)
	}
	c := m.inodes[g]
	if c.children == nil {
		return nil, m.err("RMDIR", parent, syscall.ENOTDIR)
	}
	if len(c.children) > 0 && flags&fop.RmdirRecursive == 0 {
		return nil, m.err("RMDIR", parent, syscall.ENOTEMPTY)
	}
	delete(d.children, name)
	m.dropTree(g)
	return nil, nil
}

// below reports whether g is somewhere under directory dir. REQUIRES m.mu.
func (m *Mem) below(dir, g xdr.GFID) bool {
	d := m.inodes[dir]
	if d == nil {
		return false
	}
	for _, c := range d.children {
		if c == g {
			return true
		}
		if ci := m.inodes[c]; ci != nil && ci.children != nil && m.below(c, g) {
			return true
		}
	}
	return false
}

// dropTree unlinks a directory's contents, depth first, then the
// directory. REQUIRES m.mu.
func (m *Mem) dropTree(g xdr.GFID) {
	if ino := m.inodes[g]; ino != nil {
		for n, c := range ino.children {
			delete(ino.children, n)
			if ci := m.inodes[c]; ci != nil && ci.children != nil {
				m.dropTree(c)
			} else {
				m.drop(c)
			}
		}
	}
	m.drop(g)
}

// Rename moves a name, replacing a file at the destination.
func (m *Mem) Rename(ctx context.Context, oldParent xdr.GFID, oldName string, newParent xdr.GFID, newName string, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if err := m.enter(ctx, "RENAME", oldParent); err != nil {
		return xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	od, err := m.dir("RENAME", oldParent)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	nd, err := m.dir("RENAME", newParent)
	if err != nil {
		return xdr.Iatt{}, nil, err
	}
	g, ok := od.children[oldName]
	if !ok {
		return xdr.Iatt{}, nil, m.err("RENAME", oldParent, syscall.ENOENT)
	}
	src := m.inodes[g]
	if src.children != nil && (newParent == g || m.below(g, newParent)) {
		return xdr.Iatt{}, nil, m.err("RENAME", newParent, syscall.EINVAL)
	}
	if old, ok := nd.children[newName]; ok && old != g {
		c := m.inodes[old]
		switch {
		case src.children != nil && c.children == nil:
			return xdr.Iatt{}, nil, m.err("RENAME", newParent, syscall.ENOTDIR)
		case src.children == nil && c.children != nil:
			return xdr.Iatt{}, nil, m.err("RENAME", newParent, syscall.EISDIR)
		case c.children != nil && len(c.children) > 0:
			return xdr.Iatt{}, nil, m.err("RENAME", newParent, syscall.ENOTEMPTY)
		}
		m.drop(old)
	}
	delete(od.children, oldName)
	nd.children[newName] = g
	return stat(m.inodes[g]), nil, nil
}

// Read returns up to size bytes from off.
func (m *Mem) Read(ctx context.Context, f *fop.Fd, off uint64, size uint32, xd xdr.Dict) ([]byte, xdr.Dict, error) {
	if err := m.enterFd(ctx, "READ", f); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("READ", f.GFID)
	if err != nil {
		return nil, nil, err
	}
	if off >= uint64(len(ino.data)) {
		return nil, nil, nil
	}
	end := min(off+uint64(size), uint64(len(ino.data)))
	return append([]byte(nil), ino.data[off:end]...), nil, nil
}

// Write writes data at off.
func (m *Mem) Write(ctx context.Context, f *fop.Fd, off uint64, data []byte, xdata xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := m.enterFd(ctx, "WRITE", f); err != nil {
		return pre, post, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("WRITE", f.GFID)
	if err != nil {
		return pre, post, nil, err
	}
	pre = stat(ino)
	if end := off + uint64(len(data)); end > uint64(len(ino.data)) {
		ino.data = resize(ino.data, end)
	}
	copy(ino.data[off:], data)
	if _, ok := xdata.Get("trusted.glusterfs.protect.writes"); ok {
		// posix marks a file a client wrote to during its migration
		// (posix_check_internal_writes), so the rebalance daemon's
		// later writes of older data fail.
		ino.xattrs["trusted.glusterfs.protect.writes"] = []byte{0, 0, 0, 1}
	}
	if dom, ok := xdata.Bytes("glusterfs.inodelk-dom-count"); ok {
		// How many inode locks are held or awaited in that domain, as
		// features/locks answers (AFR gives its eager lock up on > 1).
		key := "i" + string(f.GFID[:]) + string(dom)
		rx = xdr.Dict{{Key: "glusterfs.inodelk-count", Value: xdr.Uint(uint64(len(m.locks[key]) + m.waiting[key]))}}
	}
	return pre, stat(ino), rx, nil
}

func (m *Mem) fdNop(ctx context.Context, op string, f *fop.Fd) error {
	if err := m.enterFd(ctx, op, f); err != nil {
		return err
	}
	m.mu.Unlock()
	return nil
}

// Flush is close(2) on the fd.
func (m *Mem) Flush(ctx context.Context, f *fop.Fd, xd xdr.Dict) (xdr.Dict, error) {
	return nil, m.fdNop(ctx, "FLUSH", f)
}

// Fsync does nothing: memory is durable enough here.
func (m *Mem) Fsync(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	return nil, m.fdNop(ctx, "FSYNC", f)
}

// Fsyncdir does nothing.
func (m *Mem) Fsyncdir(ctx context.Context, f *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	return nil, m.fdNop(ctx, "FSYNCDIR", f)
}

// Statfs reports a fixed 1 GiB filesystem.
func (m *Mem) Statfs(ctx context.Context, g xdr.GFID, xd xdr.Dict) (xdr.Statfs, xdr.Dict, error) {
	if err := m.enter(ctx, "STATFS", g); err != nil {
		return xdr.Statfs{}, nil, err
	}
	defer m.mu.Unlock()
	return xdr.Statfs{Bsize: 4096, Frsize: 4096, Blocks: 262144, Bfree: 131072, Bavail: 131072, Files: 65536, Ffree: 65000, Namemax: 255}, nil, nil
}

// Getxattr returns one xattr, or all with name "".
func (m *Mem) Getxattr(ctx context.Context, g xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if err := m.enter(ctx, "GETXATTR", g); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("GETXATTR", g)
	if err != nil {
		return nil, nil, err
	}
	var out xdr.Dict
	for k, v := range ino.xattrs {
		if name == "" || k == name {
			out = append(out, xdr.Pair{Key: k, Value: xdr.Ptr(append([]byte(nil), v...))})
		}
	}
	if name != "" && len(out) == 0 {
		return nil, nil, m.err("GETXATTR", g, syscall.ENODATA)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil, nil
}

// Setxattr sets xattrs (XATTR_CREATE and XATTR_REPLACE honoured).
func (m *Mem) Setxattr(ctx context.Context, g xdr.GFID, dict xdr.Dict, flags uint32, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "SETXATTR", g); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("SETXATTR", g)
	if err != nil {
		return nil, err
	}
	for _, p := range dict {
		_, has := ino.xattrs[p.Key]
		switch {
		case flags&1 != 0 && has: // XATTR_CREATE
			return nil, m.err("SETXATTR", g, syscall.EEXIST)
		case flags&2 != 0 && !has: // XATTR_REPLACE
			return nil, m.err("SETXATTR", g, syscall.ENODATA)
		}
		v := p.Value.Bytes
		if p.Value.Type == xdr.TypeStr {
			v = []byte(strings.TrimSuffix(string(v), "\x00"))
		}
		ino.xattrs[p.Key] = append([]byte(nil), v...)
	}
	return nil, nil
}

// Removexattr removes one xattr.
func (m *Mem) Removexattr(ctx context.Context, g xdr.GFID, name string, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "REMOVEXATTR", g); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get("REMOVEXATTR", g)
	if err != nil {
		return nil, err
	}
	if _, ok := ino.xattrs[name]; !ok {
		return nil, m.err("REMOVEXATTR", g, syscall.ENODATA)
	}
	delete(ino.xattrs, name)
	return nil, nil
}

// Xattrop adds the big-endian int32 (fop.XattropAddArray) or int64
// (fop.XattropAddArray64) arrays of dict to the xattrs of the same keys,
// missing ones counting as zeros, and returns the results. An all-zero
// array only reads: a key it names that does not exist stays absent, as on
// a posix brick.
func (m *Mem) Xattrop(ctx context.Context, g xdr.GFID, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if err := m.enter(ctx, "XATTROP", g); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	return m.xattrop("XATTROP", g, flags, dict)
}

// Fxattrop is Xattrop through an fd.
func (m *Mem) Fxattrop(ctx context.Context, f *fop.Fd, flags uint32, dict, xd xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if err := m.enterFd(ctx, "FXATTROP", f); err != nil {
		return nil, nil, err
	}
	defer m.mu.Unlock()
	return m.xattrop("FXATTROP", f.GFID, flags, dict)
}

// xattrop carries out (F)XATTROP. REQUIRES m.mu.
func (m *Mem) xattrop(op string, g xdr.GFID, flags uint32, dict xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	ino, err := m.get(op, g)
	if err != nil {
		return nil, nil, err
	}
	width := 4
	switch flags {
	case fop.XattropAddArray64:
		width = 8
	case fop.XattropAddArray:
	case fop.XattropGetAndSet:
		// The old value is the answer, the new one is stored.
		var out xdr.Dict
		for _, p := range dict {
			out = append(out, xdr.Pair{Key: p.Key, Value: xdr.Ptr(append([]byte(nil), ino.xattrs[p.Key]...))})
			ino.xattrs[p.Key] = append([]byte(nil), p.Value.Bytes...)
		}
		return out, nil, nil
	default:
		return nil, nil, m.err(op, g, syscall.EINVAL)
	}
	var out xdr.Dict
	for _, p := range dict {
		add := p.Value.Bytes
		if len(add)%width != 0 {
			return nil, nil, m.err(op, g, syscall.EINVAL)
		}
		old, had := ino.xattrs[p.Key]
		cur := resize(append([]byte(nil), old...), uint64(len(add)))
		zero := true
		for i := 0; i+width <= len(add); i += width {
			if width == 4 {
				a := binary.BigEndian.Uint32(add[i:])
				zero = zero && a == 0
				binary.BigEndian.PutUint32(cur[i:], binary.BigEndian.Uint32(cur[i:])+a)
			} else {
				a := binary.BigEndian.Uint64(add[i:])
				zero = zero && a == 0
				binary.BigEndian.PutUint64(cur[i:], binary.BigEndian.Uint64(cur[i:])+a)
			}
		}
		if had || !zero {
			ino.xattrs[p.Key] = cur
		}
		out = append(out, xdr.Pair{Key: p.Key, Value: xdr.Ptr(append([]byte(nil), cur...))})
	}
	return out, nil, nil
}

func (m *Mem) fdRange(ctx context.Context, op string, f *fop.Fd, fn func(ino *inode)) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if err := m.enterFd(ctx, op, f); err != nil {
		return pre, post, nil, err
	}
	defer m.mu.Unlock()
	ino, err := m.get(op, f.GFID)
	if err != nil {
		return pre, post, nil, err
	}
	pre = stat(ino)
	fn(ino)
	return pre, stat(ino), nil, nil
}

// Fallocate extends the file with zeros unless mode is KEEP_SIZE (any
// non-zero mode, as a brick takes it).
func (m *Mem) Fallocate(ctx context.Context, f *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return m.fdRange(ctx, "FALLOCATE", f, func(ino *inode) {
		if mode == 0 && off+length > uint64(len(ino.data)) {
			ino.data = resize(ino.data, off+length)
		}
	})
}

// Discard punches a hole: the range reads zeros, the size stays.
func (m *Mem) Discard(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return m.fdRange(ctx, "DISCARD", f, func(ino *inode) {
		for i := off; i < off+length && i < uint64(len(ino.data)); i++ {
			ino.data[i] = 0
		}
	})
}

// Zerofill zeroes a range and extends the file when it crosses EOF, as a
// brick's ZEROFILL does.
func (m *Mem) Zerofill(ctx context.Context, f *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	return m.fdRange(ctx, "ZEROFILL", f, func(ino *inode) {
		if off+length > uint64(len(ino.data)) {
			ino.data = resize(ino.data, off+length)
		}
		clear(ino.data[off : off+length])
	})
}

// Seek finds data (anywhere below EOF: Mem keeps no holes) or the hole at
// EOF.
func (m *Mem) Seek(ctx context.Context, f *fop.Fd, off uint64, what int32, xd xdr.Dict) (uint64, xdr.Dict, error) {
	var out uint64
	var serr error
	_, _, _, err := m.fdRange(ctx, "SEEK", f, func(ino *inode) {
		size := uint64(len(ino.data))
		switch {
		case off >= size:
			serr = m.err("SEEK", f.GFID, syscall.ENXIO)
		case what == fop.SeekData:
			out = off
		default:
			out = size
		}
	})
	if err != nil {
		return 0, nil, err
	}
	return out, nil, serr
}

func owner(ctx context.Context) string {
	if c := fop.CallerOf(ctx); c != nil {
		return string(c.LkOwner)
	}
	return ""
}

func conflicts(held []lock, l lock) bool {
	for _, h := range held {
		if h.owner == l.owner || (!h.write && !l.write) {
			continue
		}
		if l.entry {
			// A lock on the whole directory covers every name
			// (names_conflict in features/locks).
			if h.name == "" || l.name == "" || h.name == l.name {
				return true
			}
			continue
		}
		hEnd, lEnd := h.end, l.end
		if (hEnd == 0 || l.start < hEnd) && (lEnd == 0 || h.start < lEnd) {
			return true
		}
	}
	return false
}

// takeLock runs a lock command on the lock list key. REQUIRES m.mu.
func (m *Mem) takeLock(ctx context.Context, op, key string, g xdr.GFID, l lock, unlock, block bool) error {
	if unlock {
		// An unlock drops the owner's locks it overlaps (an entry
		// unlock: the owner's lock on that name), not every lock the
		// owner holds.
		held := m.locks[key][:0]
		for _, h := range m.locks[key] {
			mine := h.owner == l.owner
			if l.entry {
				mine = mine && h.name == l.name
			} else {
				mine = mine && (h.end == 0 || l.start < h.end) && (l.end == 0 || h.start < l.end)
			}
			if !mine {
				held = append(held, h)
			}
		}
		m.locks[key] = held
		m.cond.Broadcast()
		return nil
	}
	// As features/locks: a request that conflicts with a blocked one
	// queued before it waits behind it (unless its owner already holds
	// a lock there), so a waiter is not overtaken by later requests.
	if m.grantable(key, &l, len(m.queued[key])) {
		m.locks[key] = append(m.locks[key], l)
		return nil
	}
	if !block {
		return m.err(op, g, syscall.EAGAIN)
	}
	me := &l
	m.queued[key] = append(m.queued[key], me)
	defer func() {
		q := m.queued[key]
		for i, w := range q {
			if w == me {
				m.queued[key] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		if len(m.queued[key]) == 0 {
			delete(m.queued, key)
		}
		m.cond.Broadcast() // a waiter behind this one may go now
	}()
	for {
		ahead := 0
		for ahead < len(m.queued[key]) && m.queued[key][ahead] != me {
			ahead++
		}
		if m.grantable(key, me, ahead) {
			m.locks[key] = append(m.locks[key], l)
			return nil
		}
		if ctx.Err() != nil || m.down {
			return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: syscall.ETIMEDOUT, Err: ctx.Err()}
		}
		stop := context.AfterFunc(ctx, func() { m.mu.Lock(); m.cond.Broadcast(); m.mu.Unlock() })
		m.waiting[key]++
		m.cond.Wait()
		m.waiting[key]--
		stop()
		if m.down {
			// The connection the request came on is gone, and with it
			// the request: never grant it to a brick that comes back.
			return &fop.OpError{Brick: m.name, Fop: op, GFID: g, Errno: syscall.ENOTCONN, Err: errors.New("brick down")}
		}
	}
}

// grantable reports whether l can be granted on the lock list key: no
// held lock conflicts, and, unless l's owner holds one there already, no
// blocked request among the first ahead queued. REQUIRES m.mu.
func (m *Mem) grantable(key string, l *lock, ahead int) bool {
	if conflicts(m.locks[key], *l) {
		return false
	}
	for _, h := range m.locks[key] {
		if h.owner == l.owner {
			return true
		}
	}
	var before []lock
	for _, w := range m.queued[key][:ahead] {
		before = append(before, *w)
	}
	return !conflicts(before, *l)
}

// Inodelk takes, waits for or drops an inode lock in domain.
func (m *Mem) Inodelk(ctx context.Context, g xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "INODELK", g); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return nil, m.inodelk(ctx, "INODELK", g, domain, cmd, fl)
}

// Finodelk is Inodelk through an fd.
func (m *Mem) Finodelk(ctx context.Context, f *fop.Fd, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enterFd(ctx, "FINODELK", f); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return nil, m.inodelk(ctx, "FINODELK", f.GFID, domain, cmd, fl)
}

// inodelk runs an inode lock command. REQUIRES m.mu.
func (m *Mem) inodelk(ctx context.Context, op string, g xdr.GFID, domain string, cmd uint32, fl xdr.Flock) error {
	l := lock{owner: owner(ctx), write: fl.Type == fop.LkWrite, start: fl.Start}
	if fl.Len > 0 {
		l.end = fl.Start + fl.Len
	}
	return m.takeLock(ctx, op, "i"+string(g[:])+domain, g, l, fl.Type == fop.LkUnlock, cmd == fop.LkSetW)
}

// Entrylk takes, waits for or drops the lock on name in parent (the whole
// directory when name is empty) within domain.
func (m *Mem) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	if err := m.enter(ctx, "ENTRYLK", parent); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	l := lock{owner: owner(ctx), write: typ == fop.LkWrite, entry: true, name: name}
	return nil, m.takeLock(ctx, "ENTRYLK", "e"+string(parent[:])+domain, parent, l, cmd == fop.EntrylkUnlock, cmd == fop.EntrylkLock)
}

// Lk grants every POSIX lock (the tests drive one client).
func (m *Mem) Lk(ctx context.Context, f *fop.Fd, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Flock, xdr.Dict, error) {
	if err := m.enterFd(ctx, "LK", f); err != nil {
		return xdr.Flock{}, nil, err
	}
	defer m.mu.Unlock()
	if cmd == fop.LkGet {
		fl.Type = fop.LkUnlock
	}
	return fl, nil, nil
}

// CopyFileRange copies size bytes from in at offIn to out at offOut, as
// copy_file_range(2) does: short at the source's end of file; EBADF when
// in is not readable or out not writable or appending.
func (m *Mem) CopyFileRange(ctx context.Context, in *fop.Fd, offIn uint64, out *fop.Fd, offOut, size uint64, flags uint32, xd xdr.Dict) (uint64, xdr.Iatt, xdr.Dict, error) {
	if err := m.enterFd(ctx, "COPY_FILE_RANGE", out); err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	defer m.mu.Unlock()
	// An anonymous source works (the brick opens it O_RDWR); an
	// anonymous destination does not (gluster-clone.md, table 3).
	if in.Anon && (m.inodes[in.GFID] == nil || m.inodes[in.GFID].st.Nlink == 0) {
		return 0, xdr.Iatt{}, nil, m.err("COPY_FILE_RANGE", in.GFID, syscall.ESTALE)
	}
	if !(m.opened[in] || in.Anon) || !in.Anon && in.Flags&syscall.O_ACCMODE == syscall.O_WRONLY || out.Anon ||
		out.Flags&syscall.O_ACCMODE == syscall.O_RDONLY || out.Flags&syscall.O_APPEND != 0 || in.Dir || out.Dir {
		return 0, xdr.Iatt{}, nil, m.err("COPY_FILE_RANGE", out.GFID, syscall.EBADF)
	}
	if flags != 0 {
		return 0, xdr.Iatt{}, nil, m.err("COPY_FILE_RANGE", out.GFID, syscall.EINVAL)
	}
	src, err := m.get("COPY_FILE_RANGE", in.GFID)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	dst, err := m.get("COPY_FILE_RANGE", out.GFID)
	if err != nil {
		return 0, xdr.Iatt{}, nil, err
	}
	if in.GFID == out.GFID && offIn < offOut+size && offOut < offIn+size {
		return 0, xdr.Iatt{}, nil, m.err("COPY_FILE_RANGE", out.GFID, syscall.EINVAL)
	}
	var n uint64
	if offIn < uint64(len(src.data)) {
		n = min(size, uint64(len(src.data))-offIn)
	}
	if n > 0 {
		if end := offOut + n; end > uint64(len(dst.data)) {
			dst.data = resize(dst.data, end)
		}
		copy(dst.data[offOut:offOut+n], src.data[offIn:offIn+n])
	}
	return n, stat(dst), nil, nil
}
