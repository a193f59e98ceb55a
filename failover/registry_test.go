package failover

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/brickfs/brickfs/brick/volfile"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "brick", "volfile", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckRealVolfiles(t *testing.T) {
	for f, want := range map[string]string{
		"single-brick.vol":       "cluster/distribute > protocol/client",
		"factcheck-replica3.vol": "cluster/distribute > cluster/replicate(3)",
		"afrtest-replica3.vol":   "cluster/distribute > cluster/replicate(3)",
	} {
		g, err := volfile.Parse(readTestdata(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(g); err != nil {
			t.Errorf("%s: Check = %v", f, err)
		}
		if got := shape(g.Top); got != want {
			t.Errorf("%s: the carried graph is %s, want %s", f, got, want)
		}
	}
}

// graph builds a volfile of one client under the given translator types,
// the first type at the top.
func graph(t *testing.T, types ...string) *volfile.Graph {
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
	g, err := volfile.Parse([]byte(b.String()))
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
		{"shard", []string{"debug/io-stats", "features/utime", "features/shard", "cluster/distribute"}, ""},
		{"cloudsync", []string{"debug/io-stats", "features/cloudsync"},
			`volume "cinder" uses translator "cinder-features-cloudsync" (features/cloudsync), which brickfs does not support; mounting it could read or write data wrongly`},
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
		{"topmost reported first", []string{"features/worm", "features/cloudsync"},
			`volume "cinder" uses translator "cinder" (features/worm), which brickfs does not enforce; mounting it could change or delete files the volume keeps write-once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(graph(t, tt.types...))
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
			"volume v\n type debug/io-stats\n subvolumes v-dht\nend-volume\n", ""},
		{"distribute over none", "volume v-dht\n type cluster/distribute\nend-volume\n",
			`volume "v-dht" uses translator "v-dht" (cluster/distribute), with 0 subvolumes; a distribute translator needs at least one subvolume`},
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
			g, err := volfile.Parse([]byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			err = Check(g)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || err.Error() != tt.want) {
				t.Errorf("Check = %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestCheckIgnoresUnreachable(t *testing.T) {
	g, err := volfile.Parse([]byte("volume x\n type features/cloudsync\nend-volume\n" +
		"volume c\n type protocol/client\nend-volume\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(g); err != nil {
		t.Errorf("Check: %v", err)
	}
}

func TestClassify(t *testing.T) {
	for typ, want := range map[string]Role{
		volfile.TypeClient:      Carry,
		volfile.TypeUtime:       Carry,
		volfile.TypeDistribute:  Carry,
		"cluster/dht":           Carry,
		volfile.TypeIOStats:     PassBy,
		"performance/md-cache":  PassBy,
		"cluster/replicate":     Carry,
		"cluster/afr":           Carry,
		"features/shard":        Carry,
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

// FuzzCheck: whatever a glusterd sends, Check and the carried graph's
// shape answer without a panic or a loop.
func FuzzCheck(f *testing.F) {
	for _, n := range []string{"single-brick.vol", "factcheck-replica3.vol", "afrtest-replica3.vol"} {
		b, err := os.ReadFile(filepath.Join("..", "brick", "volfile", "testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := volfile.Parse(b)
		if err != nil {
			return
		}
		if Check(g) == nil {
			_ = shape(g.Top)
		}
	})
}
