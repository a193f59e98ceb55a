// Package brick is a client of one GlusterFS brick: the handshake with its
// glusterd and glusterfsd (DUMP, PORTBYBRICK, SETVOLUME with the
// volfile's options and credentials), every fop of the FOP program
// (1298437 version 400) as a blocking Go call, pings, and reconnection.
// Below it, brick/sunrpc frames records and multiplexes calls by xid,
// brick/xdr encodes the wire types, and brick/volfile parses, fetches and
// caches volfiles.
//
// A Client keeps one TCP (or TLS) connection to its brick, with one reader
// goroutine. It pings every ping-interval; a brick that has sent no reply
// for ping-timeout while calls wait for it (callbacks and records that never
// end do not count) is dropped (its calls fail with ENOTCONN) and
// reconnected with a capped, jittered backoff, asking
// glusterd for its port anew, so a brick restarted on another port is
// found. Open fds are reopened by GFID after a reconnect: the Client keeps
// the remote fd and the connection generation it belongs to in its own
// context on the Fd (fop.Fd.Ctx, keyed by the *Client), and refuses with
// EBADF an Fd it did not open. So a brick moved elsewhere is retargeted
// (Retarget), never replaced by a new Client: that would turn every open
// fd into EBADF.
//
// A brick or glusterd that breaks the protocol (see brick/sunrpc's
// "Hostile peers") is dropped the same way, and the "brick disconnected"
// line names its address and what it did; the handshake is bounded by the
// dial timeout, and Close ends a reconnect under way at once.
//
// # Errors
//
// A failed fop is an *OpError{Brick, Fop, GFID, Errno, Err}: Errno is the
// brick's op_errno when Err is nil; a lost connection, a timeout or a
// cancelled call are ENOTCONN, ETIMEDOUT and EINTR with Err set. Only
// op_ret says whether a fop failed; op_errno is often non-zero on success.
//
// # Concurrency
//
// A Client is safe for concurrent use. Cancelling a call's context stops
// the wait, not the fop: the request is already on the wire, and it is
// never resent. Calls from the server to the client (callbacks) run on a
// goroutine of their own. Close stops the reader, the pinger and the
// reconnector and waits for them.
package brick
