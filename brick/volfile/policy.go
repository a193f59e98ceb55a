package volfile

import (
	"fmt"
	"strconv"
)

// Translator types brickfs acts on.
const (
	TypeClient     = "protocol/client"
	TypeDistribute = "cluster/distribute"
	TypeReplicate  = "cluster/replicate"
	TypeUtime      = "features/utime"
	TypeIOStats    = "debug/io-stats"
)

// Role says what brickfs does with a translator found in a client volfile.
type Role int

const (
	// Unsupported translators make brickfs refuse the volfile: skipping
	// them would put or find data where GlusterFS does not, or drop a rule
	// the volume must keep. Unknown types are Unsupported.
	Unsupported Role = iota
	// Carry translators brickfs carries out itself: protocol/client (one
	// connection per brick), features/utime (brickfs sets the ctime flags),
	// cluster/distribute over one subvolume (MKDIR adds the DHT layout
	// xattr).
	Carry
	// PassBy translators brickfs may skip: they cache, batch, prefetch or
	// measure, and the bricks give the same answers without them.
	PassBy
)

func (r Role) String() string {
	switch r {
	case Unsupported:
		return "unsupported"
	case Carry:
		return "carry"
	case PassBy:
		return "pass-by"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// rule is one row of the translator table.
type rule struct {
	role Role
	// minSub and maxSub bound the subvolume count brickfs can handle;
	// maxSub < 0 means no upper bound.
	minSub, maxSub int
	// why ends the refusal: for Unsupported, what could go wrong; for a
	// subvolume count out of bounds, why the bound exists.
	why string
}

const (
	couldHarm   = "which brickfs does not support; mounting it could read or write data wrongly"
	oneChild    = "a translator brickfs passes by or carries must have exactly one subvolume"
	passBy      = "caches, batches or measures only"
	distributed = "brickfs supports it over one subvolume only: with more it decides which brick holds each file, so mounting it could read or write data wrongly"
)

// translators is the policy table. Supporting a new translator (for
// example cluster/replicate, once failover implements AFR) is one row here.
var translators = map[string]rule{
	// Carried out by brickfs.
	TypeClient:                  {role: Carry, minSub: 0, maxSub: 0, why: "a protocol/client is a leaf and has no subvolumes"},
	TypeUtime:                   {role: Carry, minSub: 1, maxSub: 1, why: oneChild},
	TypeDistribute:              {role: Carry, minSub: 1, maxSub: 1, why: distributed},
	TypeReplicate:               {role: Carry, minSub: 1, maxSub: -1, why: "a replica set needs at least one brick"},
	TypeIOStats:                 {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // statistics only; brickfs keeps its own
	"debug/trace":               {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"debug/error-gen":           {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // fault injection for tests
	"debug/delay-gen":           {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"meta":                      {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // the /.meta tree; brickfs has none
	"system/posix-acl":          {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // bricks enforce ACLs too, from the credentials brickfs sends
	"performance/write-behind":  {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/open-behind":   {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/quick-read":    {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/md-cache":      {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/io-cache":      {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/read-ahead":    {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/readdir-ahead": {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // also what parallel-readdir loads
	"performance/nl-cache":      {role: PassBy, minSub: 1, maxSub: 1, why: oneChild},
	"performance/io-threads":    {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // client-io-threads

	// Refused with a specific reason. Anything not in the table is refused
	// with couldHarm.
	"features/read-only":       {role: Unsupported, why: "which brickfs does not enforce; mounting it could change a volume that must stay read-only"},
	"features/worm":            {role: Unsupported, why: "which brickfs does not enforce; mounting it could change or delete files the volume keeps write-once"},
	"features/snapview-client": {role: Unsupported, why: "which brickfs does not support (user-serviceable snapshots); turn features.uss off, or use GlusterFS's own client (its helper is /sbin/mount.glusterfs.distrib while brickfs stands in for mount.glusterfs)"},
	"cluster/disperse":         {role: Unsupported, why: couldHarm},
	"debug/sink":               {role: Unsupported, why: couldHarm}, // answers fops without passing them down
	"cluster/stripe":           {role: Unsupported, why: couldHarm},
	"cluster/nufa":             {role: Unsupported, why: couldHarm},
	"cluster/switch":           {role: Unsupported, why: couldHarm},
	"cluster/ha":               {role: Unsupported, why: couldHarm},
	"features/shard":           {role: Unsupported, why: couldHarm},
	"features/cloudsync":       {role: Unsupported, why: couldHarm},
	"features/cdc":             {role: Unsupported, why: couldHarm},
	"features/compress":        {role: Unsupported, why: couldHarm},
	"features/sdfs":            {role: Unsupported, why: couldHarm},
	"encryption/crypt":         {role: Unsupported, why: couldHarm},
}

// aliases maps the second names GlusterFS installs for some translators
// (xlator/cluster/dht.so beside distribute.so, and so on) to the name the
// table uses.
var aliases = map[string]string{
	"cluster/dht":               TypeDistribute,
	"cluster/afr":               TypeReplicate,
	"cluster/ec":                "cluster/disperse",
	"performance/stat-prefetch": "performance/md-cache",
}

// Canonical returns the name the policy uses for translator type typ:
// "cluster/dht" becomes "cluster/distribute"; other names are unchanged.
func Canonical(typ string) string {
	if c, ok := aliases[typ]; ok {
		return c
	}
	return typ
}

// Classify returns the role of translator type typ; unknown types are
// Unsupported.
func Classify(typ string) Role {
	return translators[Canonical(typ)].role
}

// UnsupportedError is a volfile brickfs refuses because of one translator.
type UnsupportedError struct {
	Volume     string // the GlusterFS volume: the name of the graph's top
	Translator string // the volume block, e.g. "cinder-shard"
	Type       string // e.g. "features/shard"
	Reason     string // what brickfs lacks and what could go wrong
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("volume %q uses translator %q (%s), %s", e.Volume, e.Translator, e.Type, e.Reason)
}

// Check classifies every translator reachable from Top and returns an
// *UnsupportedError for the first, from the top down, that brickfs cannot
// mount: an Unsupported or unknown type, or a subvolume count outside what
// brickfs handles for that type (so every leaf is a protocol/client).
func (g *Graph) Check() error {
	if g.Top == nil {
		return &SyntaxError{Msg: "volfile has no volumes"}
	}
	vs := g.Reachable()
	// File order lists subvolumes first, so the reverse is top-down.
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		r, known := translators[Canonical(v.Type)]
		e := &UnsupportedError{Volume: g.Top.Name, Translator: v.Name, Type: v.Type}
		switch {
		case !known:
			e.Reason = couldHarm
			return e
		case r.role == Unsupported:
			e.Reason = r.why
			return e
		}
		n := len(v.Subvolumes)
		if n < r.minSub || (r.maxSub >= 0 && n > r.maxSub) {
			e.Reason = fmt.Sprintf("with %d subvolumes; %s", n, r.why)
			return e
		}
	}
	return nil
}

// Chain checks g and returns its translators from Top down, one per level,
// ending at the protocol/client of a graph over one brick or at the
// cluster/replicate of a graph over one replica set (whose subvolumes are
// the bricks). Callers look in it
// for the translators they must carry out: a cluster/distribute means MKDIR
// must set the DHT layout xattr; a features/utime means fops carry the
// ctime flags. A graph over more than one brick is an error.
func (g *Graph) Chain() ([]*Volume, error) {
	if err := g.Check(); err != nil {
		return nil, err
	}
	var chain []*Volume
	for v := g.Top; ; v = v.Subvolumes[0] {
		chain = append(chain, v)
		if len(chain) > len(g.Volumes) {
			// Only a Graph built by hand can loop; Parse allows no cycles.
			return nil, fmt.Errorf("volume %q: the graph has a cycle through %q", g.Top.Name, v.Name)
		}
		if Canonical(v.Type) == TypeReplicate {
			return chain, nil
		}
		switch len(v.Subvolumes) {
		case 0:
			return chain, nil
		case 1:
		default:
			return nil, fmt.Errorf("volume %q: translator %q (%s) has %d subvolumes; a chain exists only for a graph over one brick",
				g.Top.Name, v.Name, v.Type, len(v.Subvolumes))
		}
	}
}

// Find returns the first volume in vs whose type is typ or an alias of it,
// or nil.
func Find(vs []*Volume, typ string) *Volume {
	typ = Canonical(typ)
	for _, v := range vs {
		if Canonical(v.Type) == typ {
			return v
		}
	}
	return nil
}
