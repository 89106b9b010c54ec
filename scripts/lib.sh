# Paths shared by the build, the VM runner and the tests.  Sourced, not run.
#
# The kernel tree and its build live outside the clone, in a cache keyed by
# the pinned Debian source version (kernel/base), so that every clone on a
# machine shares one incremental build.  GMEM_CACHE moves the cache;
# GMEM_KERNEL_DIR points at another series (the host tests use it).
# GMEM_BASE (below) picks one of the bases the project carries.

GMEM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GMEM_CLONE=$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GMEM_CACHE=${GMEM_CACHE:-/var/cache/gmem-inplace}

# The base: a Debian source package and the series made for it.  The
# default, 6.12, is kernel/ (Debian 12's linux-source-6.12); base NAME is
# kernel/NAME/ (7.3: Debian's backport of upstream Linux 7.3).
# GMEM_BASE=NAME picks one, and so does a leading '--base NAME' on the
# command line of any script that sources this file (it is sourced without
# arguments, so it sees and shifts the script's own).
#
# scripts/kernel knows nothing of bases, and must not learn: its text is
# part of every build's key, and the 6.12 build must keep its key.  It
# reads a base's files where it reads the clone's: the pin, series and
# cover letter in GMEM_KERNEL_DIR, the trace header copies in
# GMEM_KERNEL_DIR/../include/trace/events, the config fragments in
# GMEM_TOP/kernel/, scripts/base in GMEM_TOP/scripts/.  So kernel/NAME/ is
# a view of the clone for that base: kernel/NAME/kernel/ holds its config
# fragments and kernel/NAME/scripts links to the clone's scripts.  The
# scripts of scripts/ asked for another base run again from that view;
# GMEM_TOP is then the view, and GMEM_KERNEL_DIR kernel/NAME/. (the '/.'
# makes its dirname kernel/NAME itself).  Other scripts (tests/vm/run)
# keep GMEM_TOP, the clone, and read only the base's pin.
if [[ ${1:-} == --base ]]; then
	[[ -n ${2:-} ]] || { echo "$(basename "$0"): --base needs a name (6.12, 7.3)" >&2; exit 1; }
	GMEM_BASE=$2
	shift 2
fi
if [[ -L $GMEM_TOP/scripts && -f $GMEM_TOP/base ]]; then
	# Started from the view kernel/NAME/scripts.
	GMEM_BASE=$(basename "$GMEM_TOP")
	GMEM_KERNEL_DIR=${GMEM_KERNEL_DIR:-$GMEM_TOP/.}
else
	GMEM_BASE=${GMEM_BASE:-6.12}
	if [[ $GMEM_BASE != 6.12 ]]; then
		[[ -f $GMEM_TOP/kernel/$GMEM_BASE/base ]] || {
			echo "$(basename "$0"): no base '$GMEM_BASE': kernel/$GMEM_BASE/base is missing" >&2
			exit 1
		}
		if [[ $(cd -P "$(dirname "$0")" && pwd) == "$GMEM_CLONE/scripts" ]]; then
			export GMEM_BASE
			exec "$GMEM_TOP/kernel/$GMEM_BASE/scripts/$(basename "$0")" "$@"
		fi
		GMEM_KERNEL_DIR=${GMEM_KERNEL_DIR:-$GMEM_TOP/kernel/$GMEM_BASE/.}
	fi
	GMEM_KERNEL_DIR=${GMEM_KERNEL_DIR:-$GMEM_TOP/kernel}
fi
export GMEM_BASE

die()
{
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# The pin: "PACKAGE VERSION", the one line of kernel/base that is not a
# comment.
gmem_read_pin()
{
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$GMEM_KERNEL_DIR/base" 2>/dev/null
}

# A here-string, not a process substitution: the test VM has no /dev/fd.
read -r GMEM_PKG GMEM_KVER <<<"$(gmem_read_pin)" || true

# Where version $1 of the source lives: unpacked once, committed as 'base'.
gmem_tree()
{
	echo "$GMEM_CACHE/linux-$1"
}

GMEM_TREE=$(gmem_tree "$GMEM_KVER")
GMEM_SRC=$GMEM_TREE/src		# git tree: Debian's source + our series
GMEM_BUILD=$GMEM_TREE/build	# O= output of the test kernel's build
GMEM_BUILD_DEBUG=$GMEM_TREE/build-debug	# ... and the debug kernel's
GMEM_HDR=$GMEM_TREE/usr		# headers_install output (UAPI headers)
GMEM_SELFTESTS=$GMEM_TREE/kselftest	# the tree's KVM selftests
GMEM_BZIMAGE=$GMEM_BUILD/arch/x86/boot/bzImage

export CCACHE_DIR=${CCACHE_DIR:-$GMEM_CACHE/ccache}
# Key each object on the dependency file gcc writes anyway (kbuild's
# -Wp,-MMD) rather than on a preprocessor run of its own: a miss then
# costs one compilation, not a preprocessing more (9% of a cold build).
export CCACHE_DEPEND=true
