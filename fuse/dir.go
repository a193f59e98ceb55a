package fuse

import (
	"context"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/brickfs/brickfs/brick/fop"
)

// readdirSize is the byte budget of one READDIRP, as the native client asks.
const readdirSize = 128 << 10

// dir is an open directory. Entries come from READDIRP with their
// attributes, so READDIRPLUS needs no LOOKUP per entry.
type dir struct {
	node *node
	fd   *fop.Fd

	mu   sync.Mutex
	buf  []fop.Dirent // GUARDED_BY(mu); fetched, not yet returned
	next uint64       // GUARDED_BY(mu); brick offset to read from
	eof  bool         // GUARDED_BY(mu)
	last *fop.Dirent  // GUARDED_BY(mu); the entry Readdirent returned last
}

var _ = (fs.FileReaddirenter)((*dir)(nil))

func (d *dir) Readdirent(ctx context.Context) (*gofuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for {
		if len(d.buf) == 0 {
			if d.eof {
				return nil, 0
			}
			ents, eof, _, err := d.node.vol().Readdirp(d.node.fsys.caller(ctx, nil), d.fd, d.next, readdirSize, nil)
			if err != nil {
				return nil, d.node.fsys.fail("READDIRP", err)
			}
			d.buf, d.eof = ents, eof
			if len(ents) > 0 {
				d.next = ents[len(ents)-1].Off
			}
			continue
		}
		e := d.buf[0]
		d.buf = d.buf[1:]
		if d.node.fsys.hidden(d.node.gfid, e.Name) {
			continue
		}
		d.last = &e
		ino := inoOf(e.Stat.GFID)
		if e.Name == "." || e.Name == ".." || e.Stat.GFID.IsZero() {
			ino = e.Ino
		}
		return &gofuse.DirEntry{Name: e.Name, Mode: dtToMode(e.Type), Ino: ino, Off: e.Off}, 0
	}
}

var _ = (fs.FileLookuper)((*dir)(nil))

// Lookup serves READDIRPLUS from the attributes READDIRP returned.
func (d *dir) Lookup(ctx context.Context, name string, out *gofuse.EntryOut) (*fs.Inode, syscall.Errno) {
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	if last == nil || last.Name != name || last.Stat.GFID.IsZero() || last.Stale {
		return d.node.Lookup(ctx, name, out)
	}
	return d.node.fsys.entry(ctx, d.node.EmbeddedInode(), &last.Stat, out), 0
}

var _ = (fs.FileSeekdirer)((*dir)(nil))

func (d *dir) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.buf, d.eof, d.last, d.next = nil, false, nil, off
	return 0
}

var _ = (fs.FileFsyncdirer)((*dir)(nil))

func (d *dir) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	if _, err := d.node.vol().Fsyncdir(d.node.fsys.caller(ctx, nil), d.fd, flags&1 != 0, nil); err != nil {
		return d.node.fsys.fail("FSYNCDIR", err)
	}
	return 0
}

var _ = (fs.FileReleasedirer)((*dir)(nil))

func (d *dir) Releasedir(ctx context.Context, releaseFlags uint32) {
	_ = d.node.vol().Release(context.Background(), d.fd)
}

func dtToMode(dt uint32) uint32 {
	switch dt {
	case 1:
		return syscall.S_IFIFO
	case 2:
		return syscall.S_IFCHR
	case 4:
		return syscall.S_IFDIR
	case 6:
		return syscall.S_IFBLK
	case 8:
		return syscall.S_IFREG
	case 10:
		return syscall.S_IFLNK
	case 12:
		return syscall.S_IFSOCK
	}
	return 0
}
