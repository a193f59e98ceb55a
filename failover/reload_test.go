package failover

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/brickfs/brickfs/brick/bricktest"
	"github.com/brickfs/brickfs/brick/fop"
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

// distVolfile writes a distribute volfile over replica sets of the fakes,
// sets[i] listing the fake indexes of set i, named as glusterd names
// them: sets by position, clients by brick.
func distVolfile(fakes []*bricktest.Fake, sets [][]int, extra string) string {
	var b strings.Builder
	for i, fk := range fakes {
		fmt.Fprintf(&b, "volume v-client-%d\n type protocol/client\n option remote-host %s\n option remote-port %d\n option remote-subvolume %s\nend-volume\n",
			i, fk.Host(), fk.GlusterdPort(), fk.BrickPath())
	}
	var top []string
	for j, set := range sets {
		var subs []string
		for _, i := range set {
			subs = append(subs, fmt.Sprintf("v-client-%d", i))
		}
		fmt.Fprintf(&b, "volume v-replicate-%d\n type cluster/replicate\n option afr-pending-xattr %s\n subvolumes %s\nend-volume\n",
			j, strings.Join(subs, ","), strings.Join(subs, " "))
		top = append(top, fmt.Sprintf("v-replicate-%d", j))
	}
	fmt.Fprintf(&b, "volume v-dht\n type cluster/distribute\n%s subvolumes %s\nend-volume\n", extra, strings.Join(top, " "))
	return b.String()
}

// TestReconfigureDistribute: add-brick and remove-brick are applied live.
// A new replica set is connected and joins the distribute layer; a
// remove-brick commit drops a set (its bricks closed after the grace
// period) and the sets renumbered after it keep their brick connections.
func TestReconfigureDistribute(t *testing.T) {
	retireGrace = 50 * time.Millisecond
	defer func() { retireGrace = 30 * time.Second }()
	var fakes []*bricktest.Fake
	for i := 0; i < 3; i++ {
		fakes = append(fakes, bricktest.New(t, bricktest.Options{BrickPath: fmt.Sprintf("/bricks/b%d", i)}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Open(ctx, mustGraph(t, distVolfile(fakes[:1], [][]int{{0}}, "")), Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	sets := func() []string {
		var out []string
		for _, c := range v.Status().Children[0].Children {
			var bricks []string
			for _, b := range c.Children {
				bricks = append(bricks, b.Name)
			}
			out = append(out, c.Name+"("+strings.Join(bricks, ",")+")")
		}
		return out
	}
	want := func(what string, w ...string) {
		t.Helper()
		if got := sets(); strings.Join(got, " ") != strings.Join(w, " ") {
			t.Fatalf("%s: subvolumes %v, want %v", what, got, w)
		}
	}
	want("mounted", "v-replicate-0(v-client-0)")
	top := v.Fops

	// A volume mounted over one replica set grows to two: the
	// distribute layer takes over under the same top.
	changes, err := v.Reconfigure(mustGraph(t, distVolfile(fakes[:2], [][]int{{0}, {1}}, "")))
	if err != nil || !strings.Contains(strings.Join(changes, " "), "grew from one subvolume to 2") {
		t.Fatalf("growing: %q %v", changes, err)
	}
	want("grown", "v-replicate-0(v-client-0)", "v-replicate-1(v-client-1)")
	if v.Fops != top || v.top.single.d.Load() == nil || v.top.dht == nil {
		t.Fatal("the distribute layer did not take over")
	}

	changes, err = v.Reconfigure(mustGraph(t, distVolfile(fakes, [][]int{{0}, {1}, {2}}, "")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("add-brick: %q", changes)
	want("after add-brick", "v-replicate-0(v-client-0)", "v-replicate-1(v-client-1)", "v-replicate-2(v-client-2)")
	if len(fakes[2].BrickConns()) == 0 {
		t.Fatal("the added brick was not connected")
	}

	changes, err = v.Reconfigure(mustGraph(t, distVolfile(fakes, [][]int{{0}, {1}, {2}}, " option decommissioned-bricks v-replicate-0\n")))
	if err != nil || len(changes) != 1 || !strings.Contains(changes[0], "decommissioned-bricks") {
		t.Fatalf("remove-brick start: %q %v", changes, err)
	}

	conn1 := fakes[1].BrickConns()
	changes, err = v.Reconfigure(mustGraph(t, distVolfile(fakes, [][]int{{1}, {2}}, "")))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("remove-brick commit: %q", changes)
	want("after remove-brick commit", "v-replicate-0(v-client-1)", "v-replicate-1(v-client-2)")
	// The retired set's client leaves the volume's list after its
	// connections close: wait for both.
	clients := func() int {
		v.mu.Lock()
		defer v.mu.Unlock()
		return len(v.clients)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (len(fakes[0].BrickConns()) > 0 || clients() != 2) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(fakes[0].BrickConns()); n != 0 {
		t.Errorf("the removed brick still has %d connections after the grace period", n)
	}
	if got := fakes[1].BrickConns(); len(got) != 1 || len(conn1) != 1 || got[0] != conn1[0] {
		t.Errorf("the renumbered set's brick was reconnected (%d connections before, %d after)", len(conn1), len(got))
	}
	nclients := clients()
	if nclients != 2 {
		t.Errorf("the volume keeps %d brick clients, want 2", nclients)
	}

	// A set listed twice is refused; the mount keeps its graph.
	if _, err := v.Reconfigure(mustGraph(t, distVolfile(fakes, [][]int{{1}, {1}}, ""))); err == nil {
		t.Error("a volfile listing one set twice was accepted")
	}
	want("after the refusal", "v-replicate-0(v-client-1)", "v-replicate-1(v-client-2)")
}

// A replica count raised by add-brick (each set gets a brick) is refused:
// the sets share bricks with the mounted ones without being them.
func TestReconfigureDistributeRefusesReplicaChange(t *testing.T) {
	var fakes []*bricktest.Fake
	for i := 0; i < 4; i++ {
		fakes = append(fakes, bricktest.New(t, bricktest.Options{BrickPath: fmt.Sprintf("/bricks/b%d", i)}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Open(ctx, mustGraph(t, distVolfile(fakes[:2], [][]int{{0}, {1}}, "")), Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	_, err = v.Reconfigure(mustGraph(t, distVolfile(fakes, [][]int{{0, 2}, {1, 3}}, "")))
	if err == nil || !strings.Contains(err.Error(), "replica count") {
		t.Fatalf("a replica count change: %v, want a refusal", err)
	}
	if n := len(v.Status().Children[0].Children); n != 2 {
		t.Fatalf("after the refusal the volume has %d subvolumes", n)
	}
}

// A volfile arriving while the mount closes is not applied: nothing is
// built or retired behind Close's back.
func TestReconfigureAfterClose(t *testing.T) {
	var fakes []*bricktest.Fake
	for i := 0; i < 2; i++ {
		fakes = append(fakes, bricktest.New(t, bricktest.Options{BrickPath: fmt.Sprintf("/bricks/b%d", i)}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Open(ctx, mustGraph(t, distVolfile(fakes[:1], [][]int{{0}}, "")), Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	v.Close()
	if _, err := v.Reconfigure(mustGraph(t, distVolfile(fakes, [][]int{{0}, {1}}, ""))); err == nil {
		t.Fatal("a volfile was applied after Close")
	}
	if n := len(fakes[1].BrickConns()); n != 0 {
		t.Errorf("the new brick was connected after Close (%d connections)", n)
	}
}

// TestStatusDuringReconfigure: Status does not wait for a volfile change
// that holds v.mu (Reconfigure does while moved bricks reconnect, up to
// tens of seconds), and shows the graph once the change is made.
func TestStatusDuringReconfigure(t *testing.T) {
	fakes := []*bricktest.Fake{
		bricktest.New(t, bricktest.Options{BrickPath: "/bricks/b0"}),
		bricktest.New(t, bricktest.Options{BrickPath: "/bricks/b1"}),
		bricktest.New(t, bricktest.Options{BrickPath: "/bricks/b2"}),
		bricktest.New(t, bricktest.Options{BrickPath: "/bricks/b3"}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := Open(ctx, mustGraph(t, replicaVolfile(fakes[:3], "", "")), Options{}, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	v.mu.Lock() // as Reconfigure holds it while bricks reconnect
	got := make(chan fop.Status, 1)
	go func() { got <- v.Status() }()
	select {
	case s := <-got:
		if len(s.Children) != 1 || s.Children[0].Replica == nil {
			t.Errorf("status while v.mu is held: %+v", s)
		}
	case <-time.After(5 * time.Second):
		t.Error("Status waited on v.mu, which a volfile change holds while bricks reconnect")
		v.mu.Unlock()
		<-got
		v.mu.Lock()
	}
	v.mu.Unlock()

	moved := []*bricktest.Fake{fakes[0], fakes[1], fakes[3]}
	if _, err := v.Reconfigure(mustGraph(t, replicaVolfile(moved, " option quorum-type fixed\n option quorum-count 3\n", ""))); err != nil {
		t.Fatal(err)
	}
	s := v.Status().Children[0]
	if !strings.Contains(s.Detail, "fixed at 3") {
		t.Errorf("status after a quorum change: %q", s.Detail)
	}
	if b := s.Children[2].Brick; b == nil || b.Path != "/bricks/b3" {
		t.Errorf("status after a brick move shows brick 2 as %+v", b)
	}
}
