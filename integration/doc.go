// Package integration runs brickfs against real GlusterFS 10.3: one glusterd
// per "node" on loopback addresses 127.a.b.1..N, bricks served by real
// glusterfsd, mounts through the built binaries and mount(8).
//
// The helpers live in non-test files so that other test packages and the demo
// (integration/cmd/democluster) can reuse them. They take a [T], which
// *testing.T satisfies.
//
// # Cluster layout
//
// NewCluster picks a fresh prefix 127.a.b (random a, b; nothing may have a
// socket on it; claimed with a lock directory so two runs never share one)
// and a fresh run directory. Node N lives under DIR/nN:
//
//	DIR/nN/wd          glusterd working directory (management.working-directory)
//	DIR/nN/run         run directory: brick and shd pid files
//	DIR/nN/logs        glusterd.log, cli.log, bricks/*.log, glustershd.log
//	DIR/nN/gd.sock     the CLI socket: gluster --glusterd-sock=DIR/nN/gd.sock
//	DIR/nN/bricks/VOL-bI  brick directories
//	DIR/mnt/...        mount points; DIR/logs/... client logs
//	DIR/var-lib-glusterd  with ClusterOptions.ManagementTLS: /var/lib/glusterd
//	                   as the glusterds see it, with secure-access
//
// glusterd is started as tests/cluster.rc in the GlusterFS source does it,
// plus -N (no daemon) so that the harness owns the process:
//
//	glusterd -N --xlator-option management.working-directory=DIR/nN/wd
//	  --xlator-option management.transport.socket.bind-address=127.a.b.N
//	  --xlator-option management.run-directory=DIR/nN/run
//	  --xlator-option management.glusterd-sockfile=DIR/nN/gd.sock
//	  --xlator-option management.logging-directory=DIR/nN/logs
//	  --xlator-option management.base-port=P --xlator-option management.max-port=P+999
//	  --log-file=DIR/nN/logs/glusterd.log --pid-file=DIR/nN/glusterd.pid
//
// # Ports
//
// Three glusterds on one machine each allocate brick ports from the same
// range (49152 up). Two things keep them apart:
//
//   - glusterd passes its own transport.socket.bind-address to every brick
//     it spawns (glusterd_volume_start_glusterfs in glusterd-utils.c), so a
//     brick of node N listens on 127.a.b.N:port only, never on 0.0.0.0.
//     Two nodes that picked the same port number therefore do not collide.
//   - each node also gets a disjoint range with management.base-port and
//     management.max-port (node N: 49152+1000*(N-1) .. +999), and
//     pmap_port_isfree (glusterd-pmap.c) binds 0.0.0.0:port to test a
//     candidate, so a port in use on any address, also by another run, is
//     skipped.
//
// A glusterd already listening on *:24007 (the distribution's service) would
// make every bind to 127.a.b.N:24007 fail; NewCluster checks for it and says
// so.
//
// # Processes
//
// Every process the harness starts or finds (glusterd, bricks, self-heal
// daemons, FUSE clients) is recorded by pid; before a signal is sent the
// pid's command line must still contain the run directory, so a reused pid
// is never hit. Teardown (t.Cleanup, also after a failure): unmount, remove
// the iptables chain, SIGCONT stopped bricks, stop volumes, stop glusterds,
// SIGKILL what is left of the recorded processes, print the tail of every
// log file if the test failed, remove the run directory.
//
// # Faults
//
// KillBrick (SIGKILL: a crash), StopBrick/ContBrick (SIGSTOP/SIGCONT: a hung
// brick), DropHost/UndropHost (iptables DROP of every packet to or from
// 127.a.b.N in a chain of its own: a silent host; traffic of the node to
// itself is dropped too), RestartBrick (kill, then gluster volume start VOL
// force), StopGlusterd/StartGlusterd/RestartGlusterd.
//
// # Skips
//
// A test that cannot run (not root, no /dev/fuse, GlusterFS missing, binary
// not built) is skipped with the reason; with REQUIRE_FUSE=1 or
// REQUIRE_GLUSTER=1 in the environment the same condition fails the test.
//
// # Environment
//
//	BRICKFS_BIN          brickfs binary (default: bin/brickfs at the module root)
//	MOUNT_BRICKFS_BIN    mount.brickfs binary (default: bin/mount.brickfs)
//	BRICKFS_KEEP_RUN_DIR=1  keep the run directory of a failed test
//	BRICKFS_LOG_LINES    lines of each log printed on failure (default 100)
package integration
