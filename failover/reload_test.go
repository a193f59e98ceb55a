package failover

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/volfile"
)

// replicaVolfile writes a replica volfile over the fakes, with extra
// lines added to the replicate translator and, when wrap is set, a
// translator of that type on top.
func replicaVolfile(fakes []*bricktest.Fake, extra, wrap string) string {
	var b strings.Builder
	var subs []string
	for i, fk := range fakes {
		fmt.Fprintf(&b, "volume v-client-%d\n type protocol/client\n option remote-host %s\n option remote-port %d\n option remote-subvolume %s\n option ping-timeout 42\nend-volume\n",
			i, fk.Host(), fk.GlusterdPort(), fk.BrickPath())
		subs = append(subs, fmt.Sprintf("v-client-%d", i))
	}
	fmt.Fprintf(&b, "volume v-replicate-0\n type cluster/replicate\n option afr-pending-xattr %s\n%s subvolumes %s\nend-volume\n",
		strings.Join(subs, ","), extra, strings.Join(subs, " "))
	top := "v-replicate-0"
	if wrap != "" {
		fmt.Fprintf(&b, "volume v-top\n type %s\n subvolumes %s\nend-volume\n", wrap, top)
	}
	return b.String()
}

func mustGraph(t *testing.T, text string) *volfile.Graph {
	t.Helper()
	g, err := volfile.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return g
}

// TestReconfigure: a volfile change is applied live where brickfs can
// (a moved brick, client quorum, caching translators) and refused, with
// the mount left as it was, where it cannot.
func TestReconfigure(t *testing.T) {
	var fakes []*bricktest.Fake
	for i := 0; i < 4; i++ {
		fakes = append(fakes, bricktest.New(t, bricktest.Options{BrickPath: fmt.Sprintf("/bricks/b%d", i)}))
	}
	three := fakes[:3]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Open(ctx, mustGraph(t, replicaVolfile(three, "", "")), Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	apply := func(what, text string, wantChanges int) {
		t.Helper()
		changes, err := v.Reconfigure(mustGraph(t, text))
		if err != nil || len(changes) != wantChanges {
			t.Fatalf("%s: changes %q, %v; want %d changes", what, changes, err, wantChanges)
		}
		t.Logf("%s: %q", what, changes)
	}
	refuse := func(what, text, why string) {
		t.Helper()
		changes, err := v.Reconfigure(mustGraph(t, text))
		if err == nil || !strings.Contains(err.Error(), why) {
			t.Fatalf("%s: changes %q, error %v; want an error saying %q", what, changes, err, why)
		}
	}
	apply("the same volfile", replicaVolfile(three, "", ""), 0)
	apply("a caching translator on top", replicaVolfile(three, "", "performance/write-behind"), 0)

	apply("quorum fixed without a count", replicaVolfile(three, " option quorum-type fixed\n", ""), 1)
	if !v.replicaSets()[0].HasQuorum([]bool{true, false, false}) {
		t.Error("quorum-type fixed without quorum-count enforces a quorum; AFR's count 0 means none")
	}
	apply("quorum fixed at 3", replicaVolfile(three, " option quorum-type fixed\n option quorum-count 3\n", ""), 1)
	if v.replicaSets()[0].HasQuorum([]bool{true, true, false}) {
		t.Error("two bricks of three still make quorum after quorum-count 3")
	}
	apply("quorum back to auto", replicaVolfile(three, "", ""), 1)
	if !v.replicaSets()[0].HasQuorum([]bool{true, true, false}) {
		t.Error("two bricks of three do not make auto quorum")
	}

	moved := []*bricktest.Fake{fakes[0], fakes[1], fakes[3]}
	apply("brick 2 replaced", replicaVolfile(moved, "", ""), 1)
	if h, p, s := v.clients[2].Target(); h != fakes[3].Host() || p != fakes[3].GlusterdPort() || s != "/bricks/b3" {
		t.Fatalf("client 2 targets %s:%d %s after the move", h, p, s)
	}
	fakes[3].WaitBrickConn(10 * time.Second)

	if v.ID == "" {
		t.Fatal("the volume has no id")
	}
	refuse("another volume-id", replicaVolfile(moved, " option volume-id 00000000-1111-2222-3333-444444444444\n", ""), "created again")
	refuse("a fourth brick", replicaVolfile(fakes, "", ""), "remount")
	refuse("shard turned on", replicaVolfile(moved, "", "features/shard"), "remount")
	refuse("an unsupported translator", replicaVolfile(moved, "", "features/cloudsync"), "cannot be mounted by brickfs")
	refuse("an arbiter", replicaVolfile(moved, " option arbiter-count 1\n", ""), "arbiter")
	// After the refusals the mount still runs the graph it had.
	apply("the moved volfile again", replicaVolfile(moved, "", ""), 0)
}
