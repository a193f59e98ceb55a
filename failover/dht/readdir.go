package dht

import (
	"context"
	"sync"
	"syscall"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Readdir offsets. An offset the layer hands out names a subvolume and
// that subvolume's own offset, and stays below 1<<62 | 1<<62-1 so it is
// positive for lseek:
//   - a small brick offset x (below 1<<62 >> bits): x<<bits | sub;
//   - a large one (ext4's hash offsets): 1<<62 | (x>>1 with the low bits
//     cleared) | sub, as GlusterFS's gf_itransform encodes it. That drops
//     the low bits of x; the layer remembers the exact x of the offsets
//     it handed out lately and falls back to the approximation (what the
//     native client always uses) for older ones;
//   - the end-of-directory offset posix gives the last entry (LLONG_MAX)
//     becomes the start of the next subvolume, or endOff after the last.
//
// Offset 0 is the start of the first subvolume.

const (
	bigOff   = uint64(1) << 62
	eofOff   = uint64(1)<<63 - 1 // what a brick gives its last entry
	bigLimit = 1 << 16           // exact large offsets remembered
)

type offTable struct {
	mu    sync.Mutex
	exact map[uint64]uint64 // GUARDED_BY(mu); handed-out offset -> brick offset
}

// endOff is the offset after the last entry of the last subvolume.
func (d *DHT) endOff() uint64 { return bigOff | maxSubvols }

func (d *DHT) encodeOff(sub int, off uint64) uint64 {
	if off == eofOff {
		if sub+1 >= maxSubvols {
			return d.endOff()
		}
		return uint64(sub + 1)
	}
	if off < bigOff>>subBits {
		return off<<subBits | uint64(sub)
	}
	low := uint64(1)<<subBits - 1
	enc := bigOff | (off>>1)&(bigOff-1)&^low | uint64(sub)
	t := &d.big
	t.mu.Lock()
	if t.exact == nil || len(t.exact) >= bigLimit {
		t.exact = map[uint64]uint64{}
	}
	t.exact[enc] = off
	t.mu.Unlock()
	return enc
}

// decodeOff returns the subvolume and its offset an offset names; sub ==
// maxSubvols is the end of the directory.
func (d *DHT) decodeOff(enc uint64) (int, uint64, bool) {
	if enc == d.endOff() {
		return maxSubvols, 0, true
	}
	low := uint64(1)<<subBits - 1
	sub := int(enc & low)
	if sub >= maxSubvols || enc >= 1<<63 {
		return 0, 0, false
	}
	if enc&bigOff == 0 {
		return sub, enc >> subBits, true
	}
	t := &d.big
	t.mu.Lock()
	off, ok := t.exact[enc]
	t.mu.Unlock()
	if !ok {
		off = (enc &^ bigOff &^ low) << 1
	}
	return sub, off, true
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
	sub, off, ok := d.decodeOff(offset)
	if !ok {
		return nil, false, nil, d.errf("READDIRP", f.GFID, syscall.EINVAL, "offset %#x was not handed out by this directory", offset)
	}
	l, firstUp := df.lay, df.firstUp
	o, h := d.options()
	x := append(xdr.Dict{}, xd...).With(xattrLinkto, xdr.Uint(256))
	for sub < len(df.fds) {
		if df.fds[sub] == nil || !d.isLive(sub) {
			// Not there at opendir, or gone since (remove-brick
			// commit: its files were moved to the others).
			sub, off = sub+1, 0
			continue
		}
		ents, eof, rx, err := d.kid(sub).Readdirp(ctx, df.fds[sub], off, size, x)
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
					if hs := l.search(h.hash(e.Name)); hs >= 0 && hs < len(df.fds) && df.fds[hs] != nil {
						owner = hs
					}
				}
				if sub != owner {
					continue
				}
				d.setDir(e.Stat.GFID, f.GFID, e.Name, nil)
			default:
				d.setFile(e.Stat.GFID, sub)
				strip1(&e.Stat)
			}
			e.Off = d.encodeOff(sub, e.Off)
			e.Xdata = stripKeys(e.Xdata, xd)
			out = append(out, e)
		}
		if eof || len(ents) == 0 {
			next := sub + 1
			for next < len(df.fds) && (df.fds[next] == nil || !d.isLive(next)) {
				next++
			}
			if next == len(df.fds) {
				return out, true, rx, nil
			}
			if len(out) > 0 {
				// Continuing after the last entry means the next
				// subvolume's start.
				out[len(out)-1].Off = uint64(next)
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
