package volfile

import (
	"strings"
	"testing"
)

func TestCheckRealVolfiles(t *testing.T) {
	g, err := Parse(readTestdata(t, "single-brick.vol"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Fatalf("single brick: %v", err)
	}
	chain, err := g.Chain()
	if err != nil {
		t.Fatal(err)
	}
	want := "single single-md-cache single-quick-read single-open-behind single-write-behind single-utime single-dht single-client-0"
	if got := strings.Join(names(chain), " "); got != want {
		t.Errorf("chain = %s\nwant    %s", got, want)
	}
	if d := Find(chain, TypeDistribute); d == nil || d.Name != "single-dht" {
		t.Errorf("Find(distribute) = %v", d)
	}
	if Find(chain, "cluster/replicate") != nil {
		t.Error("Find found replicate")
	}

	// A graph over one replica set: the chain ends at the replicate,
	// whose subvolumes are the bricks.
	for _, f := range []string{"factcheck-replica3.vol", "afrtest-replica3.vol"} {
		g, err := Parse(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Check(); err != nil {
			t.Errorf("%s: Check = %v", f, err)
		}
		chain, err := g.Chain()
		if err != nil {
			t.Fatalf("%s: Chain: %v", f, err)
		}
		last := chain[len(chain)-1]
		if Canonical(last.Type) != TypeReplicate || len(last.Subvolumes) != 3 || last.Name != g.Top.Name+"-replicate-0" {
			t.Errorf("%s: chain ends at %s (%s) with %d subvolumes", f, last.Name, last.Type, len(last.Subvolumes))
		}
		if Find(chain, TypeDistribute) == nil {
			t.Errorf("%s: no distribute in the chain", f)
		}
	}
}

// graph builds a volfile of one client under the given translator types,
// the first type at the top.
func graph(t *testing.T, types ...string) *Graph {
	t.Helper()
	var b strings.Builder
	b.WriteString("volume cinder-client-0\n type protocol/client\nend-volume\n")
	below := "cinder-client-0"
	for i := len(types) - 1; i >= 0; i-- {
		name := "cinder-" + strings.ReplaceAll(types[i], "/", "-")
		if i == 0 {
			name = "cinder"
		}
		b.WriteString("volume " + name + "\n type " + types[i] + "\n subvolumes " + below + "\nend-volume\n")
		below = name
	}
	g, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestCheckPolicy(t *testing.T) {
	tests := []struct {
		name  string
		types []string
		want  string // "" for accepted
	}{
		{"bare client", nil, ""},
		{"all pass-by", []string{"debug/io-stats", "performance/md-cache", "performance/io-cache", "performance/read-ahead",
			"performance/readdir-ahead", "performance/nl-cache", "performance/io-threads", "performance/quick-read",
			"performance/open-behind", "performance/write-behind", "system/posix-acl", "meta", "debug/trace",
			"features/utime", "cluster/distribute"}, ""},
		{"dht alias", []string{"debug/io-stats", "cluster/dht"}, ""},
		{"stat-prefetch alias", []string{"debug/io-stats", "performance/stat-prefetch"}, ""},
		{"shard", []string{"debug/io-stats", "features/shard", "cluster/distribute"},
			`volume "cinder" uses translator "cinder-features-shard" (features/shard), which brickfs does not support; mounting it could read or write data wrongly`},
		{"unknown", []string{"debug/io-stats", "features/frobnicate"},
			`volume "cinder" uses translator "cinder-features-frobnicate" (features/frobnicate), which brickfs does not support; mounting it could read or write data wrongly`},
		{"unknown performance", []string{"debug/io-stats", "performance/new-cache"},
			`volume "cinder" uses translator "cinder-performance-new-cache" (performance/new-cache), which brickfs does not support; mounting it could read or write data wrongly`},
		{"read-only", []string{"debug/io-stats", "features/read-only"},
			`volume "cinder" uses translator "cinder-features-read-only" (features/read-only), which brickfs does not enforce; mounting it could change a volume that must stay read-only`},
		{"worm", []string{"debug/io-stats", "features/worm"},
			`volume "cinder" uses translator "cinder-features-worm" (features/worm), which brickfs does not enforce; mounting it could change or delete files the volume keeps write-once`},
		{"uss", []string{"debug/io-stats", "features/snapview-client"},
			`volume "cinder" uses translator "cinder-features-snapview-client" (features/snapview-client), which brickfs does not support (user-serviceable snapshots); turn features.uss off, or use GlusterFS's own client (its helper is /sbin/mount.glusterfs.distrib while brickfs stands in for mount.glusterfs)`},
		{"disperse alias", []string{"debug/io-stats", "cluster/ec"},
			`volume "cinder" uses translator "cinder-cluster-ec" (cluster/ec), which brickfs does not support; mounting it could read or write data wrongly`},
		{"afr alias", []string{"debug/io-stats", "cluster/afr"}, ""},
		{"topmost reported first", []string{"features/worm", "features/shard"},
			`volume "cinder" uses translator "cinder" (features/worm), which brickfs does not enforce; mounting it could change or delete files the volume keeps write-once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := graph(t, tt.types...).Check()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tt.want != "" && (err == nil || err.Error() != tt.want):
				t.Errorf("Check = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestCheckSubvolumeCounts(t *testing.T) {
	const clients = "volume v-client-0\n type protocol/client\nend-volume\n" +
		"volume v-client-1\n type protocol/client\nend-volume\n"
	tests := []struct {
		name, src, want string
	}{
		{"distribute over two", clients + "volume v-dht\n type cluster/distribute\n subvolumes v-client-0 v-client-1\nend-volume\n" +
			"volume v\n type debug/io-stats\n subvolumes v-dht\nend-volume\n",
			`volume "v" uses translator "v-dht" (cluster/distribute), with 2 subvolumes; brickfs supports it over one subvolume only: with more it decides which brick holds each file, so mounting it could read or write data wrongly`},
		{"pass-by over two", clients + "volume v\n type performance/md-cache\n subvolumes v-client-0 v-client-1\nend-volume\n",
			`volume "v" uses translator "v" (performance/md-cache), with 2 subvolumes; a translator brickfs passes by or carries must have exactly one subvolume`},
		{"leaf that is not a client", "volume v-x\n type performance/md-cache\nend-volume\n" +
			"volume v\n type debug/io-stats\n subvolumes v-x\nend-volume\n",
			`volume "v" uses translator "v-x" (performance/md-cache), with 0 subvolumes; a translator brickfs passes by or carries must have exactly one subvolume`},
		{"client with subvolumes", clients + "volume v\n type protocol/client\n subvolumes v-client-0\nend-volume\n",
			`volume "v" uses translator "v" (protocol/client), with 1 subvolumes; a protocol/client is a leaf and has no subvolumes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Parse([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Check(); err == nil || err.Error() != tt.want {
				t.Errorf("Check = %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestCheckIgnoresUnreachable(t *testing.T) {
	g, err := Parse([]byte("volume x\n type features/shard\nend-volume\n" +
		"volume c\n type protocol/client\nend-volume\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestClassify(t *testing.T) {
	for typ, want := range map[string]Role{
		TypeClient:              Carry,
		TypeUtime:               Carry,
		TypeDistribute:          Carry,
		"cluster/dht":           Carry,
		TypeIOStats:             PassBy,
		"performance/md-cache":  PassBy,
		"cluster/replicate":     Carry,
		"cluster/afr":           Carry,
		"features/shard":        Unsupported,
		"no/such":               Unsupported,
		"":                      Unsupported,
		"performance/new-thing": Unsupported,
	} {
		if got := Classify(typ); got != want {
			t.Errorf("Classify(%q) = %v, want %v", typ, got, want)
		}
	}
	if Role(7).String() != "Role(7)" || PassBy.String() != "pass-by" {
		t.Error("Role.String")
	}
}
