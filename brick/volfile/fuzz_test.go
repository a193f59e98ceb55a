package volfile

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.vol"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata volfiles: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("volume \"a b\"\n type \"x\\\"y\"\n option \"#k\" \"end-volume\"\nend-volume\n"))
	f.Add([]byte("volume a type protocol/client end-volume volume b type t subvolumes a option k v end-volume"))

	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := Parse(b)
		if err != nil {
			if g != nil {
				t.Fatal("graph and error both returned")
			}
			return
		}
		out := g.Format()
		g2, err := Parse(out)
		if err != nil {
			t.Fatalf("Format output does not parse: %v\n%s", err, out)
		}
		if !sameGraph(g, g2) {
			t.Fatalf("round trip changed the graph:\n%s\n---\n%s", out, g2.Format())
		}
		if out2 := g2.Format(); !bytes.Equal(out, out2) {
			t.Fatalf("Format not stable:\n%s\n---\n%s", out, out2)
		}
	})
}

// sameGraph compares names, types, options and subvolume names (not Line).
func sameGraph(a, b *Graph) bool {
	if len(a.Volumes) != len(b.Volumes) || a.Top.Name != b.Top.Name {
		return false
	}
	for i, va := range a.Volumes {
		vb := b.Volumes[i]
		if va.Name != vb.Name || va.Type != vb.Type ||
			len(va.Options) != len(vb.Options) || len(va.Subvolumes) != len(vb.Subvolumes) {
			return false
		}
		for j := range va.Options {
			if va.Options[j] != vb.Options[j] {
				return false
			}
		}
		for j := range va.Subvolumes {
			if va.Subvolumes[j].Name != vb.Subvolumes[j].Name {
				return false
			}
		}
	}
	return true
}

func FuzzSpec(f *testing.F) {
	for _, s := range [][2]string{
		{"h1:/vol", ""}, {"h1,h2,h3:/vol", "h4:h5"}, {"[::1]:/vol/sub/dir", "[fe80::1%eth0]:h2"},
		{"h1:24008:vol", ""}, {"::1:/vol", ""}, {"foo", ""}, {"h:/snaps/a/b", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, spec, backup string) {
		s, err := ParseSpec(spec, backup)
		if err != nil {
			return
		}
		if len(s.Servers) == 0 || checkVolumeName(s.Volume) != nil {
			t.Fatalf("accepted %q %q as %+v", spec, backup, s)
		}
		if s.Subdir != "" && (s.Subdir[0] != '/' || s.Subdir == "/") {
			t.Fatalf("subdir %q", s.Subdir)
		}
		seen := map[Server]bool{}
		for _, srv := range s.Servers {
			if seen[srv] || srv.Port < 1 || srv.Port > 65535 || srv.Host == "" {
				t.Fatalf("bad server list %+v", s.Servers)
			}
			seen[srv] = true
			// Every server prints as something ParseSpec reads back.
			again, err := ParseSpec(srv.String()+":/"+s.Volume, "")
			if err != nil || len(again.Servers) != 1 || again.Servers[0] != srv {
				t.Fatalf("server %+v prints as %q, which reads back as %+v, %v", srv, srv.String(), again.Servers, err)
			}
		}
	})
}
