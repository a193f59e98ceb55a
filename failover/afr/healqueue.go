package afr

import (
	"context"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/brickfs/brickfs/brick/fop"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Client-side heal.
//
// The self-heal daemon heals what the changelog marks, but only when its
// own connection to a brick saw the brick go and come back, or at its next
// crawl (10 minutes by default). After a brick hung (SIGSTOP) or its host
// went silent, only brickfs noticed, so brickfs heals the files it marked
// itself, as soon as the brick is back, the way AFR's heal does. The
// transactions reach heal only through this file: they note what they
// accused (noteHeal, noteEntryHeal) and kick the worker.

// HealPending is how many files and directories the replica set knows
// need heal (those it accused a brick for since it started).
func (r *Replicate) HealPending() int {
	r.healMu.Lock()
	defer r.healMu.Unlock()
	n := len(r.toHeal)
	for g := range r.entryHeal {
		if _, ok := r.toHeal[g]; !ok {
			n++
		}
	}
	return n
}

// noteHeal remembers that gfid has an accusation of kind slot (data or
// metadata) that brickfs made.
func (r *Replicate) noteHeal(gfid xdr.GFID, slot int) {
	r.healMu.Lock()
	if r.toHeal == nil {
		r.toHeal = map[xdr.GFID]uint8{}
	}
	r.toHeal[gfid] |= 1 << slot
	r.healMu.Unlock()
}

// noteEntryHeal remembers a name an entry operation changed while a brick
// missed it; an empty name registers the directory alone (a directory made
// while a brick was missing, whose whole namespace needs healing).
func (r *Replicate) noteEntryHeal(dir xdr.GFID, name string) {
	r.healMu.Lock()
	if r.entryHeal == nil {
		r.entryHeal = map[xdr.GFID]map[string]bool{}
	}
	if r.entryHeal[dir] == nil {
		r.entryHeal[dir] = map[string]bool{}
	}
	if name != "" && len(r.entryHeal[dir]) < 100000 {
		r.entryHeal[dir][name] = true
	}
	r.healMu.Unlock()
}

// kickHeal wakes the heal worker.
func (r *Replicate) kickHeal() {
	r.healOnce.Do(func() {
		r.healKick = make(chan struct{}, 1)
		r.healStop = make(chan struct{})
		r.healDone = make(chan struct{})
		r.healCtx, r.healCancel = context.WithCancel(context.Background())
		go r.healWorker()
	})
	select {
	case r.healKick <- struct{}{}:
	default:
	}
}

func (r *Replicate) healWorker() {
	defer close(r.healDone)
	for {
		r.healMu.Lock()
		waiting := len(r.toHeal) > 0 || len(r.entryHeal) > 0
		r.healMu.Unlock()
		retry := make(<-chan time.Time)
		if waiting {
			// Heals that could not run (a brick down, the heal daemon at
			// the same file) are tried again now and then.
			retry = time.After(10 * time.Second)
		}
		select {
		case <-r.healStop:
			return
		case <-r.healKick:
		case <-retry:
		}
		// Let a returning brick finish its handshake and the writers move
		// their eager locks over to it first.
		select {
		case <-r.healStop:
			return
		case <-time.After(200 * time.Millisecond):
		}
		// Names first: a file made on the returning brick is then filled
		// in by the data and metadata heals below.
		r.healEntries(r.healCtx)
		r.healMu.Lock()
		todo := make(map[xdr.GFID]uint8, len(r.toHeal))
		for g, kinds := range r.toHeal {
			todo[g] = kinds
		}
		r.healMu.Unlock()
		for g, kinds := range todo {
			select {
			case <-r.healStop:
				return
			default:
			}
			for _, slot := range []int{slotData, slotMeta} {
				if kinds&(1<<slot) == 0 {
					continue
				}
				heal := r.healData
				if slot == slotMeta {
					heal = r.healMeta
				}
				done, err := heal(r.healCtx, g)
				if err != nil {
					r.log.Warn("heal failed; the self-heal daemon will heal it", zap.Stringer("gfid", g), zap.Int("slot", slot), zap.Error(err))
				}
				if done || fop.Errno(err) == syscall.ENOENT || fop.Errno(err) == syscall.ESTALE {
					r.healMu.Lock()
					if r.toHeal[g] &^= 1 << slot; r.toHeal[g] == 0 {
						delete(r.toHeal, g)
					}
					r.healMu.Unlock()
				}
			}
		}
	}
}

// healDomainSuffix names the lock domain heals take first, as the
// self-heal daemon does: two healers of one file never run at once.
const healDomainSuffix = ":self-heal"
