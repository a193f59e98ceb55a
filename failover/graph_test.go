package failover

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop/foptest"
)

// TestDistributePassThrough lists, for every fop of the table, whether the
// one-subvolume distribute layer intercepts it or passes it through. A fop
// added to the table fails here until someone decides which it is: a
// pass-through by default is how GlusterFS's copy_file_range reached one
// replica only.
func TestDistributePassThrough(t *testing.T) {
	intercepts := map[string]bool{"Mkdir": true}
	passes := []string{"Lookup", "Stat", "Setattr", "Truncate", "Access", "Readlink", "Getxattr", "Setxattr",
		"Removexattr", "Xattrop", "Statfs", "Inodelk", "Finodelk", "Entrylk", "Create", "Mknod", "Symlink",
		"Link", "Unlink", "Rmdir", "Rename", "Open", "Opendir", "Release", "Readdirp", "Read", "Write", "Flush",
		"Fsync", "Fsyncdir", "Fstat", "Fsetattr", "Ftruncate", "Fallocate", "Discard", "Zerofill", "Seek", "Lk",
		"Fxattrop", "CopyFileRange"}
	foptest.CheckIntercepts(t, ".", "distribute", intercepts, passes)
}

// The distribute layer over one subvolume meets the fop contract, and its
// new directories carry the layout covering the whole hash range.
func TestDistributeContract(t *testing.T) {
	m := foptest.NewMem("v-client-0")
	d := &distribute{Subvolume: m, name: "v-dht"}
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
	if _, ok := v.Fops.(*distribute); !ok {
		t.Fatalf("the volume's top is %T, want the distribute layer", v.Fops)
	}
	st := v.Status()
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
	if rs := v.replicaSets(); len(rs) != 1 || v.zk != rs[0] {
		t.Errorf("fallocate(ZERO_RANGE|KEEP_SIZE) goes to %v, want the replica set", v.zk)
	}
}
