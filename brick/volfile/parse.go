package volfile

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Limits on what Parse accepts. Real client volfiles are a few KiB, a dozen
// translators deep, and hold a few hundred volumes for the largest volumes.
const (
	MaxSize    = 16 << 20 // bytes in one volfile
	MaxVolumes = 1 << 16  // volume blocks in one volfile
	MaxDepth   = 64       // translators on the longest path from the top down
)

// Graph is a parsed client volfile: the translator graph glusterd serves.
type Graph struct {
	// Volumes holds every volume block in file order. A block's
	// subvolumes always come before it.
	Volumes []*Volume
	// Top is the last volume in the file, where fops enter the graph. In a
	// volfile served by glusterd it is the debug/io-stats translator named
	// after the volume.
	Top *Volume
}

// Volume is one "volume ... end-volume" block: one translator.
type Volume struct {
	Name       string
	Type       string    // e.g. "protocol/client", "cluster/replicate"
	Options    []Option  // in file order; a repeated key is kept twice
	Subvolumes []*Volume // in the order of the "subvolumes" line
	Line       int       // line of the "volume" keyword, for messages
}

// Option is one "option KEY VALUE" line.
type Option struct {
	Key, Value string
}

// SyntaxError is a volfile that Parse refuses; Line is 1-based, or 0 when
// the fault is not on one line (size, empty file).
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line == 0 {
		return "volfile: " + e.Msg
	}
	return "volfile line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// Option returns the value of the option key. When the key is repeated the
// last one wins, as in GlusterFS, whose dict_set replaces the earlier value.
func (v *Volume) Option(key string) (string, bool) {
	for i := len(v.Options) - 1; i >= 0; i-- {
		if v.Options[i].Key == key {
			return v.Options[i].Value, true
		}
	}
	return "", false
}

// Volume returns the volume called name, or nil.
func (g *Graph) Volume(name string) *Volume {
	for _, v := range g.Volumes {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Reachable returns every volume reachable from Top, each once, in file
// order. Volumes no path from the top reaches see no fops; GlusterFS still
// initialises them, brickfs ignores them.
func (g *Graph) Reachable() []*Volume {
	if g.Top == nil {
		return nil
	}
	seen := map[*Volume]bool{g.Top: true}
	stack := []*Volume{g.Top}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, s := range v.Subvolumes {
			if !seen[s] {
				seen[s] = true
				stack = append(stack, s)
			}
		}
	}
	out := make([]*Volume, 0, len(seen))
	for _, v := range g.Volumes {
		if seen[v] {
			out = append(out, v)
		}
	}
	return out
}

// Clients returns the protocol/client volumes reachable from Top, in file
// order: one per brick, named as in trusted.afr.<name>.
func (g *Graph) Clients() []*Volume {
	var out []*Volume
	for _, v := range g.Reachable() {
		if Canonical(v.Type) == TypeClient {
			out = append(out, v)
		}
	}
	return out
}

// Parse parses a client volfile with the grammar of GlusterFS's
// libglusterfs/src/graph.l and graph.y:
//
//	volume NAME
//	    type CATEGORY/NAME
//	    option KEY VALUE        (any number, before or after subvolumes)
//	    subvolumes NAME [NAME...] (at most once; names defined earlier)
//	end-volume
//
// A word is a run of characters other than space, tab, CR, LF, '"' and '\',
// or a "double-quoted" string in which a backslash takes the next character
// literally. Keywords are lower case and are keywords only when unquoted. A
// '#' at the start of a word comments out the rest of the line.
//
// Parse is stricter than GlusterFS where GlusterFS would silently drop or
// execute something: it refuses backticks (GlusterFS runs them as shell
// commands), empty strings, newlines or NUL bytes in words, stray
// backslashes, undefined or repeated subvolumes. Every error is a
// *SyntaxError naming the line.
func Parse(b []byte) (*Graph, error) {
	if len(b) > MaxSize {
		return nil, &SyntaxError{Msg: fmt.Sprintf("volfile is %d bytes; brickfs refuses volfiles over %d MiB", len(b), MaxSize>>20)}
	}
	p := parser{lx: lexer{src: b, line: 1}, byName: map[string]*Volume{}, depth: map[*Volume]int{}}
	return p.parse()
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokWord
	tokVolume     // volume
	tokType       // type
	tokOption     // option
	tokSubvolumes // subvolumes
	tokEndVolume  // end-volume
)

// keywords maps the unquoted spellings graph.l turns into keywords. Its
// SUB rule is {SUB}{VOLUME}[Ss], so "subvolumeS" is one too.
var keywords = map[string]tokKind{
	"volume":     tokVolume,
	"type":       tokType,
	"option":     tokOption,
	"subvolumes": tokSubvolumes,
	"subvolumeS": tokSubvolumes,
	"end-volume": tokEndVolume,
}

type token struct {
	kind tokKind
	text string
	line int
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of file"
	case tokWord:
		return strconv.Quote(t.text)
	default:
		return "\"" + t.text + "\""
	}
}

type lexer struct {
	src  []byte
	pos  int
	line int
}

// wordByte reports whether c may appear in an unquoted word (graph.l's ID).
func wordByte(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', '"', '\\':
		return false
	}
	return true
}

func (lx *lexer) errorf(line int, format string, args ...any) error {
	return &SyntaxError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (lx *lexer) next() (token, error) {
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch {
		case c == '\n':
			lx.line++
			lx.pos++
		case c == ' ' || c == '\t' || c == '\r':
			lx.pos++
		case c == '#':
			end := bytes.IndexByte(lx.src[lx.pos:], '\n')
			if end < 0 {
				end = len(lx.src) - lx.pos
			}
			comment := lx.src[lx.pos : lx.pos+end]
			if bytes.IndexByte(comment, '`') >= 0 {
				return token{}, lx.errorf(lx.line, "backtick (`) in a comment; GlusterFS would run it as a shell command, brickfs refuses it")
			}
			if bytes.IndexByte(comment, 0) >= 0 {
				return token{}, lx.errorf(lx.line, "NUL byte in a comment")
			}
			lx.pos += end
		case c == '"':
			return lx.quoted()
		case c == '\\':
			return token{}, lx.errorf(lx.line, "backslash outside a quoted string")
		default:
			start := lx.pos
			for lx.pos < len(lx.src) && wordByte(lx.src[lx.pos]) {
				switch lx.src[lx.pos] {
				case '`':
					return token{}, lx.errorf(lx.line, "backtick (`) outside a quoted string; GlusterFS would run it as a shell command, brickfs refuses it")
				case 0:
					return token{}, lx.errorf(lx.line, "NUL byte in a word")
				}
				lx.pos++
			}
			text := string(lx.src[start:lx.pos])
			if k, ok := keywords[text]; ok {
				return token{kind: k, text: text, line: lx.line}, nil
			}
			return token{kind: tokWord, text: text, line: lx.line}, nil
		}
	}
	return token{kind: tokEOF, line: lx.line}, nil
}

// quoted reads a "double-quoted" word; lx.pos is at the opening quote.
func (lx *lexer) quoted() (token, error) {
	line := lx.line
	lx.pos++
	var sb strings.Builder
	for lx.pos < len(lx.src) {
		c := lx.src[lx.pos]
		switch c {
		case '"':
			lx.pos++
			if sb.Len() == 0 {
				return token{}, lx.errorf(line, "empty quoted string; a name or value cannot be empty")
			}
			return token{kind: tokWord, text: sb.String(), line: line}, nil
		case '\n':
			return token{}, lx.errorf(line, "quoted string runs past the end of the line")
		case '`':
			return token{}, lx.errorf(line, "unescaped backtick (`) in a quoted string; GlusterFS would run it as a shell command, brickfs refuses it")
		case 0:
			return token{}, lx.errorf(line, "NUL byte in a quoted string")
		case '\\':
			if lx.pos+1 >= len(lx.src) || lx.src[lx.pos+1] == '\n' {
				return token{}, lx.errorf(line, "quoted string runs past the end of the line")
			}
			if lx.src[lx.pos+1] == 0 {
				return token{}, lx.errorf(line, "NUL byte in a quoted string")
			}
			sb.WriteByte(lx.src[lx.pos+1])
			lx.pos += 2
		default:
			sb.WriteByte(c)
			lx.pos++
		}
	}
	return token{}, lx.errorf(line, "quoted string has no closing '\"'")
}

type parser struct {
	lx     lexer
	g      Graph
	byName map[string]*Volume
	depth  map[*Volume]int // translators on the longest path from v down
}

func (p *parser) errorf(line int, format string, args ...any) error {
	return &SyntaxError{Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) parse() (*Graph, error) {
	for {
		t, err := p.lx.next()
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case tokEOF:
			if len(p.g.Volumes) == 0 {
				return nil, &SyntaxError{Msg: "volfile has no volumes"}
			}
			p.g.Top = p.g.Volumes[len(p.g.Volumes)-1]
			g := p.g
			return &g, nil
		case tokVolume:
			if err := p.volume(t); err != nil {
				return nil, err
			}
		default:
			return nil, p.errorf(t.line, "expected \"volume\", found %s", t.describe())
		}
	}
}

// word reads the word that must follow the keyword kw.
func (p *parser) word(kw token, what string) (token, error) {
	t, err := p.lx.next()
	if err != nil {
		return t, err
	}
	if t.kind != tokWord {
		return t, p.errorf(kw.line, "%q needs %s, found %s", kw.text, what, t.describe())
	}
	return t, nil
}

// volume parses one block; "volume" has been read.
func (p *parser) volume(kw token) error {
	name, err := p.word(kw, "a name")
	if err != nil {
		return err
	}
	if prev, ok := p.byName[name.text]; ok {
		return p.errorf(name.line, "volume %q is defined twice (first on line %d)", name.text, prev.Line)
	}
	if len(p.g.Volumes) >= MaxVolumes {
		return p.errorf(name.line, "more than %d volumes", MaxVolumes)
	}
	v := &Volume{Name: name.text, Line: kw.line}
	sawSub := false
	for first := true; ; first = false {
		t, err := p.lx.next()
		if err != nil {
			return err
		}
		if first && t.kind != tokType {
			// graph.y accepts only TYPE_LINE first.
			return p.errorf(t.line, "volume %q must start with \"type CATEGORY/NAME\", found %s", v.Name, t.describe())
		}
		switch t.kind {
		case tokType:
			if !first {
				return p.errorf(t.line, "volume %q has a second \"type\"", v.Name)
			}
			typ, err := p.word(t, "a translator type such as protocol/client")
			if err != nil {
				return err
			}
			v.Type = typ.text
		case tokOption:
			key, err := p.word(t, "a key and a value")
			if err != nil {
				return err
			}
			val, err := p.word(t, "a key and a value")
			if err != nil {
				return err
			}
			v.Options = append(v.Options, Option{Key: key.text, Value: val.text})
		case tokSubvolumes:
			if sawSub {
				return p.errorf(t.line, "volume %q has a second \"subvolumes\" line", v.Name)
			}
			sawSub = true
			if err := p.subvolumes(v, t); err != nil {
				return err
			}
		case tokEndVolume:
			if !sawSub {
				p.depth[v] = 1
			}
			p.g.Volumes = append(p.g.Volumes, v)
			p.byName[v.Name] = v
			return nil
		case tokVolume:
			return p.errorf(t.line, "\"end-volume\" missing for volume %q (line %d) before the next \"volume\"", v.Name, v.Line)
		case tokEOF:
			return p.errorf(v.Line, "volume %q has no \"end-volume\"", v.Name)
		default:
			return p.errorf(t.line, "unexpected %s in volume %q; expected \"option\", \"subvolumes\" or \"end-volume\"", t.describe(), v.Name)
		}
	}
}

// subvolumes reads the names after "subvolumes" up to the next keyword,
// leaving that keyword for the caller by peeking with a copy of the lexer.
func (p *parser) subvolumes(v *Volume, kw token) error {
	depth := 0
	for {
		save := p.lx
		t, err := p.lx.next()
		if err != nil {
			return err
		}
		if t.kind != tokWord {
			p.lx = save
			break
		}
		sub, ok := p.byName[t.text]
		switch {
		case t.text == v.Name:
			return p.errorf(t.line, "volume %q lists itself as a subvolume", v.Name)
		case !ok:
			return p.errorf(t.line, "subvolume %q of %q is not defined", t.text, v.Name)
		}
		for _, s := range v.Subvolumes {
			if s == sub {
				return p.errorf(t.line, "subvolume %q is listed twice in %q", t.text, v.Name)
			}
		}
		v.Subvolumes = append(v.Subvolumes, sub)
		depth = max(depth, p.depth[sub])
	}
	if len(v.Subvolumes) == 0 {
		return p.errorf(kw.line, "\"subvolumes\" in volume %q names no volume", v.Name)
	}
	if depth+1 > MaxDepth {
		return p.errorf(kw.line, "volume %q sits on a path more than %d translators deep", v.Name, MaxDepth)
	}
	p.depth[v] = depth + 1
	return nil
}

// Format prints g as a volfile that Parse reads back to an equal graph
// (for any graph Parse returned; a hand-built one needs non-empty names), in
// the layout glusterd writes (four-space indent, a blank line between
// blocks). Words that would not survive unquoted are quoted.
func (g *Graph) Format() []byte {
	var b bytes.Buffer
	for i, v := range g.Volumes {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("volume " + formatWord(v.Name) + "\n")
		b.WriteString("    type " + formatWord(v.Type) + "\n")
		for _, o := range v.Options {
			b.WriteString("    option " + formatWord(o.Key) + " " + formatWord(o.Value) + "\n")
		}
		if len(v.Subvolumes) > 0 {
			b.WriteString("    subvolumes")
			for _, s := range v.Subvolumes {
				b.WriteString(" " + formatWord(s.Name))
			}
			b.WriteByte('\n')
		}
		b.WriteString("end-volume\n")
	}
	return b.Bytes()
}

// String returns g.Format() as a string.
func (g *Graph) String() string { return string(g.Format()) }

// formatWord quotes s when it is not a plain, non-keyword word.
func formatWord(s string) string {
	plain := s != "" && s[0] != '#'
	if _, kw := keywords[s]; kw {
		plain = false
	}
	for i := 0; plain && i < len(s); i++ {
		plain = wordByte(s[i]) && s[i] != '`'
	}
	if plain {
		return s
	}
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"', '\\', '`':
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
	sb.WriteByte('"')
	return sb.String()
}
