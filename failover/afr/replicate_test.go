package afr

import (
	"context"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// fakeChild is an in-memory brick: enough of one for the transaction
// logic. Fops it does not implement panic through the nil Fops.
type fakeChild struct {
	fop.Fops
	name string

	mu       sync.Mutex
	up       bool
	writeErr error
	lookupX  xdr.Dict // changelog this child reports on LOOKUP, if set
	events   []string // what reached the brick, in order
	xattrops []xdr.Dict
	xattrs   map[xdr.GFID]map[string]counts // the changelog as ADD_ARRAY left it, per inode
	rmdirErr error
	lookErr  error // LOOKUP's answer, if set
	xopErr   error // XATTROP's answer, if set
	size     uint64
	zeroed   [][2]uint64         // ZEROFILL ranges
	falloc   [][3]uint64         // FALLOCATE flags, offset, length
	quiet    bool                // record no events (benchmarks)
	names    map[string]xdr.Iatt // the namespace, if set (entry_test.go)
	created  int64               // seq of the last entry made here
	markedAt int64               // seq of the last xattrop
}

func (f *fakeChild) log(e string) {
	f.mu.Lock()
	if !f.quiet {
		f.events = append(f.events, e)
	}
	f.mu.Unlock()
}

func (f *fakeChild) Name() string     { return f.name }
func (f *fakeChild) Up() bool         { f.mu.Lock(); defer f.mu.Unlock(); return f.up }
func (f *fakeChild) Kick(string)      {}
func (f *fakeChild) Watch(func(bool)) {}
func (f *fakeChild) down() error {
	return &fop.OpError{Brick: f.name, Errno: syscall.ENOTCONN}
}

func (f *fakeChild) Inodelk(ctx context.Context, gfid xdr.GFID, domain string, cmd uint32, fl xdr.Flock, xd xdr.Dict) (xdr.Dict, error) {
	if !f.Up() {
		return nil, f.down()
	}
	if fl.Type == fop.LkUnlock {
		f.log("unlock")
	} else {
		f.log("lock")
	}
	return nil, nil
}

func (f *fakeChild) Entrylk(ctx context.Context, parent xdr.GFID, name, domain string, cmd, typ uint32, xd xdr.Dict) (xdr.Dict, error) {
	if !f.Up() {
		return nil, f.down()
	}
	f.log("entrylk")
	return nil, nil
}

func (f *fakeChild) Xattrop(ctx context.Context, gfid xdr.GFID, flags uint32, dict, xdata xdr.Dict) (xdr.Dict, xdr.Dict, error) {
	if !f.Up() {
		return nil, nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.xopErr != nil {
		return nil, nil, f.xopErr
	}
	f.xattrops = append(f.xattrops, dict)
	f.events = append(f.events, "xattrop")
	f.markedAt = seq.Add(1)
	if f.xattrs == nil {
		f.xattrs = map[xdr.GFID]map[string]counts{}
	}
	if f.xattrs[gfid] == nil {
		f.xattrs[gfid] = map[string]counts{}
	}
	out := xdr.Dict{}
	for _, p := range dict {
		c, _ := parseCounts(p.Value.Bytes)
		v := f.xattrs[gfid][p.Key]
		for i := range v {
			v[i] += c[i]
		}
		f.xattrs[gfid][p.Key] = v
		out = append(out, xdr.Pair{Key: p.Key, Value: xdr.Ptr(v.bytes())})
	}
	return out, nil, nil
}

func (f *fakeChild) Open(ctx context.Context, gfid xdr.GFID, flags uint32, xd xdr.Dict) (*fop.Fd, xdr.Dict, error) {
	if !f.Up() {
		return nil, nil, f.down()
	}
	return &fop.Fd{GFID: gfid, Flags: flags}, nil, nil
}

func (f *fakeChild) Release(ctx context.Context, fd *fop.Fd) error {
	return nil
}

func (f *fakeChild) Fsync(ctx context.Context, fd *fop.Fd, datasync bool, xd xdr.Dict) (xdr.Dict, error) {
	if !f.Up() {
		return nil, f.down()
	}
	f.log("fsync")
	return nil, nil
}

func (f *fakeChild) Write(ctx context.Context, fd *fop.Fd, off uint64, data []byte, x xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if !f.Up() {
		return pre, post, nil, f.down()
	}
	f.mu.Lock()
	err = f.writeErr
	f.mu.Unlock()
	if err != nil {
		return pre, post, nil, err
	}
	f.log("write")
	return pre, xdr.Iatt{GFID: fd.GFID, Size: off + uint64(len(data)), Mode: syscall.S_IFREG | 0o644}, nil, nil
}

func (f *fakeChild) Lookup(ctx context.Context, parent xdr.GFID, name string, gfid xdr.GFID, x xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if !f.Up() {
		return xdr.Iatt{}, nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lookErr != nil {
		return xdr.Iatt{}, nil, f.lookErr
	}
	if f.names != nil {
		if name == "" {
			for _, st := range f.names {
				if st.GFID == gfid {
					return st, nil, nil
				}
			}
		} else if st, ok := f.names[name]; ok {
			return st, nil, nil
		}
		return xdr.Iatt{}, nil, &fop.OpError{Brick: f.name, Fop: "LOOKUP", Errno: syscall.ENOENT}
	}
	x = f.lookupX
	if x == nil {
		for k, v := range f.xattrs[testGFID] {
			x = append(x, xdr.Pair{Key: k, Value: xdr.Ptr(v.bytes())})
		}
	}
	return xdr.Iatt{GFID: testGFID, Mode: syscall.S_IFREG | 0o644}, x, nil
}

var testGFID = xdr.GFID{0x10, 15: 0x42}

func newTestReplica(t testing.TB) (*Replicate, []*fakeChild) {
	t.Helper()
	fakes := make([]*fakeChild, 3)
	kids := make([]Child, 3)
	for i := range fakes {
		fakes[i] = &fakeChild{name: "v-client-" + string(rune('0'+i)), up: true}
		kids[i] = fakes[i]
	}
	r, err := NewReplicate("v-replicate-0", kids, []string{"v-client-0", "v-client-1", "v-client-2"},
		ReplicateOptions{Arbiter: -1, PostOpDelay: 20 * time.Millisecond, FopTimeout: time.Second}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	// The fakes implement the transaction fops, not the heal's: the
	// heal worker never starts (kicks land in a buffer nobody reads).
	r.healOnce.Do(func() { r.healKick = make(chan struct{}, 1) })
	t.Cleanup(r.Close)
	return r, fakes
}

// pendingOf returns the data slot that dict adds against child k.
func pendingOf(d xdr.Dict, k string) int32 {
	b, _ := d.Bytes("trusted.afr." + k)
	c, _ := parseCounts(b)
	return c[slotData]
}

func TestWriteAccusesFailedBrickBeforeAck(t *testing.T) {
	r, f := newTestReplica(t)
	ctx := context.Background()
	fd := openTestFile(t, r)
	f[2].mu.Lock()
	f[2].writeErr = &fop.OpError{Brick: "v-client-2", Errno: syscall.ENOTCONN}
	f[2].mu.Unlock()
	if _, _, _, err := r.Write(ctx, fd, 0, []byte("data"), nil); err != nil {
		t.Fatalf("write with one brick failing: %v", err)
	}
	// The accusation reached both survivors before Write returned, after
	// their data was flushed.
	for _, c := range f[:2] {
		c.mu.Lock()
		accused := false
		for _, d := range c.xattrops {
			if pendingOf(d, "v-client-2") == 1 {
				accused = true
			}
		}
		events := strings.Join(c.events, " ")
		c.mu.Unlock()
		if !accused {
			t.Errorf("%s: no accusation of v-client-2 before the write was acknowledged", c.name)
		}
		if !strings.Contains(events, "write fsync xattrop") {
			t.Errorf("%s: events %q: want the data flushed before the accusation", c.name, events)
		}
	}
	// The failed brick serves no more reads of this file: neither from
	// the cached readable set nor after a fresh lookup.
	order, err := r.readOrder(ctx, r.inode(testGFID), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range order {
		if i == 2 {
			t.Fatalf("cached read order %v includes the brick that missed a write", order)
		}
	}
	r.inode(testGFID).readable = nil
	order, err = r.readOrder(ctx, r.inode(testGFID), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range order {
		if i == 2 {
			t.Fatalf("read order %v includes the brick that missed a write", order)
		}
	}
}

func TestWriteWithoutQuorumKeepsDirty(t *testing.T) {
	r, f := newTestReplica(t)
	ctx := context.Background()
	fd, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f[1:] {
		c.mu.Lock()
		c.writeErr = &fop.OpError{Brick: c.name, Errno: syscall.EIO}
		c.mu.Unlock()
	}
	_, _, _, err = r.Write(ctx, fd, 0, []byte("data"), nil)
	if fop.Errno(err) != syscall.EIO {
		t.Fatalf("write on 1 of 3: %v, want the bricks' EIO", err)
	}
	r.postOpNow(r.inode(testGFID))
	for _, c := range f {
		c.mu.Lock()
		raised := int32(0)
		for _, d := range c.xattrops {
			b, _ := d.Bytes(dirtyKey)
			dc, _ := parseCounts(b)
			raised += dc[slotData]
			if dc[slotData] < 0 {
				t.Errorf("%s: dirty cleared after a change that missed quorum", c.name)
			}
			for _, k := range []string{"v-client-0", "v-client-1", "v-client-2"} {
				if pendingOf(d, k) != 0 {
					t.Errorf("%s: %s accused after a change that missed quorum", c.name, k)
				}
			}
		}
		if raised <= 0 {
			t.Errorf("%s: no dirty mark left (pre-op raised %d): the heal daemon would not compare the copies", c.name, raised)
		}
		c.mu.Unlock()
	}
}

func TestSymmetricErrorAccusesNobody(t *testing.T) {
	r, f := newTestReplica(t)
	ctx := context.Background()
	fd, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range f {
		c.mu.Lock()
		c.writeErr = &fop.OpError{Brick: c.name, Errno: syscall.ENOSPC}
		c.mu.Unlock()
	}
	if _, _, _, err := r.Write(ctx, fd, 0, []byte("data"), nil); fop.Errno(err) != syscall.ENOSPC {
		t.Fatalf("got %v, want ENOSPC", err)
	}
	r.postOpNow(r.inode(testGFID))
	for _, c := range f {
		c.mu.Lock()
		raised, net := false, int32(0)
		for _, d := range c.xattrops {
			b, _ := d.Bytes(dirtyKey)
			dc, _ := parseCounts(b)
			raised = raised || dc[slotData] > 0
			net += dc[slotData]
			for _, k := range []string{"v-client-0", "v-client-1", "v-client-2"} {
				if pendingOf(d, k) != 0 {
					t.Errorf("%s accused for an error every brick gave", k)
				}
			}
		}
		// The transaction ran (pre-op raised dirty) and ended (post-op
		// took it back): the copies are still the same.
		if !raised || net != 0 {
			t.Errorf("%s: pre-op raised dirty: %v, dirty left %d; want raised and 0 left", c.name, raised, net)
		}
		c.mu.Unlock()
	}
}

func TestReadAvoidsAccusedBrick(t *testing.T) {
	r, f := newTestReplica(t)
	ctx := context.Background()
	blame := r.changelog(counts{}, map[int]counts{1: {1, 0, 0}})
	f[0].lookupX = blame
	if _, _, err := r.Lookup(ctx, xdr.RootGFID, "f", xdr.GFID{}, nil); err != nil {
		t.Fatal(err)
	}
	order, err := r.readOrder(ctx, r.inode(testGFID), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] == 1 || order[1] == 1 {
		t.Fatalf("read order %v, want bricks 0 and 2 only", order)
	}
	// Every brick accused: split-brain is EIO, never a silent pick.
	f[0].lookupX = r.changelog(counts{}, map[int]counts{1: {1, 0, 0}, 2: {1, 0, 0}})
	f[1].lookupX = r.changelog(counts{}, map[int]counts{0: {1, 0, 0}})
	r.inode(testGFID).readable = nil
	if _, err := r.readOrder(ctx, r.inode(testGFID), nil, false); fop.Errno(err) != syscall.EIO {
		t.Fatalf("split-brain read: %v, want EIO", err)
	}
}

func TestQuorum(t *testing.T) {
	r, f := newTestReplica(t)
	ctx := context.Background()
	for _, c := range f[1:] {
		c.mu.Lock()
		c.up = false
		c.mu.Unlock()
	}
	if _, _, err := r.Lookup(ctx, xdr.RootGFID, "f", xdr.GFID{}, nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Fatalf("lookup with 1 of 3 up: %v, want ENOTCONN", err)
	}
	if _, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Fatalf("open with 1 of 3 up: %v, want ENOTCONN", err)
	}
	// auto quorum for two children: half counts only with child 0.
	r2, _ := NewReplicate("w", []Child{f[0], f[1]}, []string{"a", "b"}, ReplicateOptions{Arbiter: -1}, zaptest.NewLogger(t))
	if !r2.hasQuorum([]bool{true, false}) || r2.hasQuorum([]bool{false, true}) {
		t.Fatal("replica 2 auto quorum")
	}
}

// TestUnanimousErrorIsTheAnswer: when the bricks that answer are a quorum
// and none succeeds, their errno is the caller's (afr_final_errno), not
// ENOTCONN; quorum is only about bricks that did not answer. A failure on
// our side (a lost connection, a timeout, an interrupt) is no answer. A
// name that fewer than a quorum of bricks hold is not trusted.
func TestUnanimousErrorIsTheAnswer(t *testing.T) {
	ctx := context.Background()
	own := func(f *fakeChild, en syscall.Errno) error {
		return &fop.OpError{Brick: f.name, Fop: "LOOKUP", Errno: en}
	}
	ours := func(f *fakeChild, en syscall.Errno) error {
		return &fop.OpError{Brick: f.name, Fop: "LOOKUP", Errno: en, Err: context.DeadlineExceeded}
	}
	type ans struct {
		up   bool
		err  func(*fakeChild, syscall.Errno) error
		code syscall.Errno
	}
	ok := ans{up: true}
	down := ans{}
	e := func(en syscall.Errno) ans { return ans{up: true, err: own, code: en} }
	lost := ans{up: true, err: ours, code: syscall.ENOTCONN}
	for _, tc := range []struct {
		name         string
		a            [3]ans
		byName, byID syscall.Errno // 0: success
	}{
		{"all ENAMETOOLONG", [3]ans{e(syscall.ENAMETOOLONG), e(syscall.ENAMETOOLONG), e(syscall.ENAMETOOLONG)}, syscall.ENAMETOOLONG, syscall.ENAMETOOLONG},
		{"all EACCES", [3]ans{e(syscall.EACCES), e(syscall.EACCES), e(syscall.EACCES)}, syscall.EACCES, syscall.EACCES},
		{"two EACCES, one down", [3]ans{e(syscall.EACCES), e(syscall.EACCES), down}, syscall.EACCES, syscall.EACCES},
		{"two EACCES, one lost", [3]ans{e(syscall.EACCES), lost, e(syscall.EACCES)}, syscall.EACCES, syscall.EACCES},
		{"one EACCES, two lost", [3]ans{lost, e(syscall.EACCES), lost}, syscall.ENOTCONN, syscall.EACCES},
		{"ENOENT beats EACCES", [3]ans{e(syscall.EACCES), e(syscall.ENOENT), e(syscall.EACCES)}, syscall.ENOENT, syscall.ENOENT},
		{"timeouts of ours are no answer", [3]ans{{up: true, err: ours, code: syscall.ETIMEDOUT}, {up: true, err: ours, code: syscall.EINTR}, e(syscall.EACCES)}, syscall.ENOTCONN, syscall.EACCES},
		{"one copy, two EACCES", [3]ans{ok, e(syscall.EACCES), e(syscall.EACCES)}, syscall.ENOTCONN, syscall.EACCES},
		{"one copy, two ENOENT", [3]ans{ok, e(syscall.ENOENT), e(syscall.ENOENT)}, 0, syscall.ENOENT},
		{"two copies, one EACCES", [3]ans{ok, ok, e(syscall.EACCES)}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, f := newTestReplica(t)
			for i, a := range tc.a {
				f[i].up = a.up
				if a.err != nil {
					f[i].lookErr = a.err(f[i], a.code)
				}
			}
			if _, _, err := r.Lookup(ctx, xdr.RootGFID, "f", xdr.GFID{}, nil); fop.Errno(err) != tc.byName || (tc.byName == 0) != (err == nil) {
				t.Errorf("lookup by name: %v, want %v", err, tc.byName)
			}
			if _, _, err := r.refresh(ctx, r.inode(testGFID), nil); fop.Errno(err) != tc.byID || (tc.byID == 0) != (err == nil) {
				t.Errorf("lookup by gfid: %v, want %v", err, tc.byID)
			}
		})
	}
}

// A changelog update the bricks refuse with their own errno gives the
// caller that errno: a write whose pre-op two of three bricks refuse as
// ENOSPC fails with ENOSPC (QEMU pauses the VM on it), not ENOTCONN.
func TestChangelogErrno(t *testing.T) {
	r, f := newTestReplica(t)
	ctx := context.Background()
	fd := openTestFile(t, r)
	for _, c := range f[1:] {
		c.xopErr = &fop.OpError{Brick: c.name, Fop: "FXATTROP", Errno: syscall.ENOSPC}
	}
	if _, _, _, err := r.Write(ctx, fd, 0, []byte("x"), nil); fop.Errno(err) != syscall.ENOSPC {
		t.Fatalf("write with the pre-op refused as ENOSPC on two bricks: %v, want ENOSPC", err)
	}
	// Lost connections are no errno of the bricks': ENOTCONN.
	for _, c := range f[1:] {
		c.xopErr = &fop.OpError{Brick: c.name, Fop: "FXATTROP", Errno: syscall.ENOTCONN}
	}
	if _, _, _, err := r.Write(ctx, fd, 0, []byte("x"), nil); fop.Errno(err) != syscall.ENOTCONN {
		t.Fatalf("write with the pre-op lost on two bricks: %v, want ENOTCONN", err)
	}
}

func (f *fakeChild) Fstat(ctx context.Context, fd *fop.Fd, xd xdr.Dict) (xdr.Iatt, xdr.Dict, error) {
	if !f.Up() {
		return xdr.Iatt{}, nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return xdr.Iatt{GFID: fd.GFID, Size: f.size, Mode: syscall.S_IFREG | 0o644}, nil, nil
}

func (f *fakeChild) Zerofill(ctx context.Context, fd *fop.Fd, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if !f.Up() {
		return pre, post, nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.zeroed = append(f.zeroed, [2]uint64{off, length})
	f.size = max(f.size, off+length) // ZEROFILL extends, as on a brick
	f.events = append(f.events, "zerofill")
	return pre, post, nil, nil
}

func (f *fakeChild) Fallocate(ctx context.Context, fd *fop.Fd, mode uint32, off, length uint64, xd xdr.Dict) (pre, post xdr.Iatt, rx xdr.Dict, err error) {
	if !f.Up() {
		return pre, post, nil, f.down()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.falloc = append(f.falloc, [3]uint64{uint64(mode), off, length})
	if mode == 0 {
		f.size = max(f.size, off+length)
	}
	f.events = append(f.events, "fallocate")
	return pre, post, nil, nil
}

// fallocate(ZERO_RANGE|KEEP_SIZE) zeroes only below each brick's EOF and
// preallocates the rest with KEEP_SIZE, inside a data transaction (locked),
// and leaves every size as it was.
func TestZerofillKeepSize(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name              string
		off, length, size uint64
		zero              [][2]uint64
		falloc            [][3]uint64
	}{
		{"past EOF", 5 * mib, mib, 5 * mib, nil, [][3]uint64{{1, 5 * mib, mib}}},
		{"crossing EOF", 4 * mib, 2 * mib, 5 * mib, [][2]uint64{{4 * mib, mib}}, [][3]uint64{{1, 5 * mib, mib}}},
		{"below EOF", mib, mib, 5 * mib, [][2]uint64{{mib, mib}}, nil},
		{"empty file", 0, mib, 0, nil, [][3]uint64{{1, 0, mib}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, f := newTestReplica(t)
			ctx := context.Background()
			if _, _, err := r.Lookup(ctx, xdr.RootGFID, "f", xdr.GFID{}, nil); err != nil {
				t.Fatal(err)
			}
			fd, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range f {
				c.size = tc.size
			}
			if err := r.ZerofillKeepSize(ctx, fd, tc.off, tc.length); err != nil {
				t.Fatal(err)
			}
			for _, c := range f {
				c.mu.Lock()
				if c.size != tc.size || !slices.Equal(c.zeroed, tc.zero) || !slices.Equal(c.falloc, tc.falloc) {
					t.Errorf("%s: size %d, zerofill %v, fallocate %v; want size %d, %v, %v", c.name, c.size, c.zeroed, c.falloc, tc.size, tc.zero, tc.falloc)
				}
				if len(c.events) == 0 || c.events[0] != "lock" {
					t.Errorf("%s: %v, want the change under the data lock", c.name, c.events)
				}
				c.mu.Unlock()
			}
		})
	}
}

// openTestFile looks up the fakes' one file and opens it read-write.
func openTestFile(t *testing.T, r *Replicate) *fop.Fd {
	t.Helper()
	ctx := context.Background()
	if _, _, err := r.Lookup(ctx, xdr.RootGFID, "f", xdr.GFID{}, nil); err != nil {
		t.Fatal(err)
	}
	fd, _, err := r.Open(ctx, testGFID, syscall.O_RDWR, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}
