#!/usr/bin/env bash
# soak.sh: an hour of mixed fio with verification (4k random and 64k
# sequential writes read back behind, 4k random and 1M sequential reads of
# filled files) on a brickfs mount of a replica-3 volume, with a brick
# fault every period (SIGKILL, SIGSTOP, iptables DROP, fsfreeze in turn, on
# bricks 0, 1, 2 in turn). Prints a markdown table: per period the longest
# stall, errors, verify mismatches, heal time, and the mount's RSS,
# goroutines and fds; exits non-zero on any error, mismatch or unfinished
# heal.
#
#   sudo bash scripts/soak.sh [-duration 1h] [-period 3m] [-hold 20s] [-faults kill,stop,drop,freeze] [-size 128M] [-o FILE]
#   sudo bash scripts/soak.sh -duration 6m -period 90s -hold 10s -o /tmp/soak-smoke.md   (a smoke, about 9 minutes)
#
# Flags go to integration/cmd/soak (run it with -h for all of them). Takes
# -duration plus a heal and a statedump per period. Needs root, GlusterFS
# 10.3, fio, iptables, fsfreeze and mkfs.xfs (bash scripts/deps.sh).
# Everything it starts is torn down at the end, also on ^C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
if [ "$(id -u)" -ne 0 ]; then
	echo "soak: needs root (glusterd, mounts, iptables, fsfreeze); run: sudo bash scripts/soak.sh" >&2
	exit 1
fi
for p in fio glusterd iptables fsfreeze mkfs.xfs; do
	command -v "$p" >/dev/null || { echo "soak: $p not found; run bash scripts/deps.sh" >&2; exit 1; }
done
make build >&2
exec go run ./integration/cmd/soak "$@"
