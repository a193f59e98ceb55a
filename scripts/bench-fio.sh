#!/usr/bin/env bash
# bench-fio.sh: fio side by side through brickfs, the native client (default
# and strict-O_DIRECT), libgfapi (fio's gfapi_async) and a local directory on
# the bricks' disk, on single, replica 3, sharded replica 3 and 2x3 volumes of
# a local 3-node cluster; one markdown table per volume. The same as
# `sudo make bench-fio`; the program is integration/cmd/bench (its doc
# comment says what is measured and how).
#
#   sudo bash scripts/bench-fio.sh                                  (all of it: about 2 h 30 min on 2 CPUs)
#   sudo VOLUMES=rep3 REPEATS=1 RUNTIME=5 bash scripts/bench-fio.sh   (a short run)
#
# Environment (or the program's flags, e.g. -volumes rep3; -h lists them):
#   VOLUMES="single rep3 rep3shard dist"   CLIENTS="brickfs native native-strict gfapi local"
#   JOBS="randread4k-qd1 randread4k-qd16 randwrite4k-qd1 randwrite4k-qd16 randrw64k-qd8
#         seqread1m-qd4 seqwrite1m-qd4 multi4"   (default all)
#   REPEATS=3  RUNTIME=15 (seconds per fio run)  SIZE=1G  MULTI_SIZE=256M
#   OUT=FILE   where the tables go (default /tmp/brickfs-bench-DATE.md; printed too)
#
# Needs root, GlusterFS 10.3, fio with the gfapi engines, mkfs.xfs and fuse3
# (bash scripts/deps.sh). Everything it starts is torn down at the end, also
# on failure or ^C.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
make --no-print-directory build >&2
go build -o bin/brickfs-bench ./integration/cmd/bench
exec bin/brickfs-bench "$@"
