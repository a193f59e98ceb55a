package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/brickfs/brickfs/fuse"
)

// A statedump has the process's figures and the graph, in a file named as
// GlusterFS names its own, and the log says where.
func TestStatedump(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gluster")
	core, logs := observer.New(zap.InfoLevel)
	d := takeStatedump(sampleGraph(), 12, 3, time.Now().Add(-time.Minute))
	if d.Goroutines <= 0 || d.RSSKiB <= 0 || d.Fds <= 0 || d.Uptime < time.Minute {
		t.Fatalf("statedump figures: %+v", d)
	}
	d.FuseBuffers = fuse.BufferStats{Mapped: 40 << 20, InUse: 3 << 20, Warm: 16 << 20, Maps: 37, Released: 5}
	writeStatedump(dir, d, zap.New(core))
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), "brickfs.") || !strings.Contains(ents[0].Name(), ".dump.") {
		t.Fatalf("statedump files: %v, %v", ents, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goroutines=", "rss_kib=", "fds=", "[graph]", "v-replicate-0 (cluster/replicate) up",
		"[fuse]\ninode_table.active=12\nopen_files=3\nbuffers.in_use=3145728\nbuffers.warm=16777216\nbuffers.mapped=41943040\nbuffers.maps=37\nbuffers.released=5\n", "[xlator.cluster.replicate.v-replicate-0]", "heal_pending=7", "inode_table.active=0",
		"locks.eager_inodelks_held=0", "failover.v-client-2.cut=1", "failover.v-client-2.last_stall=300ms", "lagging=v-client-2",
		"[xlator.protocol.client.v-client-2]\nup=0\nremote=127.1.0.1:49154:/bricks/b2\nconnected=0\n", "pending_calls=0", "last_error=brick stopped answering",
		"[xlator.debug.io-stats.v]", "fop.WRITE.count=2", "fop.WRITE.errors.ENOSPC=1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("statedump lacks %q:\n%s", want, b)
		}
	}
	if logs.FilterMessage("statedump written").Len() != 1 {
		t.Errorf("no log line says where the statedump went")
	}
}
