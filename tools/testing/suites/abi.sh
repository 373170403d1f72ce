#!/bin/bash
# modules: ours stock
# kernels: all
# timeout: 1800
# SPDX-License-Identifier: GPL-2.0
#
# ABI conformance: the uapi header's layout (native and i386) and the
# behaviour of the loaded vduse module (native and i386 through the compat
# ioctls).  Runs as root in the test guest with the module loaded.
#
# The programs print TAP; this script renumbers their "ok"/"not ok" lines
# into one stream, tags each description with its program, and ends with
# one plan and a "N passed, N failed" line.  Anything else is commentary.
set -u
TOOLS=${VDUSE_TOOLS:-/vduse/build/tools}
total=0
failed=0

# run_prog TAG CMD...: run one program and fold its TAP into ours.
run_prog() {
	local tag=$1 out rc line desc seen_fail=0
	shift
	out=$(mktemp)
	"$@" >"$out"
	rc=$?
	# Pure bash: a sed per line costs minutes under TCG.
	while IFS= read -r line; do
		if [[ $line =~ ^(not )?ok( [0-9]+)?( -)?( (.*))?$ ]]; then
			desc=${BASH_REMATCH[5]}
			total=$((total + 1))
			if [ -n "${BASH_REMATCH[1]}" ]; then
				failed=$((failed + 1))
				seen_fail=1
				echo "not ok $total - [$tag] $desc"
			else
				echo "ok $total - [$tag] $desc"
			fi
			continue
		fi
		case $line in
		"Bail out!"*)
			total=$((total + 1))
			failed=$((failed + 1))
			seen_fail=1
			echo "not ok $total - [$tag] ${line#Bail out! }"
			;;
		[0-9]*..[0-9]*)
			echo "# [$tag] plan ${line}"
			;;
		"#"*)	echo "$line" ;;
		*)	echo "# $line" ;;
		esac
	done <"$out"
	rm -f "$out"
	if [ $rc -ne 0 ] && [ $seen_fail -eq 0 ]; then
		total=$((total + 1))
		failed=$((failed + 1))
		echo "not ok $total - [$tag] exited with status $rc"
	fi
}

module_args=()
[ -n "${VDUSE_MODULE:-}" ] && module_args=(--module "$VDUSE_MODULE")

run_prog layout64 "$TOOLS/abi_layout"
run_prog layout32 "$TOOLS/abi_layout32"
run_prog behaviour64 "$TOOLS/abi_behaviour" "${module_args[@]}"
run_prog behaviour32 "$TOOLS/abi_behaviour32" "${module_args[@]}"

echo "1..$total"
echo "$((total - failed)) passed, $failed failed"
[ $failed -eq 0 ]
