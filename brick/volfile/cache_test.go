package volfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCacheRoundTrip(t *testing.T) {
	c := Cache{Dir: filepath.Join(t.TempDir(), "volfiles")}
	src := readTestdata(t, "single-brick.vol")
	servers := []Server{{"h1", DefaultPort}, {"::1", 24008}}

	if _, _, err := c.Load("single", servers); !errors.Is(err, ErrNotCached) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load before Save: %v", err)
	}
	before := time.Now().Add(-time.Second)
	if err := c.Save("single", servers, src); err != nil {
		t.Fatal(err)
	}
	got, when, err := c.Load("single", []Server{{"other", DefaultPort}, {"::1", 24008}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, src) {
		t.Errorf("Load returned\n%s", got)
	}
	if when.Before(before) || when.After(time.Now().Add(time.Second)) {
		t.Errorf("saved at %v", when)
	}

	// The cache file is private and itself a valid volfile.
	p := filepath.Join(c.Dir, "single.vol")
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode())
	}
	if dst, _ := os.Stat(c.Dir); dst.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", dst.Mode())
	}
	raw, _ := os.ReadFile(p)
	if _, err := Parse(raw); err != nil {
		t.Errorf("cache file does not parse: %v", err)
	}

	// Another cluster with a volume of the same name gets nothing.
	_, _, err = c.Load("single", []Server{{"h1", 24010}})
	if !errors.Is(err, ErrNotCached) {
		t.Errorf("Load from other servers: %v", err)
	}

	// Save replaces, and leaves no temporary files.
	if err := c.Save("single", servers, []byte("volume x\n type protocol/client\nend-volume\n")); err != nil {
		t.Fatal(err)
	}
	got, _, _ = c.Load("single", servers)
	if string(got) != "volume x\n type protocol/client\nend-volume\n" {
		t.Errorf("after replace: %q", got)
	}
	ents, _ := os.ReadDir(c.Dir)
	if len(ents) != 1 {
		t.Errorf("cache dir holds %d entries", len(ents))
	}
}

func TestCacheRefuses(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	s := []Server{{"h1", DefaultPort}}
	for _, name := range []string{"", "../etc", "a/b", ".hidden", "-x", "a.vol"} {
		if err := c.Save(name, s, []byte("x")); err == nil {
			t.Errorf("Save(%q) accepted", name)
		}
		if _, _, err := c.Load(name, s); err == nil || errors.Is(err, ErrNotCached) {
			t.Errorf("Load(%q) = %v", name, err)
		}
	}
	if err := c.Save("v", nil, []byte("x")); err == nil {
		t.Error("Save with no servers accepted")
	}
	if err := c.Save("v", []Server{{"a,b", 1}}, []byte("x")); err == nil {
		t.Error("Save with a comma in a host accepted")
	}
	if err := os.WriteFile(filepath.Join(c.Dir, "junk.vol"), []byte("volume x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Load("junk", s); err == nil || errors.Is(err, ErrNotCached) {
		t.Errorf("Load of a foreign file = %v", err)
	}
}
