package hostile

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/brickfs/brickfs/brick/internal/golden"
	"github.com/brickfs/brickfs/brick/xdr"
)

// Glusterd answers as a glusterd does: DUMP, PING, PORTBYBRICK with the
// port brickPort returns, and GETSPEC with volfile.
func Glusterd(brickPort func() int, volfile []byte) Answer {
	return func(c *Call) []byte {
		e := xdr.NewEncoder(256)
		switch {
		case c.Prog == ProgDump && c.Proc == ProcDump:
			return dump([]program{{"GF-DUMP", ProgDump, 1}, {"Gluster Portmap", ProgPortmap, 1}, {"Gluster Handshake", ProgHandshake, 2}})
		case c.Prog == ProgDump && c.Proc == ProcPing:
			return pingOK()
		case c.Prog == ProgPortmap && c.Proc == ProcPortByBrick:
			e.Int32(0)
			e.Int32(0)
			e.Int32(0)
			e.Int32(int32(brickPort()))
			return e.B
		case c.Prog == ProgHandshake && c.Proc == ProcGetSpec:
			e.Int32(int32(len(volfile)))
			e.Int32(0)
			e.Opaque(volfile)
			e.Opaque(nil)
			return e.B
		}
		return nil
	}
}

// Brick answers as a brick does: DUMP, PING, SETVOLUME accepted, and every
// fop with FopOK.
func Brick() Answer {
	return func(c *Call) []byte {
		switch {
		case c.Prog == ProgDump && c.Proc == ProcDump:
			return dump([]program{{"GlusterFS 4.x v1", ProgFOP, VersFOP}, {"GF-DUMP", ProgDump, 1}, {"GlusterFS Handshake", ProgHandshake, 2}})
		case c.Prog == ProgDump && c.Proc == ProcPing:
			return pingOK()
		case c.Prog == ProgHandshake && c.Proc == ProcSetVolume:
			e := xdr.NewEncoder(256)
			e.Int32(0)
			e.Int32(0)
			e.Opaque(xdr.OldDict{}.Set("ERROR", "Success").Set("volume-id", "dc34408c-f3be-48b8-b562-bad26ae87c44").Marshal())
			return e.B
		case c.Prog == ProgFOP:
			return FopOK()
		}
		return nil
	}
}

// FopOK is a successful fop reply any fop decodes: op_ret 0, op_errno 0, a
// NULL xdata, then zeros (iatts, an fd of 0, empty lists and dicts).
func FopOK() []byte {
	e := xdr.NewEncoder(1024)
	e.Int32(0)
	e.Int32(0)
	_ = e.Dict(nil)
	e.Raw(make([]byte, 5*xdr.IattSize+64))
	return e.B
}

type program struct {
	name      string
	num, vers uint64
}

func dump(ps []program) []byte {
	e := xdr.NewEncoder(256)
	e.Uint64(0)
	e.Int32(0)
	e.Int32(0)
	for _, p := range ps {
		e.Bool(true)
		e.String(p.name)
		e.Uint64(p.num)
		e.Uint64(p.vers)
	}
	e.Bool(false)
	return e.B
}

func pingOK() []byte { return make([]byte, 8) }

// Is picks the calls of one program and procedure.
func Is(prog, proc uint32) func(*Call) bool {
	return func(c *Call) bool { return c.Prog == prog && c.Proc == proc }
}

// IsFop picks every fop.
func IsFop(c *Call) bool { return c.Prog == ProgFOP }

// GarbageBody answers with an accepted SUCCESS reply carrying body.
func GarbageBody(body []byte) Behaviour {
	return func(c *Conn, call *Call) bool { return c.Reply(call.Xid, body) == nil }
}

// GarbageRecord sends rec as a whole record in place of a reply.
func GarbageRecord(rec []byte) Behaviour {
	return func(c *Conn, call *Call) bool { return c.Record(rec) == nil }
}

// GarbageStream sends b as it is, with no record mark of its own.
func GarbageStream(b []byte) Behaviour {
	return func(c *Conn, call *Call) bool { return c.Write(b) == nil }
}

// Truncated sends a record mark promising promise bytes (last fragment)
// and only the first bytes of a reply, then closes the connection or, if
// !closeAfter, stays silent.
func Truncated(promise int, closeAfter bool) Behaviour {
	return func(c *Conn, call *Call) bool {
		b := binary.BigEndian.AppendUint32(nil, uint32(promise)|1<<31)
		b = append(b, ReplyHeader(call.Xid, Success)...)
		if c.Write(b) != nil || closeAfter {
			return false
		}
		c.Silence()
		return false
	}
}

// Mark sends the record mark m, a reply header after it, and stays
// silent (Mark(0xffffffff): a 2 GiB record).
func Mark(m uint32) Behaviour {
	return func(c *Conn, call *Call) bool {
		b := binary.BigEndian.AppendUint32(nil, m)
		if c.Write(append(b, ReplyHeader(call.Xid, Success)...)) != nil {
			return false
		}
		c.Silence()
		return false
	}
}

// FragmentsForever streams non-last fragments of size bytes until the
// client hangs up: a record that never ends and outgrows any limit.
func FragmentsForever(size int) Behaviour {
	frag := binary.BigEndian.AppendUint32(nil, uint32(size))
	frag = append(frag, make([]byte, size)...)
	return func(c *Conn, call *Call) bool {
		first := binary.BigEndian.AppendUint32(nil, 24)
		if c.Write(append(first, ReplyHeader(call.Xid, Success)...)) != nil {
			return false
		}
		for c.Write(frag) == nil {
			select {
			case <-c.Stopped():
				return false
			default:
			}
		}
		return false
	}
}

// EmptyFragmentsForever streams empty non-last fragments until the client
// hangs up: no byte limit is ever reached.
func EmptyFragmentsForever() Behaviour {
	zeros := make([]byte, 4096)
	return func(c *Conn, call *Call) bool {
		for c.Write(zeros) == nil {
			select {
			case <-c.Stopped():
				return false
			default:
			}
		}
		return false
	}
}

// Trickle sends a record mark promising promise bytes, then one byte every
// every, for ever: a reply that never ends, with the connection busy.
func Trickle(promise int, every time.Duration) Behaviour {
	return func(c *Conn, call *Call) bool {
		if c.Write(binary.BigEndian.AppendUint32(nil, uint32(promise)|1<<31)) != nil {
			return false
		}
		for c.Pause(every) && c.Write([]byte{0}) == nil {
		}
		return false
	}
}

// CallbacksForever sends a callback CALL of proc every every, and no
// reply, never reading again.
func CallbacksForever(proc uint32, every time.Duration) Behaviour {
	return func(c *Conn, call *Call) bool {
		for c.Callback(proc) == nil && c.Pause(every) {
		}
		return false
	}
}

// Unasked replies to an xid the client never asked instead of call (n
// times, every every), then stays silent.
func Unasked(n int, every time.Duration) Behaviour {
	return func(c *Conn, call *Call) bool {
		for i := 0; i < n; i++ {
			if c.Reply(call.Xid^0x80000000+uint32(i), pingOK()) != nil || !c.Pause(every) {
				return false
			}
		}
		c.Silence()
		return false
	}
}

// Duplicate answers call honestly, twice.
func Duplicate(a Answer) Behaviour {
	return func(c *Conn, call *Call) bool {
		body := a(call)
		return c.Reply(call.Xid, body) == nil && c.Reply(call.Xid, body) == nil
	}
}

// AcceptStat answers with an accepted reply of accept_stat stat, extra
// after it (PROG_MISMATCH's low and high versions).
func AcceptStat(stat uint32, extra ...uint32) Behaviour {
	return func(c *Conn, call *Call) bool {
		b := ReplyHeader(call.Xid, stat)
		for _, v := range extra {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return c.Record(b) == nil
	}
}

// Denied answers MSG_DENIED with reject_stat stat and extra after it
// (RPC_MISMATCH's versions, AUTH_ERROR's auth_stat).
func Denied(stat uint32, extra ...uint32) Behaviour {
	return func(c *Conn, call *Call) bool {
		var b []byte
		for _, v := range append([]uint32{call.Xid, 1, 1, stat}, extra...) {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return c.Record(b) == nil
	}
}

// Header answers with a record of the words given after the xid (a wrong
// msg_type, reply_stat...).
func Header(words ...uint32) Behaviour {
	return func(c *Conn, call *Call) bool {
		b := binary.BigEndian.AppendUint32(nil, call.Xid)
		for _, v := range words {
			b = binary.BigEndian.AppendUint32(b, v)
		}
		return c.Record(b) == nil
	}
}

// StopReading never reads or answers again (the connection stays open
// until the server closes).
func StopReading() Behaviour {
	return func(c *Conn, call *Call) bool {
		<-c.Stopped()
		return false
	}
}

// Random is n bytes from a generator seeded with seed.
func Random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Corpus is the fuzzers' seed corpora, by file name: every golden wire
// record (brick/testdata/wire, the seeds of the brick and sunrpc fuzzers),
// the volfiles FuzzParse starts from, and the entries of
// brick/volfile/testdata/fuzz.
func Corpus(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	for _, n := range golden.Names(tb, "*.hex") {
		out[n] = golden.Record(tb, n)
	}
	_, file, _, _ := runtime.Caller(0)
	vdir := filepath.Join(filepath.Dir(file), "..", "..", "volfile", "testdata")
	vols, _ := filepath.Glob(filepath.Join(vdir, "*.vol"))
	fz, _ := filepath.Glob(filepath.Join(vdir, "fuzz", "*", "*"))
	for _, p := range append(vols, fz...) {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		if strings.HasPrefix(string(b), "go test fuzz v1\n") {
			b = fuzzEntry(b)
		}
		out[filepath.Base(p)] = b
	}
	if len(out) < 20 {
		tb.Fatalf("hostile: only %d corpus files", len(out))
	}
	return out
}

// fuzzEntry joins the quoted values of a "go test fuzz v1" file.
func fuzzEntry(b []byte) []byte {
	var out []byte
	for _, line := range strings.Split(string(b), "\n")[1:] {
		i, j := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
		if i < 0 || j < i {
			continue
		}
		if v, err := strconv.Unquote(line[i+1 : j]); err == nil {
			out = append(out, v...)
		}
	}
	return bytes.Clone(out)
}
