#!/usr/bin/env bash
# stall-table.sh: the longest single I/O stall, brickfs vs the native
# GlusterFS client, when a brick of a replica-3 volume is killed, hung
# (SIGSTOP), cut off (iptables DROP) or its filesystem frozen (fsfreeze).
# Prints a markdown table.
#
#   sudo bash scripts/stall-table.sh [-hold 90s] [-scenarios kill,stop,drop,freeze] [-o FILE]
#
# Flags go to integration/cmd/stalltable (run it with -h for all of them).
# Takes about 8 minutes with -hold 90s: the native client needs up to 84 s
# to notice a hung brick. Needs root, GlusterFS 10.3, fio, iptables and xfsprogs
# (bash scripts/deps.sh). Everything it starts is torn down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
if [ "$(id -u)" -ne 0 ]; then
	echo "stall-table: needs root (glusterd, mounts, iptables); run: sudo bash scripts/stall-table.sh" >&2
	exit 1
fi
for p in fio glusterd mount.glusterfs iptables fsfreeze mkfs.xfs; do
	command -v "$p" >/dev/null || { echo "stall-table: $p not found; run bash scripts/deps.sh" >&2; exit 1; }
done
make build >&2
exec go run ./integration/cmd/stalltable "$@"
