#!/usr/bin/env bash
# clone-bench.sh: clones side by side on one machine: brickfs clone and
# qemu-img convert -C through brickfs, cp and qemu-img convert through the
# native client, of a dense and a fragmented image on XFS reflink bricks;
# then what a clone on bricks without reflink costs another VM, per
# copy-offload policy. Prints markdown tables.
#
#   sudo bash scripts/clone-bench.sh [-size 4G] [-policy-size 1G] [-parts reflink,policy] [-o FILE]
#
# Flags go to integration/cmd/clonebench (run it with -h). -size 10G needs
# about 65 GB free under /tmp (the XFS images are sparse and trimmed after
# each copy; the source and one full copy at a time). Needs root, GlusterFS
# 10.3, fio, qemu-img and xfsprogs (bash scripts/deps.sh). Everything it
# starts and mounts is torn
# down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
if [ "$(id -u)" -ne 0 ]; then
	echo "clone-bench: needs root (glusterd, loop devices, mounts); run: sudo bash scripts/clone-bench.sh" >&2
	exit 1
fi
for p in fio glusterd mount.glusterfs qemu-img mkfs.xfs filefrag; do
	command -v "$p" >/dev/null || { echo "clone-bench: $p not found; run bash scripts/deps.sh" >&2; exit 1; }
done
make build >&2
exec go run ./integration/cmd/clonebench "$@"
