#!/usr/bin/env bash
# deps.sh: install what brickfs's tests and demo need on a Debian machine,
# only what is missing, and check FUSE and Go. Safe to run again.
#
#   bash scripts/deps.sh
#
# Needs root when something has to be installed or the fuse module loaded.
set -euo pipefail

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: ERROR: %s\n' "$*" >&2; exit 1; }

# package -> a file or command that proves it is installed
declare -A probe=(
	[glusterfs-server]=glusterd
	[glusterfs-client]=mount.glusterfs
	[fuse3]=fusermount3
	[fio]=fio
	[attr]=getfattr
	[iptables]=iptables
	[tshark]=tshark
	[psmisc]=fuser
	[procps]=pgrep
	[qemu-utils]=qemu-img
	[qemu-system-x86]=qemu-system-x86_64
	[xfsprogs]=xfs_io
	[systemd]=systemd-escape
	[util-linux]=unshare
	[e2fsprogs]=filefrag
)
order=(glusterfs-server glusterfs-client fuse3 fio attr iptables tshark psmisc procps qemu-utils qemu-system-x86 xfsprogs systemd util-linux e2fsprogs)

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/sbin/$1" ] || [ -x "/usr/sbin/$1" ]; }

missing=()
for pkg in "${order[@]}"; do
	if have "${probe[$pkg]}"; then
		say "ok: $pkg (${probe[$pkg]} found)"
	else
		missing+=("$pkg")
	fi
done

if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root to install them"
	command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get; install them by hand"
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
	say "installed: ${missing[*]}"
	for pkg in "${missing[@]}"; do
		have "${probe[$pkg]}" || die "$pkg installed but ${probe[$pkg]} still not found"
	done
	# The package may have started the system glusterd on *:24007, which
	# would stop the test glusterds from binding 127.a.b.N:24007. We started
	# it by installing, so we stop it.
	if [[ " ${missing[*]} " == *" glusterfs-server "* ]] && command -v systemctl >/dev/null &&
		systemctl is-active --quiet glusterd 2>/dev/null; then
		systemctl disable --now glusterd && say "stopped and disabled the glusterd service the package started"
	fi
else
	say "nothing to install"
fi

# A glusterd holding *:24007 makes the integration tests skip or fail.
if command -v ss >/dev/null && ss -Hltn 'sport = :24007' | awk '{print $4}' | grep -Eq '^(0\.0\.0\.0|\*|\[::\]):24007$'; then
	say "WARNING: something listens on *:24007 (a system glusterd?); the integration tests need it stopped (systemctl stop glusterd)"
fi

# FUSE
if [ ! -c /dev/fuse ]; then
	if [ "$(id -u)" -eq 0 ] && command -v modprobe >/dev/null; then
		say "loading the fuse module"
		modprobe fuse || true
	fi
fi
if [ -c /dev/fuse ]; then
	say "ok: /dev/fuse"
else
	die "/dev/fuse missing: load the fuse module (modprobe fuse) or, in a container, pass --device /dev/fuse"
fi

# Go
if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
	say "go is not in PATH; using /usr/local/go/bin (add it to PATH)"
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null || die "Go not found (expected in PATH or /usr/local/go/bin); install Go from https://go.dev/dl/ (version in go.mod)"
say "ok: $(go version)"
