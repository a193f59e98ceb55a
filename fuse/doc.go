// Package fuse is the kernel side of brickfs: a go-fuse node tree over a
// Volume (the fops of the volume graph), and the only importer of go-fuse.
//
// Each node is one GlusterFS inode, keyed by its GFID; the inode number the
// kernel sees is derived from the GFID as the native client derives it, so
// both clients show the same st_ino. Attributes come from the bricks' iatt
// bit for bit (mode 0000 included: Options.NullPermissions); st_blksize is
// 128 KiB as the native fuse-bridge reports it. A file opened with O_DIRECT
// is served with FOPEN_DIRECT_IO and the kernel's async direct I/O, so a
// VM's queue depth reaches the bricks.
//
// # Errors
//
// Every failure becomes an errno in one place (toErrno): the brick's own
// errno when there is one, EIO otherwise, never ENOSYS (the kernel would
// switch the operation off for the life of the mount). Errors a caller
// expects (ENOENT on lookup, ENODATA on getxattr, EACCES, ...) are logged
// at debug level, others as warnings with the fop's name.
//
// # Caching
//
// The kernel caches attributes and names for attribute-timeout and
// entry-timeout (1 s by default, as the native client), failed lookups for
// negative-timeout (0 by default). READDIRPLUS fills the kernel's caches
// from READDIRP's attributes. Missing xattrs are remembered per inode, as
// md-cache does, for attribute-timeout (at most 64 names, forgotten when
// this client sets or removes one). Nothing else is cached here: data goes
// to the bricks on every read and write.
//
// # Interrupts
//
// A fop already sent to the bricks may complete there, so the kernel's
// interrupts are ignored (the caller's context is detached), as the
// native fuse-bridge does; only a wait for a POSIX lock (F_SETLKW) ends on
// an interrupt: the caller gets EINTR at once, and a lock the bricks grant
// later is unlocked.
//
// # Concurrency
//
// go-fuse runs each request in a goroutine of its own; the FS keeps no lock
// across a call to the Volume except a directory stream's, across the
// READDIRP that refills it. FLUSH carries the lock owner of the closing
// process, which go-fuse drops, so it is taken from the raw request and
// kept per pid while the FLUSH runs (beginFlush, endFlush).
package fuse
