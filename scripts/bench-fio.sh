#!/usr/bin/env bash
# bench-fio.sh: the same fio jobs against the same file of the same volume,
# side by side in one run, through
#
#   brickfs         bin/brickfs mount (FUSE), fio --ioengine=libaio
#   native          mount -t glusterfs (FUSE), fio --ioengine=libaio
#   native-strict   mount -t glusterfs -o xlator-option=VOL-write-behind.strict-O_DIRECT=on:
#                   the native client with O_DIRECT writes acknowledged only
#                   once the bricks have them (the honest O_DIRECT comparison)
#   gfapi           fio --ioengine=gfapi_async: libgfapi in fio's process, no
#                   FUSE, no kernel (the same client graph as native, so the
#                   same write-behind)
#
# for a single-brick volume and a replica-3 volume of a local 3-node GlusterFS
# cluster on loopback (integration/cmd/democluster, the harness the
# integration tests use). Prints markdown tables: the median of the repeats,
# ratios, per-run values, latency, CPU, and whether the bricks opened the
# file with O_DIRECT.
#
#   sudo bash scripts/bench-fio.sh                  (about 17 minutes on 2 CPUs)
#   sudo RUNTIME=15 RAMP=5 REPEATS=3 bash scripts/bench-fio.sh
#
# Environment:
#   SIZE=1G          the file each job works on (one per volume, written once)
#   RUNTIME=8 RAMP=3 seconds per fio run, measured and warm-up
#   REPEATS=2        runs of each (job, client); the tables show the median
#   VOLUMES="single rep3"    CLIENTS="brickfs native native-strict gfapi"
#                    (rep3shard: rep3 again with features.shard on, SHARD_BLOCK
#                    blocks, default 4MB; e.g. VOLUMES="rep3 rep3shard"
#                    CLIENTS=brickfs for the cost of the shard layer)
#   JOBS="randread4k randwrite4k seqread1m seqwrite1m"
#   BRICKFS_BIN=...  the brickfs binary (default: built from this tree)
#   OUT=DIR          where results and logs are kept (default /tmp/brickfs-bench-DATE)
#
# Runs are interleaved: for each repeat, for each job, every client in turn
# (the order reversed on even repeats), so that drift of the machine (other
# load, page cache, brick state) hits all clients alike. The numbers are for
# comparing clients on this machine in this run, not absolute: client, bricks
# and fio share the same CPUs, and the bricks' disk is the machine's disk.
#
# Needs root, GlusterFS 10.3 (glusterd, mount.glusterfs), fio with the gfapi
# engines, jq and fuse3 (bash scripts/deps.sh). Everything it starts is torn
# down at the end (trap): mounts, then the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-8}
RAMP=${RAMP:-3}
REPEATS=${REPEATS:-2}
VOLUMES=${VOLUMES:-single rep3}
CLIENTS=${CLIENTS:-brickfs native native-strict gfapi}
JOBS=${JOBS:-randread4k randwrite4k seqread1m seqwrite1m}
OUT=${OUT:-/tmp/brickfs-bench-$(date +%Y%m%d-%H%M%S)}
SHARD_BLOCK=${SHARD_BLOCK:-4MB}
FILE=fio-bench.img

log() { printf '%s bench: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (FUSE mounts, glusterd); run: sudo bash scripts/bench-fio.sh"
for p in fio jq glusterd mount.glusterfs go; do
	command -v "$p" >/dev/null || die "$p not found; run bash scripts/deps.sh"
done
fio --enghelp 2>/dev/null | grep -qw gfapi_async || die "fio has no gfapi_async engine (fio built without libgfapi)"

mkdir -p "$OUT/fio" "$OUT/logs"
RESULTS=$OUT/results.tsv
: >"$RESULTS"
WORK=$(mktemp -d /tmp/brickfs-bench-work-XXXXXX)

log "building brickfs and democluster into $WORK"
if [ -z "${BRICKFS_BIN:-}" ]; then
	go build -o "$WORK/brickfs" ./cmd/brickfs
	BRICKFS_BIN=$WORK/brickfs
fi
go build -o "$WORK/democluster" ./integration/cmd/democluster
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then REV="$REV+dirty"; fi

DC_PID=
FIO_PID=
MOUNTS=() # "kind mnt"

cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [ -n "$FIO_PID" ] && kill -0 "$FIO_PID" 2>/dev/null; then
		kill -TERM "$FIO_PID"
		wait "$FIO_PID" 2>/dev/null
	fi
	local m kind mnt
	for m in "${MOUNTS[@]}"; do
		kind=${m%% *} mnt=${m#* }
		grep -qs " $mnt " /proc/mounts || continue
		if [ "$kind" = brickfs ]; then "$BRICKFS_BIN" unmount "$mnt"; else umount "$mnt"; fi
		grep -qs " $mnt " /proc/mounts && { log "unmount $mnt failed; lazy unmount"; umount -l "$mnt"; }
	done
	if [ -n "$DC_PID" ] && kill -0 "$DC_PID" 2>/dev/null; then
		kill -TERM "$DC_PID"
		wait "$DC_PID"
		log "cluster stopped (democluster exit $?)"
	fi
	rm -rf "$WORK"
	[ $rc -ne 0 ] && log "FAILED (exit $rc); logs in $OUT/logs"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- cluster -------------------------------------------------------------

log "starting a 3-node cluster (volumes single, rep3)"
"$WORK/democluster" -nodes 3 -replica=true -sharded "$(case " $VOLUMES " in *" rep3shard "*) echo "$SHARD_BLOCK" ;; esac)" -env "$WORK/cluster.env" >"$OUT/logs/democluster.log" 2>&1 &
DC_PID=$!
for _ in $(seq 1 300); do
	[ -f "$WORK/cluster.env" ] && break
	kill -0 "$DC_PID" 2>/dev/null || { cat "$OUT/logs/democluster.log" >&2; die "democluster exited"; }
	sleep 0.5
done
[ -f "$WORK/cluster.env" ] || die "cluster not up after 150s"
# shellcheck disable=SC1091
source "$WORK/cluster.env"
GLUSTER=($BRICKFS_DEMO_GLUSTER)
HOST1=$BRICKFS_DEMO_PREFIX.1
declare -A SPEC=([single]=$BRICKFS_DEMO_SINGLE_SPEC [rep3]=$BRICKFS_DEMO_REPLICA_SPEC [rep3shard]=$BRICKFS_DEMO_SHARD_SPEC)
"${GLUSTER[@]}" volume info >"$OUT/logs/volume-info.txt"

# ---- helpers -------------------------------------------------------------

# pids_with ARG...: pids whose command line contains every ARG.
pids_with() {
	local p cl a ok
	for p in /proc/[0-9]*; do
		cl=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		ok=1
		for a in "$@"; do [[ $cl == *"$a"* ]] || { ok=0; break; }; done
		[ $ok = 1 ] && echo "${p#/proc/}"
	done
	return 0
}

# cpu_ticks PID...: utime+stime of the processes, in clock ticks.
cpu_ticks() {
	local p s=0 f
	for p in "$@"; do
		# Fields after "(comm)": state is 0, utime 11, stime 12.
		read -ra f < <(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
		s=$((s + ${f[11]:-0} + ${f[12]:-0}))
	done
	echo $s
}

# brick_fd_flags VOL: for every open fd of a brick of VOL on FILE, "direct"
# or "buffered" (O_DIRECT in /proc/PID/fdinfo), space-separated. Bricks open
# files by their GFID handle (.glusterfs/xx/yy/GFID), so match that too.
brick_fd_flags() {
	local p fd fl l out=
	for p in ${BRICKPIDS[$1]}; do
		for fd in /proc/$p/fd/*; do
			l=$(readlink "$fd" 2>/dev/null) || continue
			[[ $l == */$FILE || (-n ${GFID[$1]:-} && $l == */${GFID[$1]}) ]] || continue
			fl=$(awk '/^flags:/ {print $2}' "/proc/$p/fdinfo/${fd##*/}" 2>/dev/null) || continue
			[ -n "$fl" ] || continue
			if (((8#$fl & 8#40000) != 0)); then out+="direct "; else out+="buffered "; fi
		done
	done
	echo "${out% }"
}

declare -A MNT=() DAEMON=() BRICKPIDS=() GFID=()

# mount_client VOL CLIENT
mount_client() {
	local vol=$1 client=$2 mnt=$BRICKFS_DEMO_DIR/mnt/bench-$1-$2 lg=$OUT/logs/$2-$1.log
	mkdir -p "$mnt"
	case $client in
	brickfs)
		MOUNTS+=("brickfs $mnt")
		"$BRICKFS_BIN" mount -o "log-file=$lg" "${SPEC[$vol]}" "$mnt"
		;;
	native)
		MOUNTS+=("native $mnt")
		mount -t glusterfs -o "log-file=$lg" "${SPEC[$vol]}" "$mnt"
		;;
	native-strict)
		MOUNTS+=("native $mnt")
		mount -t glusterfs -o "log-file=$lg,xlator-option=$vol-write-behind.strict-O_DIRECT=on" "${SPEC[$vol]}" "$mnt"
		;;
	esac
	grep -qs " $mnt " /proc/mounts || die "mount $client $vol: $mnt is not mounted"
	MNT[$vol/$client]=$mnt
	DAEMON[$vol/$client]=$(pids_with "$mnt" | head -1)
	log "mounted $vol with $client on $mnt (daemon pid ${DAEMON[$vol/$client]:-?})"
}

# run_fio VOL CLIENT JOB REP: one fio run; appends a line to $RESULTS.
run_fio() {
	local vol=$1 client=$2 job=$3 rep=$4
	local rw bs qd args=()
	case $job in
	randread4k) rw=randread bs=4k qd=16 ;;
	randwrite4k) rw=randwrite bs=4k qd=16 ;;
	seqread1m) rw=read bs=1M qd=4 ;;
	seqwrite1m) rw=write bs=1M qd=4 ;;
	*) die "unknown job $job" ;;
	esac
	args=(--name="$job" --rw=$rw --bs=$bs --iodepth=$qd --direct=1 --size="$SIZE"
		--time_based --runtime="$RUNTIME" --ramp_time="$RAMP" --norandommap --randrepeat=0
		--numjobs=1 --output-format=json)
	if [ "$client" = gfapi ]; then
		args+=(--ioengine=gfapi_async --volume="$vol" --brick="$HOST1" --filename="$FILE")
	else
		args+=(--ioengine=libaio --filename="${MNT[$vol/$client]}/$FILE")
	fi
	local out=$OUT/fio/$vol-$job-$client-$rep
	local daemon=${DAEMON[$vol/$client]:-} bricks=${BRICKPIDS[$vol]}
	local c0 b0 t0 c1 b1 t1 flags
	c0=$(cpu_ticks $daemon) b0=$(cpu_ticks $bricks) t0=$(date +%s%N)
	timeout -k 10 $((RUNTIME + RAMP + 120)) fio "${args[@]}" --output="$out.json" >"$out.stderr" 2>&1 &
	FIO_PID=$!
	# Sample the bricks' fds every second while fio runs (gfapi's
	# glfs_init alone can take seconds); the sampler ends with fio.
	(while kill -0 "$FIO_PID" 2>/dev/null; do brick_fd_flags "$vol"; sleep 1; done) >"$out.fds" 2>/dev/null &
	local sampler=$! rc=0
	wait "$FIO_PID" || rc=$?
	FIO_PID=
	wait "$sampler" 2>/dev/null || true
	flags=$(tr ' ' '\n' <"$out.fds" | sed '/^$/d' | sort | uniq -c | awk '{ printf "%s%s x%d", sep, $2, $1; sep = ", " }')
	c1=$(cpu_ticks $daemon) b1=$(cpu_ticks $bricks) t1=$(date +%s%N)
	local hz wall ccpu bcpu
	hz=$(getconf CLK_TCK)
	wall=$(((t1 - t0) / 1000000)) # ms
	bcpu=$(((b1 - b0) * 100000 / hz / wall))
	if [ -n "$daemon" ]; then ccpu=$(((c1 - c0) * 100000 / hz / wall)); else ccpu=NA; fi
	local line load
	load=$(cut -d' ' -f1 /proc/loadavg)
	if [ $rc -ne 0 ] || ! line=$(jq -r --arg d "${rw#rand}" '
		.jobs[0] as $j | (if ($d == "read") then $j.read else $j.write end) as $x |
		[$j.error, $x.iops, $x.bw, $x.clat_ns.mean / 1000,
		 ($x.clat_ns.percentile["99.000000"] // 0) / 1000,
		 ($j.usr_cpu + $j.sys_cpu)] | @tsv' "$out.json" 2>/dev/null) || [ "${line%%$'\t'*}" != 0 ]; then
		log "FAIL $vol $job $client rep $rep (fio exit $rc): $(tail -n 3 "$out.stderr" | tr '\n' ' ')"
		printf '%s\t%s\t%s\t%s\tFAIL\tNA\tNA\tNA\tNA\tNA\tNA\t%s\t%s\n' "$vol" "$job" "$client" "$rep" "${flags:--}" "$load" >>"$RESULTS"
		return 0
	fi
	local err iops bw lat p99 fiocpu
	IFS=$'\t' read -r err iops bw lat p99 fiocpu <<<"$line"
	# For gfapi the client is fio itself.
	[ "$client" = gfapi ] && ccpu=$(printf '%.0f' "$fiocpu")
	printf '%s\t%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$vol" "$job" "$client" "$rep" \
		"$iops" "$bw" "$lat" "$p99" "$ccpu" "$bcpu" "${flags:--}" "$load" >>"$RESULTS"
	log "$vol $job $client rep $rep: $(printf '%.0f' "$iops") IOPS, $((${bw%.*} / 1024)) MiB/s, clat mean $(printf '%.0f' "$lat") us p99 $(printf '%.0f' "$p99") us, client CPU ${ccpu}%, bricks CPU ${bcpu}%, brick fds: ${flags:--}"
}

# ---- the runs ------------------------------------------------------------

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
for vol in $VOLUMES; do
	[ -n "${SPEC[$vol]:-}" ] || die "unknown volume $vol"
	BRICKPIDS[$vol]=$(pids_with glusterfsd "$BRICKFS_DEMO_DIR/" "/bricks/$vol-b" | tr '\n' ' ')
	log "$vol: brick pids ${BRICKPIDS[$vol]}"
	for client in $CLIENTS; do
		[ "$client" = gfapi ] || mount_client "$vol" "$client"
	done
	# Write the file once, through the first mounted client, so that every
	# client reads the same allocated data.
	first=
	for client in $CLIENTS; do [ "$client" != gfapi ] && { first=$client; break; }; done
	if [ -n "$first" ]; then
		log "$vol: writing $SIZE $FILE through $first"
		fio --name=prefill --rw=write --bs=1M --iodepth=4 --ioengine=libaio --direct=1 --size="$SIZE" \
			--filename="${MNT[$vol/$first]}/$FILE" --output="$OUT/fio/$vol-prefill.txt" >/dev/null
	else
		fio --name=prefill --rw=write --bs=1M --iodepth=4 --ioengine=gfapi_async --volume="$vol" \
			--brick="$HOST1" --direct=1 --size="$SIZE" --filename="$FILE" --output="$OUT/fio/$vol-prefill.txt" >/dev/null
	fi
	for b in "$BRICKFS_DEMO_DIR"/n*/bricks/"$vol"-b0/"$FILE"; do
		GFID[$vol]=$(getfattr -n trusted.gfid -e hex "$b" 2>/dev/null | awk -F= '/^trusted.gfid=/ { print $2 }' |
			sed -E 's/^0x//; s/^(.{8})(.{4})(.{4})(.{4})(.{12})$/\1-\2-\3-\4-\5/')
	done
	log "$vol: $FILE has GFID ${GFID[$vol]:-unknown}"
done
# Interleaved across volumes too: each (job, volume, client) in turn.
for rep in $(seq 1 "$REPEATS"); do
	order=$CLIENTS
	vorder=$VOLUMES
	if [ $((rep % 2)) = 0 ]; then
		order=$(echo "$CLIENTS" | tr ' ' '\n' | tac | tr '\n' ' ')
		vorder=$(echo "$VOLUMES" | tr ' ' '\n' | tac | tr '\n' ' ')
	fi
	for job in $JOBS; do
		for vol in $vorder; do
			for client in $order; do
				run_fio "$vol" "$client" "$job" "$rep"
			done
		done
	done
done
ELAPSED=$(($(date +%s) - START))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- report --------------------------------------------------------------

# median COLUMN VOL JOB CLIENT: the median of a results.tsv column over the
# successful repeats; "FAIL" if none succeeded.
median() {
	awk -F'\t' -v c="$1" -v v="$2" -v j="$3" -v k="$4" '
		$1 == v && $2 == j && $3 == k && $5 == "ok" { print $c }' "$RESULTS" | sort -g |
		awk '{ a[NR] = $1 } END {
			if (NR == 0) print "FAIL"
			else if (NR % 2) print a[(NR + 1) / 2]
			else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
failures() {
	awk -F'\t' -v v="$1" -v j="$2" -v k="$3" '$1 == v && $2 == j && $3 == k && $5 != "ok" { f++ } END { print f + 0 }' "$RESULTS"
}
# fmt JOB VALUE: IOPS for 4k jobs (column 6), MiB/s for 1M jobs (column 7, KiB/s).
metric_col() { case $1 in *4k) echo 6 ;; *) echo 7 ;; esac; }
fmtv() {
	local job=$1 v=$2
	[ "$v" = FAIL ] && { echo "**FAIL**"; return; }
	case $job in
	*4k) awk -v v="$v" 'BEGIN { printf "%.0f IOPS", v }' ;;
	*) awk -v v="$v" 'BEGIN { printf "%.0f MiB/s", v / 1024 }' ;;
	esac
}
ratio() {
	[ "$1" = FAIL ] || [ "$2" = FAIL ] || [ -z "$1" ] || [ -z "$2" ] && { echo "-"; return; }
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}
has() { [[ " $CLIENTS " == *" $1 "* ]]; }
jobdesc() {
	case $1 in
	randread4k) echo "4k randread QD16" ;;
	randwrite4k) echo "4k randwrite QD16" ;;
	seqread1m) echo "1M seq read QD4" ;;
	seqwrite1m) echo "1M seq write QD4" ;;
	esac
}

report() {
	echo "# brickfs vs the native GlusterFS client vs gfapi: fio, O_DIRECT"
	echo
	echo "Command: \`sudo SIZE=$SIZE RUNTIME=$RUNTIME RAMP=$RAMP REPEATS=$REPEATS bash scripts/bench-fio.sh\`"
	echo
	echo "- machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
	echo "- brick filesystem: $(df -T "$BRICKFS_DEMO_DIR" | awk 'NR == 2 { print $2 " on " $1 }'); bricks, clients and fio share the machine"
	echo "- $(glusterfs --version | head -1), $(fio --version), brickfs $REV, Go $(go env GOVERSION)"
	echo "- cluster: 3 glusterd nodes on $BRICKFS_DEMO_PREFIX.1-3 (loopback); volumes: single (1 brick), rep3 (replica 3; network.ping-timeout 5), rep3shard (rep3 with features.shard on, $SHARD_BLOCK blocks), all other options default"
	echo "- each run: one ${SIZE} file ($FILE, written once, shared by all clients), direct=1, ${RAMP}s ramp + ${RUNTIME}s measured; libaio for the mounts, gfapi_async (honours iodepth; plain gfapi is synchronous, QD1) for gfapi"
	echo "- $REPEATS repeats, interleaved (per repeat and job: every client in turn, order reversed on even repeats); the tables show the median"
	echo "- load average before: $LOAD0, after: $LOAD1; benchmark took ${ELAPSED}s"
	echo
	local vol job c v
	for vol in $VOLUMES; do
		echo "## $vol ($(case $vol in single) echo "1 brick" ;; rep3shard) echo "replica 3, sharded, $SHARD_BLOCK blocks" ;; *) echo "replica 3" ;; esac))"
		echo
		printf '| job |'
		for c in $CLIENTS; do printf ' %s |' "$c"; done
		has brickfs && has native && printf ' brickfs/native |'
		has brickfs && has native-strict && printf ' brickfs/native-strict |'
		has brickfs && has gfapi && printf ' brickfs/gfapi |'
		echo
		printf '|---|'
		for c in $CLIENTS; do printf -- '---:|'; done
		has brickfs && has native && printf -- '---:|'
		has brickfs && has native-strict && printf -- '---:|'
		has brickfs && has gfapi && printf -- '---:|'
		echo
		for job in $JOBS; do
			declare -A med=()
			printf '| %s |' "$(jobdesc "$job")"
			for c in $CLIENTS; do
				med[$c]=$(median "$(metric_col "$job")" "$vol" "$job" "$c")
				v=$(fmtv "$job" "${med[$c]}")
				[ "$(failures "$vol" "$job" "$c")" != 0 ] && [ "${med[$c]}" != FAIL ] && v="$v ($(failures "$vol" "$job" "$c") failed)"
				printf ' %s |' "$v"
			done
			has brickfs && has native && printf ' %s |' "$(ratio "${med[brickfs]}" "${med[native]}")"
			has brickfs && has native-strict && printf ' %s |' "$(ratio "${med[brickfs]}" "${med[native-strict]}")"
			has brickfs && has gfapi && printf ' %s |' "$(ratio "${med[brickfs]}" "${med[gfapi]}")"
			echo
			unset med
		done
		echo
		echo "Completion latency, median of runs: mean / p99 (µs)"
		echo
		printf '| job |'
		for c in $CLIENTS; do printf ' %s |' "$c"; done
		echo
		printf '|---|'
		for c in $CLIENTS; do printf -- '---:|'; done
		echo
		for job in $JOBS; do
			printf '| %s |' "$(jobdesc "$job")"
			for c in $CLIENTS; do
				local m p
				m=$(median 8 "$vol" "$job" "$c") p=$(median 9 "$vol" "$job" "$c")
				if [ "$m" = FAIL ]; then printf ' - |'; else awk -v m="$m" -v p="$p" 'BEGIN { printf " %.0f / %.0f |", m, p }'; fi
			done
			echo
		done
		echo
		echo "CPU, median of runs, % of one CPU over the run: client (FUSE daemon; for gfapi: fio itself, which includes the application side) / all bricks of the volume"
		echo
		printf '| job |'
		for c in $CLIENTS; do printf ' %s |' "$c"; done
		echo
		printf '|---|'
		for c in $CLIENTS; do printf -- '---:|'; done
		echo
		for job in $JOBS; do
			printf '| %s |' "$(jobdesc "$job")"
			for c in $CLIENTS; do
				local cc bc
				cc=$(median 10 "$vol" "$job" "$c") bc=$(median 11 "$vol" "$job" "$c")
				if [ "$bc" = FAIL ]; then printf ' - |'; else awk -v a="$cc" -v b="$bc" 'BEGIN { printf " %.0f / %.0f |", a, b }'; fi
			done
			echo
		done
		echo
	done
	echo "## Every run"
	echo
	echo "Value (IOPS for 4k, MiB/s for 1M) per repeat, the 1-minute load average at the end of each run, and how the bricks had the file open mid-run (fdinfo flags: O_DIRECT or not)."
	echo
	echo "| volume | job | client | runs | load | brick fds |"
	echo "|---|---|---|---|---|---|"
	for vol in $VOLUMES; do
		for job in $JOBS; do
			for c in $CLIENTS; do
				local col runs fds loads
				col=$(metric_col "$job")
				runs=$(awk -F'\t' -v v="$vol" -v j="$job" -v k="$c" -v col="$col" '
					$1 == v && $2 == j && $3 == k {
						if ($5 != "ok") s = s sep "FAIL"
						else if (col == 6) s = s sep sprintf("%.0f", $col)
						else s = s sep sprintf("%.0f", $col / 1024)
						sep = ", " }
					END { print s }' "$RESULTS")
				fds=$(awk -F'\t' -v v="$vol" -v j="$job" -v k="$c" '$1 == v && $2 == j && $3 == k { print $12 }' "$RESULTS" | sort -u | paste -sd';')
				loads=$(awk -F'\t' -v v="$vol" -v j="$job" -v k="$c" '$1 == v && $2 == j && $3 == k { print $13 }' "$RESULTS" | paste -sd, | sed 's/,/, /g')
				echo "| $vol | $(jobdesc "$job") | $c | $runs | $loads | $fds |"
			done
		done
	done
	echo
	echo "## Notes"
	echo
	echo "- **native write-behind.** The native client (and gfapi, which loads the same client graph) acknowledges a write, O_DIRECT or not, as soon as write-behind has queued it, before any brick has it, unless performance.strict-o-direct is on (or write-behind off). Its write numbers measure that queue, not the bricks. native-strict mounts the same volume with \`xlator-option=VOL-write-behind.strict-O_DIRECT=on\` (the per-mount form of \`gluster volume set VOL performance.strict-o-direct on\`), so O_DIRECT writes are acknowledged only after the bricks answered: the comparison brickfs should be judged by for VM disks."
	echo "- Client CPU for gfapi is fio's own (application and libgfapi in one process) and is not comparable with the FUSE daemons' figures."
	echo "- Raw fio JSON, fio stderr and client logs: $OUT."
}

report | tee "$OUT/report.md"
log "report in $OUT/report.md"
