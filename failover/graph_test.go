package failover

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/fop/foptest"
	"github.com/brickfs/brickfs/brick/xdr"
	"github.com/brickfs/brickfs/failover/dht"
)

// The distribute layer over one subvolume meets the fop contract, and its
// new directories carry the layout covering the whole hash range
// (dht_pt_mkdir). Every other fop passes through: single's methods but
// Mkdir and Opendir are generated forwarders (single_fops.go), and a fop
// added to the table does not compile until it is forwarded too.
func TestDistributeContract(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	d := newSingle("v-dht", m)
	foptest.Contract(t, d)
	if _, _, err := d.Mkdir(context.Background(), foptest.RootGFID, "dir", 0o755, 0, foptest.GFID(99), nil); err != nil {
		t.Fatal(err)
	}
	if got, ok := m.Xattr(foptest.GFID(99), "trusted.glusterfs.dht"); !ok || string(got) != string(dhtLayout) {
		t.Errorf("mkdir through distribute left layout %x, want %x", got, dhtLayout)
	}
}

// Open builds the graph from the volfile's tree: the translators passed
// by vanish, utime has no node, distribute stands over the replica set
// whose children are the bricks, and Status shows it node by node.
func TestGraphFromVolfile(t *testing.T) {
	var fakes []*bricktest.Fake
	for i := 0; i < 3; i++ {
		fakes = append(fakes, bricktest.New(t, bricktest.Options{BrickPath: "/bricks/b" + string(rune('0'+i))}))
	}
	text := replicaVolfile(fakes, "", "")
	text += "volume v-utime\n type features/utime\n subvolumes v-replicate-0\nend-volume\n" +
		"volume v-dht\n type cluster/distribute\n subvolumes v-utime\nend-volume\n" +
		"volume v-wb\n type performance/write-behind\n subvolumes v-dht\nend-volume\n" +
		"volume v\n type debug/io-stats\n subvolumes v-wb\nend-volume\n"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Open(ctx, mustGraph(t, text), Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if _, ok := v.stats.Next().(*single); !ok {
		t.Fatalf("the volume's top is %T, want the distribute layer", v.stats.Next())
	}
	top := v.Status()
	if top.Name != "v" || top.Type != "debug/io-stats" || top.Fops == nil || len(top.Children) != 1 {
		t.Fatalf("status tree:\n%s", top)
	}
	st := top.Children[0]
	if st.Name != "v-dht" || len(st.Children) != 1 || st.Children[0].Name != "v-replicate-0" || len(st.Children[0].Children) != 3 {
		t.Fatalf("status tree:\n%s", st)
	}
	if !strings.Contains(st.String(), "v-replicate-0 (cluster/replicate) up: 3 of 3 bricks up, client quorum auto (2 of 3), 0 files to heal") {
		t.Errorf("status:\n%s", st)
	}
	for i, c := range st.Children[0].Children {
		if c.Type != "protocol/client" || !c.Up || !strings.HasSuffix(c.Detail, "/bricks/b"+string(rune('0'+i))) {
			t.Errorf("brick %d: %+v", i, c)
		}
	}
	if rs := v.replicaSets(); len(rs) != 1 || v.zk != keepSizer(v.top.single) || v.top.single.forFd(&fop.Fd{}) != rs[0] {
		t.Errorf("fallocate(ZERO_RANGE|KEEP_SIZE) goes to %v, want the distribute layer passing it to the replica set", v.zk)
	}
}

// A volume mounted over one subvolume grows: fds opened before go on. A
// directory listing continues from the subvolume it was opened on, a file
// opened before is the DHT layer's (so it follows the file when the
// rebalance daemon moves it), and releasing them leaves nothing open.
func TestSingleGrows(t *testing.T) {
	ctx := context.Background()
	m0, m1 := foptest.NewMem("v-replicate-0"), foptest.NewMem("v-replicate-1")
	s := newSingle("v-dht", m0)
	g := foptest.GFID(7)
	f, _, _, err := s.Create(ctx, foptest.RootGFID, "disk", uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, _, err := s.Mkdir(ctx, foptest.RootGFID, fmt.Sprintf("d%d", i), 0o755, 0, foptest.GFID(byte(20+i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	df, _, err := s.Opendir(ctx, foptest.RootGFID, nil)
	if err != nil {
		t.Fatal(err)
	}
	ents, _, _, err := s.Readdirp(ctx, df, 0, 1, nil)
	if err != nil || len(ents) == 0 {
		t.Fatalf("first entry: %v %v", ents, err)
	}
	seen := []string{ents[0].Name}

	d, err := dht.New("v-dht", []fop.Subvolume{m0, m1}, dht.DefaultOptions(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.grow(d)

	off := ents[0].Off
	for {
		ents, eof, _, err := s.Readdirp(ctx, df, off, 4096, nil)
		if err != nil {
			t.Fatalf("listing on after the volume grew: %v", err)
		}
		for _, e := range ents {
			seen = append(seen, e.Name)
			off = e.Off
		}
		if eof || len(ents) == 0 {
			break
		}
	}
	if len(seen) != 8 { // ., .., disk, d0..d4
		t.Errorf("listing across the growth saw %v", seen)
	}
	if err := s.Release(ctx, df); err != nil {
		t.Errorf("releasedir: %v", err)
	}

	// The rebalance daemon moves the file to the new subvolume (phase 2
	// done: the old copy is an empty linkto file).
	nf, _, _, err := m1.Create(ctx, foptest.RootGFID, "disk", uint32(syscall.O_RDWR), 0o644, 0, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = m1.Release(ctx, nf)
	if _, err := m0.Setxattr(ctx, g, xdr.Dict{}.With("trusted.glusterfs.dht.linkto", xdr.Str("v-replicate-1")), 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := m0.Setattr(ctx, g, &xdr.Iatt{Mode: syscall.S_ISVTX}, fop.SetAttrMode, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Write(ctx, f, 0, []byte("after"), nil); err != nil {
		t.Fatalf("write through an fd opened before the volume grew: %v", err)
	}
	if b, _ := m1.Data(g); string(b) != "after" {
		t.Errorf("the moved file holds %q", b)
	}
	if err := s.Release(ctx, f); err != nil {
		t.Errorf("release: %v", err)
	}
	if n0, n1 := m0.OpenFds(), m1.OpenFds(); n0 != 0 || n1 != 0 {
		t.Errorf("fds left open: %d on the first subvolume, %d on the new one", n0, n1)
	}
}
