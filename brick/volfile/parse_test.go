package volfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The testdata volfiles: factcheck-replica3.vol is the GETSPEC capture of
// gluster-protocol.md §16.2 with client-1/2 written out; afrtest-replica3.vol
// is gluster-afr-dht.md §9.1; single-brick.vol is written by hand from them
// for a one-brick volume (glusterd still puts cluster/distribute over the
// one client: volume_volgen_graph_build_clusters). Passwords are redacted.

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func names(vs []*Volume) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

func TestParseRealVolfiles(t *testing.T) {
	tests := []struct {
		file    string
		top     string
		volumes int
		clients []string
	}{
		{"factcheck-replica3.vol", "factcheck", 11, []string{"factcheck-client-0", "factcheck-client-1", "factcheck-client-2"}},
		{"afrtest-replica3.vol", "afrtest", 11, []string{"afrtest-client-0", "afrtest-client-1", "afrtest-client-2"}},
		{"single-brick.vol", "single", 8, []string{"single-client-0"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			src := readTestdata(t, tt.file)
			g, err := Parse(src)
			if err != nil {
				t.Fatal(err)
			}
			if g.Top.Name != tt.top || g.Top.Type != TypeIOStats {
				t.Errorf("top = %s (%s), want %s (%s)", g.Top.Name, g.Top.Type, tt.top, TypeIOStats)
			}
			if len(g.Volumes) != tt.volumes {
				t.Errorf("%d volumes, want %d", len(g.Volumes), tt.volumes)
			}
			if got := strings.Join(names(g.Clients()), " "); got != strings.Join(tt.clients, " ") {
				t.Errorf("Clients() = %s, want %s", got, tt.clients)
			}
			c := g.Volume(tt.clients[0])
			if h, ok := c.Option("remote-host"); !ok || h != "10.99.0.1" {
				t.Errorf("remote-host = %q, %v", h, ok)
			}
			if _, ok := c.Option("no-such-option"); ok {
				t.Error("Option found a missing key")
			}
			if g.Volume("nope") != nil {
				t.Error("Volume found a missing name")
			}
			// Format writes glusterd's layout, so it reproduces the file.
			if got := g.Format(); !bytes.Equal(got, src) {
				t.Errorf("Format differs from the file:\n%s", got)
			}
		})
	}
}

func TestParseReplicaDetails(t *testing.T) {
	g, err := Parse(readTestdata(t, "factcheck-replica3.vol"))
	if err != nil {
		t.Fatal(err)
	}
	afr := g.Volume("factcheck-replicate-0")
	if got := strings.Join(names(afr.Subvolumes), " "); got != "factcheck-client-0 factcheck-client-1 factcheck-client-2" {
		t.Errorf("subvolumes = %s", got)
	}
	if x, _ := afr.Option("afr-pending-xattr"); x != "factcheck-client-0,factcheck-client-1,factcheck-client-2" {
		t.Errorf("afr-pending-xattr = %q", x)
	}
	if b, _ := g.Volume("factcheck-client-2").Option("remote-subvolume"); b != "/bricks/fc3" {
		t.Errorf("client-2 remote-subvolume = %q", b)
	}
	if afr.Line != 55 {
		t.Errorf("replicate-0 Line = %d, want 55", afr.Line)
	}
	// Options stay in file order.
	if o := g.Top.Options; len(o) != 5 || o[0].Key != "global-threading" || o[4] != (Option{"log-level", "INFO"}) {
		t.Errorf("top options = %v", o)
	}
}

func TestParseLexical(t *testing.T) {
	src := "# a comment\n" +
		"volume \"c 0\"   # trailing comment\n" +
		"\ttype protocol/client\r\n" +
		"  option remote-host h#1\n" + // '#' inside a word is not a comment
		"  option \"type\" \"a \\\"quoted\\\" \\\\ value\\`\"\n" +
		"  option volumes x\n" + // only exact keywords are keywords
		"end-volume\n" +
		"volume top type debug/io-stats subvolumes \"c 0\" option k v end-volume"
	g, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	c := g.Volume("c 0")
	if c == nil || g.Top.Subvolumes[0] != c {
		t.Fatalf("graph = %s", g)
	}
	want := []Option{{"remote-host", "h#1"}, {"type", "a \"quoted\" \\ value`"}, {"volumes", "x"}}
	if len(c.Options) != len(want) {
		t.Fatalf("options = %q", c.Options)
	}
	for i := range want {
		if c.Options[i] != want[i] {
			t.Errorf("option %d = %q, want %q", i, c.Options[i], want[i])
		}
	}
	if v, _ := g.Top.Option("k"); v != "v" {
		t.Errorf("option after subvolumes = %q", v)
	}
	// Format quotes what needs it, and reads back the same.
	g2, err := Parse(g.Format())
	if err != nil {
		t.Fatalf("reparse: %v\n%s", err, g.Format())
	}
	if !bytes.Equal(g2.Format(), g.Format()) {
		t.Errorf("round trip differs:\n%s\n%s", g.Format(), g2.Format())
	}
}

func TestParseRepeatedOptionLastWins(t *testing.T) {
	g, err := Parse([]byte("volume a\n type protocol/client\n option k 1\n option k 2\nend-volume\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Top.Option("k"); v != "2" || len(g.Top.Options) != 2 {
		t.Errorf("k = %q, options %v", v, g.Top.Options)
	}
}

func TestParseErrors(t *testing.T) {
	const client = "volume c\n type protocol/client\nend-volume\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "volfile: volfile has no volumes"},
		{"only comments", "# nothing\n\n", "volfile: volfile has no volumes"},
		{"undefined subvolume", client + "volume y\n type cluster/distribute\n subvolumes c x\nend-volume\n",
			`volfile line 6: subvolume "x" of "y" is not defined`},
		{"subvolume defined later", "volume y\n type cluster/distribute\n subvolumes c\nend-volume\n" + client,
			`volfile line 3: subvolume "c" of "y" is not defined`},
		{"self subvolume", "volume y\n type cluster/distribute\n subvolumes y\nend-volume\n",
			`volfile line 3: volume "y" lists itself as a subvolume`},
		{"repeated subvolume", client + "volume y\n type cluster/distribute\n subvolumes c c\nend-volume\n",
			`volfile line 6: subvolume "c" is listed twice in "y"`},
		{"second subvolumes line", client + "volume y\n type a/b\n subvolumes c\n subvolumes c\nend-volume\n",
			`volfile line 7: volume "y" has a second "subvolumes" line`},
		{"empty subvolumes", client + "volume y\n type a/b\n subvolumes\nend-volume\n",
			`volfile line 6: "subvolumes" in volume "y" names no volume`},
		{"duplicate volume", client + client, `volfile line 4: volume "c" is defined twice (first on line 1)`},
		{"no type", "volume c\n option a b\nend-volume\n",
			`volfile line 2: volume "c" must start with "type CATEGORY/NAME", found "option"`},
		{"empty block", "volume c\nend-volume\n",
			`volfile line 2: volume "c" must start with "type CATEGORY/NAME", found "end-volume"`},
		{"second type", "volume c\n type a/b\n type a/b\nend-volume\n", `volfile line 3: volume "c" has a second "type"`},
		{"type without word", "volume c\n type\nend-volume\n",
			`volfile line 2: "type" needs a translator type such as protocol/client, found "end-volume"`},
		{"option without value", "volume c\n type a/b\n option k\nend-volume\n",
			`volfile line 3: "option" needs a key and a value, found "end-volume"`},
		{"option keyword as key", "volume c\n type a/b\n option type x\nend-volume\n",
			`volfile line 3: "option" needs a key and a value, found "type"`},
		{"volume without name", "volume\n", `volfile line 1: "volume" needs a name, found end of file`},
		{"no end-volume", "volume c\n type a/b\n", `volfile line 1: volume "c" has no "end-volume"`},
		{"end-volume missing before next", "volume c\n type a/b\nvolume d\n",
			`volfile line 3: "end-volume" missing for volume "c" (line 1) before the next "volume"`},
		{"junk at top level", client + "option a b\n", `volfile line 4: expected "volume", found "option"`},
		{"word at top level", "hello\n", `volfile line 1: expected "volume", found "hello"`},
		{"junk inside", "volume c\n type a/b\n foo\nend-volume\n",
			`volfile line 3: unexpected "foo" in volume "c"; expected "option", "subvolumes" or "end-volume"`},
		{"backtick", "volume c\n type a/b\n option k `id`\nend-volume\n",
			"volfile line 3: backtick (`) outside a quoted string; GlusterFS would run it as a shell command, brickfs refuses it"},
		{"backtick in string", "volume c\n type a/b\n option k \"`id`\"\nend-volume\n",
			"volfile line 3: unescaped backtick (`) in a quoted string; GlusterFS would run it as a shell command, brickfs refuses it"},
		{"backtick in comment", "# `id`\n" + client,
			"volfile line 1: backtick (`) in a comment; GlusterFS would run it as a shell command, brickfs refuses it"},
		{"unterminated string", "volume \"c\n", `volfile line 1: quoted string runs past the end of the line`},
		{"string at EOF", "volume \"c", `volfile line 1: quoted string has no closing '"'`},
		{"escape at EOF", "volume \"c\\", `volfile line 1: quoted string runs past the end of the line`},
		{"empty string", "volume \"\"\n", `volfile line 1: empty quoted string; a name or value cannot be empty`},
		{"stray backslash", "volume c\\d\n", `volfile line 1: backslash outside a quoted string`},
		{"NUL", "volume c\x00\n", `volfile line 1: NUL byte in a word`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("no error; graph:\n%s", g)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tt.want)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error is %T, want *SyntaxError", err)
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxSize+1)
	if _, err := Parse(big); err == nil || !strings.Contains(err.Error(), "over 16 MiB") {
		t.Errorf("oversize: %v", err)
	}

	var b strings.Builder
	b.WriteString("volume v0\n type protocol/client\nend-volume\n")
	for i := 1; i <= MaxDepth; i++ {
		b.WriteString("volume v" + strconv.Itoa(i) + "\n type performance/md-cache\n subvolumes v" + strconv.Itoa(i-1) + "\nend-volume\n")
	}
	_, err := Parse([]byte(b.String()))
	want := `volfile line 258: volume "v64" sits on a path more than 64 translators deep`
	if err == nil || err.Error() != want {
		t.Errorf("deep graph: %v, want %s", err, want)
	}
	// One level less is fine.
	if _, err := Parse([]byte(b.String()[:strings.LastIndex(b.String(), "volume v64")])); err != nil {
		t.Errorf("%d deep: %v", MaxDepth, err)
	}
}

func TestReachable(t *testing.T) {
	src := "volume a\n type protocol/client\nend-volume\n" +
		"volume orphan\n type protocol/client\nend-volume\n" +
		"volume b\n type protocol/client\nend-volume\n" +
		"volume d\n type cluster/distribute\n subvolumes a b\nend-volume\n" +
		"volume top\n type debug/io-stats\n subvolumes d\nend-volume\n"
	g, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names(g.Reachable()), " "); got != "a b d top" {
		t.Errorf("Reachable = %s", got)
	}
	if got := strings.Join(names(g.Clients()), " "); got != "a b" {
		t.Errorf("Clients = %s", got)
	}
}
