# Paths shared by the build, the VM runner and the tests.  Sourced, not run.
#
# The kernel tree and its build live outside the clone, in a cache keyed by
# the Debian source version, so that every clone on a machine shares one
# incremental build.  GMEM_CACHE moves the cache.

GMEM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GMEM_CACHE=${GMEM_CACHE:-/var/cache/gmem-inplace}
GMEM_TARBALL=/usr/src/linux-source-6.12.tar.xz

gmem_debian_version()
{
	dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null
}

GMEM_KVER=$(gmem_debian_version)
GMEM_TREE=$GMEM_CACHE/linux-$GMEM_KVER
GMEM_SRC=$GMEM_TREE/src		# git tree: Debian's source + our series
GMEM_BUILD=$GMEM_TREE/build	# O= output of the test kernel's build
GMEM_BUILD_DEBUG=$GMEM_TREE/build-debug	# ... and the debug kernel's
GMEM_HDR=$GMEM_TREE/usr		# headers_install output (UAPI headers)
GMEM_SELFTESTS=$GMEM_TREE/kselftest	# the tree's KVM selftests
GMEM_BZIMAGE=$GMEM_BUILD/arch/x86/boot/bzImage

export CCACHE_DIR=${CCACHE_DIR:-$GMEM_CACHE/ccache}

die()
{
	echo "$(basename "$0"): $*" >&2
	exit 1
}
