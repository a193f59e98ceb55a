// Package fop is the vocabulary every layer of the volume graph and every
// brick client speaks, as libglusterfs is GlusterFS's: the fop table
// (Fops), open files (Fd), who a fop runs as (Caller), a failed fop
// (OpError) and the protocol's constants. It imports only brick/xdr, so a
// layer, the filesystem above the graph and the brick client below it can
// each be built and tested against it alone.
//
// # Fds
//
// An Fd is one open file or directory as the filesystem holds it. Each
// layer keeps what it needs about the open in the Fd's context, under a key
// of its own (SetCtx, Ctx), as GlusterFS keeps an fd_ctx per translator: a
// brick client its remote fd and the connection it was opened on, a
// replica set its children's fds. A layer that finds no context of its own
// on an Fd was never asked to open it and must refuse it (EBADF), never
// reopen it behind the caller's back.
//
// # Errors
//
// A failed fop is an *OpError, or wraps one; Errno tells the errno a
// caller gets. Only a brick's op_ret says a fop failed; its op_errno is
// often non-zero on success.
//
// # Concurrency
//
// Every type here is safe for concurrent use.
package fop
