// Package volfile reads the client volfile glusterd serves for a volume
// (GETSPEC), decides whether brickfs can mount the graph it describes,
// parses the mount spec that names the volume, and keeps the last good
// volfile of each volume on local disk.
//
// # Volfiles
//
// Parse follows the grammar of GlusterFS's libglusterfs/src/graph.l and
// graph.y: "volume NAME", "type CATEGORY/NAME", "option KEY VALUE",
// "subvolumes NAME...", "end-volume", '#' comments. The last volume in the
// file is the graph's top. Graph.Format prints a graph back; Parse of that
// output gives an equal graph. Parse is bounded (MaxSize, MaxVolumes,
// MaxDepth) and never panics.
//
// # Translator policy
//
// Graph.Check puts every translator reachable from the top in one of three
// roles (see Role): Carry, what brickfs does itself (protocol/client,
// features/utime, cluster/distribute over one subvolume); PassBy, what it
// may skip because it only caches, batches, prefetches or measures
// (performance/*, debug/io-stats and other debug translators, meta,
// system/posix-acl, whose checks the bricks repeat from the credentials
// brickfs sends); and Unsupported, which makes brickfs refuse the volume.
// Unsupported are the translators that change where or how data is stored
// (cluster/replicate until failover implements it, cluster/disperse,
// features/shard, ...), those enforcing a client-side rule brickfs does not
// enforce (features/read-only, features/worm), features/snapview-client
// (user-serviceable snapshots: it adds a .snaps namespace and a second
// graph through snapd) and every type the policy does not know. The policy
// is one table in policy.go; supporting a translator is one row there.
//
// Graph.Chain returns, for a graph over one brick, the translators from the
// top down to the protocol/client, so a caller can see which translators it
// must carry out (Find(chain, TypeDistribute) != nil: MKDIR must set the
// DHT layout xattr).
//
// # Errors
//
// Parse returns a *SyntaxError naming the line ("volfile line 12:
// subvolume \"x\" of \"y\" is not defined"). Check and Chain return an
// *UnsupportedError naming the GlusterFS volume, the translator and its
// type, and what could go wrong. ParseSpec errors quote the spec and say
// the expected form. Cache.Load wraps ErrNotCached (which matches
// fs.ErrNotExist) when there is nothing usable to load.
//
// # Concurrency
//
// A parsed Graph is not changed by any function of this package and may be
// read from many goroutines. Cache methods may run concurrently, also from
// several processes: Save replaces a file atomically.
//
// # Caching
//
// Cache keeps "<volume>.vol" under DefaultCacheDir, mode 0600 (a trusted
// volfile holds the brick password). A cached volfile is given back only
// to a mount naming at least one of the servers it came from.
package volfile
