// Package golden reads the golden wire records captured from real
// GlusterFS 10.3 (brick/testdata/wire, see its README.md): one copy for the
// tests of brick, brick/sunrpc and brick/xdr, and one hex reader.
package golden

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Dir is brick/testdata/wire.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "wire")
}

// Record returns the bytes of the record in file name (hex, white space
// ignored).
func Record(tb testing.TB, name string) []byte {
	tb.Helper()
	h, err := os.ReadFile(filepath.Join(Dir(), name))
	if err != nil {
		tb.Fatal(err)
	}
	return Unhex(tb, string(h))
}

// Names lists the record files matching pattern (e.g. "*reply.hex").
func Names(tb testing.TB, pattern string) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(Dir(), pattern))
	if err != nil {
		tb.Fatal(err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// Unhex decodes hex written with any white space in it.
func Unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
