package cli

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// brickfs clone on any filesystem: the clone reads identical, its holes
// stay holes, it keeps the source's mode, an existing DST is kept unless
// --force, and nothing hidden is left behind.
func TestCloneLocal(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "base.img")
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 8 << 20} {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(32 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chmod(src, 0o440); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	dst := filepath.Join(dir, "vm1.img")
	if rc := cloneMain([]string{src, dst}, &stdout, &stderr); rc != 0 {
		t.Fatalf("clone: exit %d: %s", rc, stderr.String())
	}
	a, _ := os.ReadFile(src)
	b, err := os.ReadFile(dst)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("the clone differs from its source (%v)", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 4<<20 {
		t.Errorf("the clone has %d bytes allocated; the source's holes were filled", st.Blocks*512)
	}
	if st.Mode&0o777 != 0o440 {
		t.Errorf("clone mode %o, want the source's 440", st.Mode&0o777)
	}
	if !strings.Contains(stdout.String(), "2.0 MiB of data") {
		t.Errorf("summary %q does not say 2.0 MiB of data", stdout.String())
	}
	stderr.Reset()
	if rc := cloneMain([]string{src, dst}, &stdout, &stderr); rc == 0 || !strings.Contains(stderr.String(), "pass --force") {
		t.Errorf("clone over an existing file: exit %d, %q", rc, stderr.String())
	}
	if rc := cloneMain([]string{"-q", "--force", src, dir}, &stdout, &stderr); rc == 0 || !strings.Contains(stderr.String(), "same file") {
		t.Errorf("clone onto itself: exit %d, %q", rc, stderr.String())
	}
	if err := os.WriteFile(dst, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rc := cloneMain([]string{"-q", "-f", src, dst}, &stdout, &stderr); rc != 0 {
		t.Fatalf("clone --force: exit %d: %s", rc, stderr.String())
	}
	if b, _ := os.ReadFile(dst); !bytes.Equal(a, b) {
		t.Error("--force did not replace the destination")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "brickfs-clone") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if rc := cloneMain([]string{dir, filepath.Join(dir, "x")}, &stdout, &stderr); rc == 0 || !strings.Contains(stderr.String(), "not a regular file") {
		t.Errorf("clone of a directory: exit %d, %q", rc, stderr.String())
	}
}

// copy-offload and copy-chunk are read and checked.
func TestCopyOffloadOptions(t *testing.T) {
	m, _, err := parseMountArgs([]string{"-o", "copy-offload=kernel,copy-chunk=8M", "h:/v", "/mnt"})
	if err != nil || m.CopyOffload != "kernel" || m.CopyChunk != 8<<20 {
		t.Errorf("parsed %q %d, %v", m.CopyOffload, m.CopyChunk, err)
	}
	for _, bad := range []string{"copy-offload=fast", "copy-chunk=512K", "copy-chunk=2G", "copy-chunk=x"} {
		if _, _, err := parseMountArgs([]string{"-o", bad, "h:/v", "/mnt"}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
