package dht

import (
	"context"
	"sync"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Readdir offsets. An offset the layer hands out names a subvolume and
// that subvolume's own offset: the subvolume index in the low d.bits
// bits, the offset above them; an offset too large to fit is kept in the
// fd's table and the entry gets the table index with the top bit set.
// Offset 0 is the start of the first subvolume.

const bigOff = uint64(1) << 63

type offTable struct {
	mu   sync.Mutex
	offs []uint64 // GUARDED_BY(mu)
}

func (d *DHT) encodeOff(df *dirFd, sub int, off uint64) uint64 {
	if off < bigOff>>d.bits {
		return off<<d.bits | uint64(sub)
	}
	df.big.mu.Lock()
	defer df.big.mu.Unlock()
	df.big.offs = append(df.big.offs, off)
	return bigOff | uint64(len(df.big.offs)-1)<<d.bits | uint64(sub)
}

func (d *DHT) decodeOff(df *dirFd, enc uint64) (int, uint64, bool) {
	sub := int(enc & (1<<d.bits - 1))
	if sub >= len(d.kids) {
		return 0, 0, false
	}
	if enc&bigOff == 0 {
		return sub, enc >> d.bits, true
	}
	k := (enc &^ bigOff) >> d.bits
	df.big.mu.Lock()
	defer df.big.mu.Unlock()
	if k >= uint64(len(df.big.offs)) {
		return 0, 0, false
	}
	return sub, df.big.offs[k], true
}

// Readdirp lists a directory one subvolume after another, each entry
// once: linkto files are never shown, a directory only from the
// subvolume its name hashes to (or the first with a copy when that one
// is down; with readdir-optimize, only from the first), "." and ".."
// only from the first subvolume.
func (d *DHT) Readdirp(ctx context.Context, f *fop.Fd, offset uint64, size uint32, xd xdr.Dict) ([]fop.Dirent, bool, xdr.Dict, error) {
	df := dirOf(f)
	if df == nil {
		return nil, false, nil, d.errf("READDIRP", f.GFID, syscall.ENOTDIR, "not a directory fd")
	}
	sub, off, ok := d.decodeOff(df, offset)
	if !ok {
		return nil, false, nil, d.errf("READDIRP", f.GFID, syscall.EINVAL, "offset %#x was not handed out by this directory", offset)
	}
	l, err := d.layoutOf(ctx, f.GFID)
	if err != nil {
		return nil, false, nil, err
	}
	o, h := d.options()
	firstUp := -1
	for i, cf := range df.fds {
		if cf != nil && d.kids[i].Up() {
			firstUp = i
			break
		}
	}
	x := append(xdr.Dict{}, xd...).With(xattrLinkto, xdr.Uint(256))
	for sub < len(d.kids) {
		if df.fds[sub] == nil {
			sub, off = sub+1, 0
			continue
		}
		ents, eof, rx, err := d.kids[sub].Readdirp(ctx, df.fds[sub], off, size, x)
		if err != nil {
			return nil, false, nil, err
		}
		var out []fop.Dirent
		for _, e := range ents {
			off = e.Off
			switch {
			case e.Name == "." || e.Name == "..":
				if sub != firstUp {
					continue
				}
			case isLinkto(e.Stat, e.Xdata):
				continue
			case isDir(e.Stat):
				owner := firstUp
				if !o.ReaddirOptimize {
					if hs := l.search(h.hash(e.Name)); hs >= 0 && d.kids[hs].Up() && df.fds[hs] != nil {
						owner = hs
					}
				}
				if sub != owner {
					continue
				}
				d.setDir(e.Stat.GFID, f.GFID, e.Name, nil)
			default:
				d.setFile(e.Stat.GFID, sub)
			}
			e.Off = d.encodeOff(df, sub, e.Off)
			e.Xdata = stripKeys(e.Xdata, xd)
			out = append(out, e)
		}
		if eof || len(ents) == 0 {
			next := sub + 1
			for next < len(d.kids) && df.fds[next] == nil {
				next++
			}
			if next == len(d.kids) {
				return out, true, rx, nil
			}
			if len(out) > 0 {
				// Continuing after the last entry means the next
				// subvolume's start.
				out[len(out)-1].Off = d.encodeOff(df, next, 0)
				return out, false, rx, nil
			}
			sub, off = next, 0
			continue
		}
		if len(out) > 0 {
			return out, false, rx, nil
		}
	}
	return nil, true, nil, nil
}
