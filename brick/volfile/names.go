package volfile

// Translator types brickfs acts on (the graph's registry is in failover).
const (
	TypeClient     = "protocol/client"
	TypeDistribute = "cluster/distribute"
	TypeReplicate  = "cluster/replicate"
	TypeUtime      = "features/utime"
	TypeIOStats    = "debug/io-stats"
	TypeShard      = "features/shard"
)

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
