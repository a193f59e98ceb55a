package volfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultCacheDir is where brickfs keeps the last good volfile of each
// volume, to mount when no volfile server answers.
const DefaultCacheDir = "/var/lib/brickfs/volfiles"

// cacheMagic opens the first line of every cache file. The line is a
// volfile comment, so a cache file is itself a valid volfile.
const cacheMagic = "# brickfs volfile cache v1; servers "

// ErrNotCached is returned (wrapped) by Load when no usable volfile is
// cached. It matches fs.ErrNotExist too.
var ErrNotCached = fmt.Errorf("no cached volfile: %w", fs.ErrNotExist)

// Cache keeps the last good volfile per volume in files under Dir, one
// "<volume>.vol" each, written 0600 in a 0700 directory: a trusted volfile
// holds the volume's brick password.
//
// Each file records the servers it was fetched from. Load gives it back
// only to a mount that names at least one of them, so a volume of the same
// name in another cluster never gets this one's bricks.
//
// Save and Load are safe for concurrent use by several processes: Save
// replaces the file atomically, so Load sees the old or the new volfile.
type Cache struct {
	Dir string
}

func (c Cache) path(volume string) (string, error) {
	if err := checkVolumeName(volume); err != nil {
		return "", fmt.Errorf("volfile cache: %w", err)
	}
	return filepath.Join(c.Dir, volume+".vol"), nil
}

// Save stores b as the volfile of volume, fetched from servers. Call it only
// with a volfile that parsed and passed Check. The file is written to a
// temporary name, synced, renamed over the old one, and the directory is
// synced, so a crash leaves the old or the new volfile, never a mix.
func (c Cache) Save(volume string, servers []Server, b []byte) (err error) {
	p, err := c.path(volume)
	if err != nil {
		return err
	}
	if len(b) > MaxSize {
		return fmt.Errorf("volfile cache: volfile of %q is %d bytes, over %d MiB", volume, len(b), MaxSize>>20)
	}
	if len(servers) == 0 {
		return fmt.Errorf("volfile cache: no servers given for volume %q", volume)
	}
	names := make([]string, len(servers))
	for i, s := range servers {
		if s.Host == "" || strings.ContainsAny(s.Host, ", \t\r\n") {
			return fmt.Errorf("volfile cache: bad server host %q for volume %q", s.Host, volume)
		}
		names[i] = s.String()
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("volfile cache: %w", err)
	}
	f, err := os.CreateTemp(c.Dir, "."+volume+".vol.tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("volfile cache: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("volfile cache: saving %q: %w", volume, err)
		}
	}()
	w := bufio.NewWriter(f)
	w.WriteString(cacheMagic + strings.Join(names, ",") + "\n")
	w.Write(b)
	if err = w.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, p); err != nil {
		return err
	}
	return syncDir(c.Dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Load returns the cached volfile of volume and when it was saved, if it was
// fetched from at least one of servers. Otherwise the error wraps
// ErrNotCached.
func (c Cache) Load(volume string, servers []Server) ([]byte, time.Time, error) {
	p, err := c.path(volume)
	if err != nil {
		return nil, time.Time{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, fmt.Errorf("volfile cache: volume %q: %w", volume, ErrNotCached)
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("volfile cache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("volfile cache: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+int64(len(cacheMagic))+64<<10))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("volfile cache: %w", err)
	}
	header, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok || !bytes.HasPrefix(header, []byte(cacheMagic)) {
		return nil, time.Time{}, fmt.Errorf("volfile cache: %s is not a brickfs cache file; remove it", p)
	}
	saved := strings.Split(string(header[len(cacheMagic):]), ",")
	for _, s := range servers {
		for _, name := range saved {
			if s.String() == name {
				return body, st.ModTime(), nil
			}
		}
	}
	return nil, time.Time{}, fmt.Errorf("volfile cache: volume %q was cached from %s, none of the servers given: %w",
		volume, strings.Join(saved, ", "), ErrNotCached)
}
