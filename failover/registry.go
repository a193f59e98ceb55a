package failover

import (
	"fmt"
	"strconv"

	"github.com/brickfs/brickfs/brick/volfile"
)

// Role says what brickfs does with a translator found in a client volfile.
type Role int

const (
	// Unsupported translators make brickfs refuse the volfile: skipping
	// them would put or find data where GlusterFS does not, or drop a rule
	// the volume must keep. Unknown types are Unsupported.
	Unsupported Role = iota
	// Carry translators brickfs carries out itself, each as a node of the
	// graph built by the row's build function.
	Carry
	// PassBy translators brickfs steps over to their one subvolume: they
	// cache, batch, prefetch or measure, and the bricks give the same
	// answers without them.
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

// row is one translator type: what brickfs does with it, and for a
// carried one how its node is built once its children are.
type row struct {
	role Role
	// minSub and maxSub bound the subvolume count brickfs can handle;
	// maxSub < 0 means no upper bound.
	minSub, maxSub int
	// why ends the refusal: for Unsupported, what could go wrong; for a
	// subvolume count out of bounds, why the bound exists.
	why string
	// build makes the node of a carried translator from its children;
	// nil for one that is carried without a node of its own (its only
	// child stands in for it).
	build buildFunc
}

const (
	couldHarm = "which brickfs does not support; mounting it could read or write data wrongly"
	oneChild  = "a translator brickfs passes by or carries must have exactly one subvolume"
)

// registry is the table of translator types. Supporting a translator is
// one row here, whose build function lives beside the layer.
var registry = map[string]row{
	// Carried out by brickfs.
	volfile.TypeClient:     {role: Carry, minSub: 0, maxSub: 0, why: "a protocol/client is a leaf and has no subvolumes", build: buildClient},
	volfile.TypeReplicate:  {role: Carry, minSub: 1, maxSub: -1, why: "a replica set needs at least one brick", build: buildReplicate},
	volfile.TypeDistribute: {role: Carry, minSub: 1, maxSub: -1, why: "a distribute translator needs at least one subvolume", build: buildDistribute},
	volfile.TypeShard:      {role: Carry, minSub: 1, maxSub: 1, why: oneChild, build: buildShard},
	// utime: the brick client sends the ctime flags on every fop itself.
	volfile.TypeUtime: {role: Carry, minSub: 1, maxSub: 1, why: oneChild},

	// Passed by.
	volfile.TypeIOStats:         {role: PassBy, minSub: 1, maxSub: 1, why: oneChild}, // statistics only; brickfs keeps its own
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
	"features/cloudsync":       {role: Unsupported, why: couldHarm},
	"features/cdc":             {role: Unsupported, why: couldHarm},
	"features/compress":        {role: Unsupported, why: couldHarm},
	"features/sdfs":            {role: Unsupported, why: couldHarm},
	"encryption/crypt":         {role: Unsupported, why: couldHarm},
}

// Classify returns the role of translator type typ; unknown types are
// Unsupported.
func Classify(typ string) Role {
	return registry[volfile.Canonical(typ)].role
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
func Check(g *volfile.Graph) error {
	if g.Top == nil {
		return &volfile.SyntaxError{Msg: "volfile has no volumes"}
	}
	vs := g.Reachable()
	// File order lists subvolumes first, so the reverse is top-down.
	for i := len(vs) - 1; i >= 0; i-- {
		v := vs[i]
		r, known := registry[volfile.Canonical(v.Type)]
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
