package fop

import (
	"fmt"
	"strings"
)

// Status is one node of the graph as `brickfs status` shows it: a layer
// cannot import the assembler, so the type lives in the vocabulary.
type Status struct {
	Name     string // translator name in the volfile
	Type     string // translator type
	Up       bool
	Detail   string // one line: a brick's address and state, a replica set's quorum and heal queue
	Children []Status
}

// String renders the tree, one node per line, children indented.
func (s Status) String() string {
	var b strings.Builder
	s.write(&b, 0)
	return b.String()
}

func (s Status) write(b *strings.Builder, depth int) {
	state := "down"
	if s.Up {
		state = "up"
	}
	fmt.Fprintf(b, "%s%s (%s) %s", strings.Repeat("  ", depth), s.Name, s.Type, state)
	if s.Detail != "" {
		fmt.Fprintf(b, ": %s", s.Detail)
	}
	b.WriteByte('\n')
	for _, c := range s.Children {
		c.write(b, depth+1)
	}
}
