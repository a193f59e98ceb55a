// Package volfile reads the client volfile glusterd serves for a volume
// (GETSPEC), follows it while a volume is mounted (Watch), parses the
// mount spec that names the volume, and keeps the last good volfile of
// each volume on local disk. Which translators brickfs carries out, passes
// by or refuses is the graph assembler's registry (package failover); this
// package knows their names (Canonical maps GlusterFS's second names,
// cluster/dht, cluster/afr, to the first).
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
// # Following
//
// Watch stays connected to one glusterd of the list (the next when it
// goes), fetches the volfile on every FETCHSPEC callback and after every
// reconnect, and hands a changed volfile to its caller's apply function.
// A glusterd that stops answering its pings, or breaks the protocol, is
// left for the next with one line naming it and what it did (at info when
// it merely closed the connection, as a restart does). Fetch and Watch
// bound every call by their timeouts; brick/sunrpc bounds what a glusterd
// can make them read.
//
// # Errors
//
// Parse returns a *SyntaxError naming the line ("volfile line 12:
// subvolume \"x\" of \"y\" is not defined"). ParseSpec errors quote the spec and say
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
