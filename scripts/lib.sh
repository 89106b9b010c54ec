# Paths shared by the build, the VM runner and the tests.  Sourced, not run.
#
# The kernel tree and its build live outside the clone, in a cache keyed by
# the pinned Debian source version (kernel/base), so that every clone on a
# machine shares one incremental build.  GMEM_CACHE moves the cache;
# GMEM_KERNEL_DIR points at another series (the host tests use it).

GMEM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GMEM_CACHE=${GMEM_CACHE:-/var/cache/gmem-inplace}
GMEM_KERNEL_DIR=${GMEM_KERNEL_DIR:-$GMEM_TOP/kernel}

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
