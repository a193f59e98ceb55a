#!/usr/bin/env bash
# lint-layers.sh: keep the import layering of style.md §1 true.
#   brick/...    must not import failover or fuse (also not indirectly)
#   failover/... must not import fuse (also not indirectly)
#   brick/fop    imports only brick/xdr of this module (the vocabulary)
#   fuse         imports only brick/fop and brick/xdr of this module
#   failover/<layer> (every package below failover) imports only
#                brick/fop and brick/xdr of this module: no brick client,
#                no other layer, not the assembler
#   only fuse/... imports github.com/hanwen/go-fuse directly
# Packages that do not exist yet are simply not checked. Test files are not
# checked: a contract test may import across layers.
set -euo pipefail
cd "$(dirname "$0")/.."
mod=$(go list -m)
fail=0

# deps PATTERN: non-test transitive imports of the packages matching PATTERN
# (nothing if none exist yet).
deps() { go list -deps "$1" 2>/dev/null || true; }

check_no_deps() { # PATTERN FORBIDDEN...
	local pat=$1; shift
	local all
	all=$(deps "$pat")
	for f in "$@"; do
		if grep -Eq "^${mod}/${f}(/|\$)" <<<"$all"; then
			echo "layering: $pat imports $mod/$f (see style.md §1):" >&2
			go list -f '{{.ImportPath}}: {{join .Imports " "}}' "$pat" | grep -E "${mod}/${f}(/| |\$)" >&2 || true
			fail=1
		fi
	done
}

check_no_deps ./brick/... failover fuse
check_no_deps ./failover/... fuse
check_no_deps ./fuse/... failover

# only_deps PKG ALLOWED...: the module packages PKG imports (directly or
# not) are among ALLOWED.
only_deps() {
	local pkg=$1; shift
	local extra
	extra=$(deps "./$pkg" | grep -E "^${mod}/" | grep -vxF "${mod}/${pkg}" || true)
	for a in "$@"; do extra=$(grep -vxF "${mod}/${a}" <<<"$extra" || true); done
	if [ -n "$extra" ]; then
		echo "layering: $pkg may import only $* of this module, not:" >&2
		echo "$extra" >&2
		fail=1
	fi
}
# The vocabulary stands alone; the filesystem speaks only the vocabulary.
only_deps brick/fop brick/xdr
only_deps fuse brick/fop brick/xdr
# A layer of the graph speaks the vocabulary only: not brick, not another
# layer, not failover (which assembles the layers).
for layer in $(go list ./failover/... 2>/dev/null | grep -vxF "${mod}/failover" || true); do
	only_deps "${layer#${mod}/}" brick/fop brick/xdr
done

bad=$(go list -f '{{.ImportPath}} {{join .Imports " "}}' ./... 2>/dev/null |
	awk -v m="$mod" '$1 != m"/fuse" && index($1, m"/fuse/") != 1 { for (i = 2; i <= NF; i++) if (index($i, "github.com/hanwen/go-fuse") == 1) print $1 " imports " $i }')
if [ -n "$bad" ]; then
	echo "layering: only $mod/fuse may import go-fuse:" >&2
	echo "$bad" >&2
	fail=1
fi

[ $fail -eq 0 ] && echo "layering: ok"
exit $fail
