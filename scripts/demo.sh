#!/usr/bin/env bash
# demo.sh: brickfs on a fresh Debian machine, end to end.
#
#   sudo bash scripts/demo.sh          (or: sudo make demo)
#
# 1. installs what is missing (scripts/deps.sh) and builds (make build);
# 2. starts a local 3-node GlusterFS cluster on 127.a.b.1-3 with a
#    single-brick volume and a replica-3 volume (integration/cmd/democluster,
#    the same harness the integration tests use);
# 3. mounts the single-brick volume, writes and reads a file, shows df/stat;
# 4. failover (replicated volume only): mounts it with
#    backup-volfile-servers, kills one brick, keeps reading and writing,
#    restarts the brick and shows heal info;
# 5. always tears down (trap): unmounts, stops the cluster.
#
# Steps 3-4 need bin/brickfs. Until cmd/brickfs builds, or with
# DEMO_CLIENT=native, they use GlusterFS's own client (mount -t glusterfs)
# instead, so the rest of the demo keeps working.
#
# Environment: DEMO_CLIENT=brickfs|native (default: brickfs if built),
# DEMO_REPLICA=0 to skip the replicated volume and the failover part,

set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

step() { printf '\n=== %s\n' "$*"; }
run() { printf '+ %s\n' "$*"; "$@"; }

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (FUSE mounts, glusterd); run: sudo bash scripts/demo.sh" >&2; exit 1; }

step "dependencies"
bash scripts/deps.sh

step "build"
make build
go build -o bin/democluster ./integration/cmd/democluster

CLIENT=${DEMO_CLIENT:-}
if [ -z "$CLIENT" ]; then
	if [ -x bin/brickfs ]; then CLIENT=brickfs; else CLIENT=native; fi
fi
if [ "$CLIENT" = native ]; then
	echo "demo: NOTE: using GlusterFS's own client (mount -t glusterfs), not brickfs (bin/brickfs not built or DEMO_CLIENT=native)"
fi

WORK=$(mktemp -d /tmp/brickfs-demo-XXXXXX)
DC_PID=
MOUNTS=()

cleanup() {
	local rc=$?
	set +e
	step "teardown"
	for m in "${MOUNTS[@]}"; do
		local fstype
		fstype=$(awk -v m="$m" '$2 == m { print $3 }' /proc/mounts)
		[ -n "$fstype" ] || continue
		if [ "$fstype" = fuse.brickfs ]; then run "$ROOT/bin/brickfs" unmount "$m"; else run umount "$m"; fi
		grep -qs " $m " /proc/mounts && run umount -l "$m"
	done
	if [ -n "$DC_PID" ] && kill -0 "$DC_PID" 2>/dev/null; then
		kill -TERM "$DC_PID"
		wait "$DC_PID"
		echo "demo: cluster stopped (democluster exit $?)"
	fi
	if [ $rc -ne 0 ]; then
		echo "demo: FAILED (exit $rc); logs:"
		tail -n 40 "$WORK/democluster.log" 2>/dev/null
		for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
	fi
	rm -rf "$WORK"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "local 3-node cluster"
replica=true
[ "${DEMO_REPLICA:-1}" = 0 ] && replica=false
bin/democluster -nodes 3 -replica=$replica -env "$WORK/cluster.env" >"$WORK/democluster.log" 2>&1 &
DC_PID=$!
for _ in $(seq 1 300); do
	[ -f "$WORK/cluster.env" ] && break
	kill -0 "$DC_PID" 2>/dev/null || { cat "$WORK/democluster.log"; echo "demo: democluster exited" >&2; exit 1; }
	sleep 0.5
done
[ -f "$WORK/cluster.env" ] || { echo "demo: cluster not up after 150s" >&2; exit 1; }
cat "$WORK/democluster.log"
# shellcheck disable=SC1091
source "$WORK/cluster.env"
GLUSTER=($BRICKFS_DEMO_GLUSTER)
run "${GLUSTER[@]}" volume info

# do_mount CLIENT SPEC MNT LOG [OPTS]: mount with brickfs or the native client.
do_mount() {
	local client=$1 spec=$2 mnt=$3 log=$4 opts=${5:-}
	mkdir -p "$mnt"
	MOUNTS+=("$mnt")
	if [ "$client" = brickfs ]; then
		# --- needs the brickfs binary ---
		run "$ROOT/bin/brickfs" mount -o "log-file=$log,log-level=debug${opts:+,$opts}" "$spec" "$mnt"
	else
		run mount -t glusterfs -o "log-file=$log${opts:+,$opts}" "$spec" "$mnt"
	fi
}

step "mount the single-brick volume ($CLIENT)"
M1="$WORK/single"
do_mount "$CLIENT" "$BRICKFS_DEMO_SINGLE_SPEC" "$M1" "$WORK/single-client.log"
run grep " $M1 " /proc/mounts
echo "hello from brickfs" >"$M1/hello.txt"
run cat "$M1/hello.txt"
run dd if=/dev/urandom of="$M1/blob" bs=1M count=8 status=none
run sha256sum "$M1/blob"
run df -h "$M1"
run stat "$M1/hello.txt"
run ls -la "$M1"

# write_loop FILE SECONDS: 4 KiB O_DIRECT+O_DSYNC writes back to back for
# SECONDS; prints how many were written, how many failed, and the longest
# single write in milliseconds: what a VM would feel as a pause.
write_loop() {
	local f=$1 secs=$2 n=0 errs=0 max=0 t0 t1 ms end
	end=$(($(date +%s) + secs))
	while [ "$(date +%s)" -lt "$end" ]; do
		t0=$(date +%s%N)
		if ! dd if=/dev/urandom of="$f" bs=4k count=1 seek=$((n % 256)) conv=notrunc oflag=direct,dsync status=none 2>>"$WORK/write-errors.log"; then
			errs=$((errs + 1))
		fi
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		[ "$ms" -gt "$max" ] && max=$ms
		n=$((n + 1))
	done
	echo "writes=$n errors=$errs longest_write_ms=$max"
}

if [ -n "${BRICKFS_DEMO_REPLICA_SPEC:-}" ]; then
	step "failover on the replica-3 volume ($CLIENT)"
	M3="$WORK/rep3"
	do_mount "$CLIENT" "$BRICKFS_DEMO_REPLICA_SPEC" "$M3" "$WORK/rep3-client.log" "backup-volfile-servers=$BRICKFS_DEMO_BACKUP"
	run dd if=/dev/urandom of="$M3/disk.img" bs=1M count=16 status=none

	echo "demo: writing while brick 1 hangs (SIGSTOP pid $BRICKFS_DEMO_REPLICA_BRICK1_PID for 6 s)"
	(sleep 2; kill -STOP "$BRICKFS_DEMO_REPLICA_BRICK1_PID"; sleep 6; kill -CONT "$BRICKFS_DEMO_REPLICA_BRICK1_PID") &
	fault=$!
	write_loop "$M3/disk.img" 12
	wait "$fault"
	echo "demo: the native client would pause 42-84 s here (its ping-timeout); brickfs drops a silent brick after 1.5 s"
	sleep 2
	[ "$CLIENT" = brickfs ] && grep -E "stopped answering|child (up|down)|healing file|file healed" "$WORK/rep3-client.log" | sed 's/^/  log: /'

	echo "demo: writing while brick 0 crashes (SIGKILL pid $BRICKFS_DEMO_REPLICA_BRICK0_PID)"
	(sleep 2; kill -KILL "$BRICKFS_DEMO_REPLICA_BRICK0_PID") &
	fault=$!
	write_loop "$M3/disk.img" 6
	wait "$fault"
	sum=$(sha256sum <"$M3/disk.img")
	echo "demo: restarting the brick (volume start force); brickfs reconnects and heals what it marked"
	run "${GLUSTER[@]}" volume start rep3 force
	sleep 5
	after=$(sha256sum <"$M3/disk.img")
	[ "$sum" = "$after" ] || { echo "demo: data changed across the brick restart" >&2; exit 1; }
	# `gluster volume heal rep3 info` runs glfsheal, which asks the system
	# glusterd's socket; this cluster's glusterd listens on its own.
	glfsheal=$(ls /usr/lib/*/glusterfs/glfsheal /usr/libexec/glusterfs/glfsheal 2>/dev/null | head -n1 || true)
	if [ -n "$glfsheal" ]; then
		echo "demo: heal info (what 'gluster volume heal rep3 info' runs), waiting for it to drain:"
		for _ in $(seq 30); do
			info=$("$glfsheal" rep3 glusterd-sock "$BRICKFS_DEMO_DIR/n1/gd.sock" || true)
			[ "$(grep -c '^Number of entries: 0$' <<<"$info")" = 3 ] && break
			sleep 1
		done
		sed 's/^/  /' <<<"$info"
		[ "$(grep -c '^Number of entries: 0$' <<<"$info")" = 3 ] || { echo "demo: heal info did not drain to zero in 30 s" >&2; exit 1; }
	fi
	echo "demo: checksums of disk.img on the three brick backends:"
	run sha256sum "$BRICKFS_DEMO_DIR"/n*/bricks/rep3-b*/disk.img
	run getfattr -d -m trusted.afr -e hex "$BRICKFS_DEMO_DIR"/n*/bricks/rep3-b*/disk.img
else
	echo "demo: no replicated volume (DEMO_REPLICA=0); failover part skipped"
fi

step "done"
