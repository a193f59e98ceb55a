package sunrpc

import (
	"bufio"
	"encoding/binary"
	"io"
	"sync"
)

// Into asks for the data at the end of a large reply (a READ's) to be read
// straight into the caller's buffer, Dest, instead of into a record of its
// own that the caller then copies from: a READ in flight then holds one
// buffer of its size, not two. The record's other bytes (the RPC header
// and the result before the data) come in body as usual.
//
// The reader copies the data from its socket buffer into Dest a piece at
// a time, each under Into's lock, and only while the call still waits: a
// caller that gives up (its context ends, the connection breaks) stops
// the copying before CallInto returns, even when a hung peer left the
// record half sent. So Dest is the caller's again as soon as CallInto
// returns, whatever happened.
//
// An Into serves one call: a reader of an earlier call may still hold it.
type Into struct {
	// Dest receives the data; a reply with more data than fits comes
	// whole instead.
	Dest []byte
	// Tail says, from the first bytes of the result body (at least
	// IntoPeek of them, and never past the record's end), how many bytes
	// at the end of the record are data for Dest; false when the reply
	// is not one to split (an error, or one it cannot tell), which then
	// comes whole. It must not keep body.
	Tail func(body []byte) (int, bool)

	mu    sync.Mutex
	state intoState // GUARDED_BY(mu)
}

type intoState uint8

const (
	intoWaiting intoState = iota // the reply has not begun
	intoFilling                  // the reader is copying data into Dest
	intoFilled                   // all of it is there
	intoStopped                  // the caller is done: Dest is not written
)

// IntoPeek is how many bytes of a result body Tail sees at least. A reply
// is split only when it is at least intoMin bytes long, so these always
// exist.
const IntoPeek = 32

// readBufBytes is the size of a connection's read buffer: the pieces of
// an Into's data are copied from it, and splittable peeks intoPeekBytes
// into it.
const readBufBytes = 64 << 10

// intoPeekBytes is how much of a record splittable looks at: the mark, an
// accepted reply's header with the largest verifier, IntoPeek of result.
const intoPeekBytes = 4 + 24 + MaxAuthBytes + IntoPeek

// A peek larger than the buffer would fail (bufio.ErrBufferFull) and drop
// the connection: this does not compile then.
var _ [readBufBytes - intoPeekBytes]struct{}

// intoMin is the smallest record read into an Into: below it, a copy of
// the data costs less than the bookkeeping.
const intoMin = 16 << 10

// maxIntoHead bounds the bytes before the data of a split reply (the RPC
// header, the result, its xdata): a reply with more comes whole.
const maxIntoHead = 64 << 10

// stop ends the reader's right to write Dest: a copy under way finishes
// first (one piece, at most the reader's buffer), later ones are skipped.
func (in *Into) stop() {
	in.mu.Lock()
	if in.state != intoFilled {
		in.state = intoStopped
	}
	in.mu.Unlock()
}

// move changes the state from to to; false if it was not from (the
// caller stopped waiting). The reader claims a waiting Into (waiting to
// filling) and marks it complete (filling to filled).
func (in *Into) move(from, to intoState) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.state != from {
		return false
	}
	in.state = to
	return true
}

// fill copies p to Dest at off, unless the caller stopped waiting.
func (in *Into) fill(off int, p []byte) {
	in.mu.Lock()
	if in.state == intoFilling {
		copy(in.Dest[off:], p)
	}
	in.mu.Unlock()
}

// readReply reads the next record. A reply to a call with an Into whose
// data fits is read in two parts: the bytes before the data into a record
// of their own (returned, with direct the data's length), the data into
// the Into. Any other record comes whole (direct -1), as readRecord reads
// it.
func (c *Conn) readReply(br *bufio.Reader) ([]byte, *Buf, int, error) {
	head, in, tail, ok, err := c.splittable(br)
	if err != nil {
		return nil, nil, -1, err
	}
	if ok {
		rec, err := readInto(br, head, in, tail)
		if err != nil {
			return nil, nil, -1, err
		}
		return rec, nil, tail, nil
	}
	rec, buf, err := readRecord(br, c.opts.MaxRecord)
	return rec, buf, -1, err
}

// splittable looks, without consuming anything, at the record about to
// be read: if it is a whole (single-fragment) successful reply of at
// least intoMin bytes to a call waiting with an Into, and Tail says its
// last tail bytes are data that fit Dest after a head of at most
// maxIntoHead, it claims the Into and says so. An error is the
// connection's, met while looking.
func (c *Conn) splittable(br *bufio.Reader) (head int, in *Into, tail int, ok bool, err error) {
	mark, err := br.Peek(4)
	if err != nil {
		// Returned, not left for a later read: bufio hands an error out
		// once, and a read after a reset would say EOF instead.
		if len(mark) > 0 {
			err = unexpected(err)
		}
		return 0, nil, 0, false, err
	}
	m := binary.BigEndian.Uint32(mark)
	n := int(m &^ (1 << 31))
	if m&(1<<31) == 0 || n < intoMin || n > c.opts.MaxRecord {
		return 0, nil, 0, false, nil
	}
	// The record has at least intoMin bytes, so these arrive.
	p, err := br.Peek(intoPeekBytes)
	if err != nil {
		return 0, nil, 0, false, unexpected(err)
	}
	p = p[4:]
	u32 := func(i int) uint32 { return binary.BigEndian.Uint32(p[i:]) }
	if u32(4) != MsgReply || u32(8) != replyAccepted {
		return 0, nil, 0, false, nil
	}
	verf := int(u32(16)) // the verifier body's length, padded below
	if verf < 0 || verf > MaxAuthBytes {
		return 0, nil, 0, false, nil
	}
	at := 20 + (verf+3)&^3 // accept_stat
	if u32(at) != Success {
		return 0, nil, 0, false, nil
	}
	body := p[at+4 : at+4+IntoPeek]
	xid := u32(0)
	c.mu.Lock()
	w, waiting := c.pending[xid]
	c.mu.Unlock()
	if !waiting || w.into == nil || w.into.Tail == nil {
		return 0, nil, 0, false, nil
	}
	t, ok := w.into.Tail(body)
	head = n - t
	if !ok || t < 0 || t > len(w.into.Dest) || head < at+4+IntoPeek || head > maxIntoHead {
		return 0, nil, 0, false, nil
	}
	if !w.into.move(intoWaiting, intoFilling) {
		return 0, nil, 0, false, nil // the caller stopped waiting: read it whole, as a late reply
	}
	return head, w.into, t, true, nil
}

// readInto reads a record splittable claimed: its first head bytes into a
// record returned, the next tail into in.Dest, a piece at a time from the
// reader's buffer (see Into).
func readInto(br *bufio.Reader, head int, in *Into, tail int) ([]byte, error) {
	if _, err := br.Discard(4); err != nil {
		return nil, err
	}
	rec := make([]byte, head)
	if _, err := io.ReadFull(br, rec); err != nil {
		in.stop()
		return nil, unexpected(err)
	}
	for off := 0; off < tail; {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				in.stop()
				return nil, unexpected(err)
			}
		}
		k := min(br.Buffered(), tail-off)
		p, _ := br.Peek(k)
		in.fill(off, p)
		_, _ = br.Discard(k)
		off += k
	}
	in.move(intoFilling, intoFilled) // false: the caller stopped waiting, Dest holds nothing it uses
	return rec, nil
}
