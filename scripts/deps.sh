#!/usr/bin/env bash
# deps.sh - make sure the Debian packages a lab step needs are installed (apt-get, sudo if not root).
set -eu

usage() {
    echo "usage: $0 [--check] STEP...   (STEP: build demo test compare fleet browser bench production realcode)" >&2
    echo "Installs the Debian packages those steps need, or says the exact command to run." >&2
    echo "--check: install nothing; if some are missing, say which in one line and exit 1." >&2
    echo "Environment: DEPS_EXTRA=\"PKG...\" adds packages to the list (tests use a name that" >&2
    echo "does not exist to see the message a missing package gives)." >&2
    exit 2
}

check=0
[ "${1:-}" = --check ] && { check=1; shift; }
[ $# -ge 1 ] || usage
demo_pkgs="apache2-utils gnuplot-nox curl"
checker_pkgs="valgrind clang libclang-rt-14-dev" # valgrind, sanitizers, libFuzzer
# tests/test_host.sh: the real programs run with and without the preload
host_pkgs="python3 perl gawk sqlite3 git xz-utils g++ util-linux binutils"
# tests/test_realcode.sh: real servers built from Debian's source packages (apt-get source
# needs a deb-src entry: added below when missing), with cmake (mosquitto) and patch
realcode_pkgs="dpkg-dev cmake patch pkg-config xz-utils curl"
# docs/workshop.md step 9, tests/test_production.sh: bcc's memleak, jemalloc profiling, gcore
production_pkgs="bpfcc-tools libjemalloc2 libjemalloc-dev gdb"
# tests/test_transparency.sh and tests/test_redis.sh: servers that drop root, programs on
# foreign allocators, runtimes and everyday tools run with and without the preload; redis's
# own test suite (tcl) comes from Debian's source package (apt-get source: dpkg-dev and the
# deb-src entry below). rustc: Debian's, only when none is installed otherwise (rustup's
# in ~/.cargo/bin).
transparency_pkgs="redis-server redis-tools memcached nginx-light lighttpd libjemalloc-dev
    libgoogle-perftools-dev libmimalloc-dev golang-go openjdk-17-jdk-headless nodejs zstd jq
    openssl cmake gdb tcl curl dpkg-dev"
command -v rustc >/dev/null 2>&1 || [ -x "${HOME:-/root}/.cargo/bin/rustc" ] || transparency_pkgs="$transparency_pkgs rustc"
pkgs=""
want_src=0
for step in "$@"; do
    case "$step" in
        build)   pkgs="$pkgs gcc make libc6-dev libmicrohttpd-dev libdw-dev libelf-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev" ;;
        demo)    pkgs="$pkgs $demo_pkgs" ;;
        test)    pkgs="$pkgs $demo_pkgs file wrk golang-go prometheus perl $checker_pkgs $host_pkgs $production_pkgs $realcode_pkgs $transparency_pkgs"
                 want_src=1 ;;
        realcode) pkgs="$pkgs $realcode_pkgs"; want_src=1 ;;
        compare) pkgs="$pkgs $demo_pkgs heaptrack $checker_pkgs" ;;
        bench)   pkgs="$pkgs heaptrack valgrind libunwind-dev sqlite3 perl python3 $realcode_pkgs memcached libmemcached-tools" # tests/bench_tracker.sh, bench_servers.sh
                 want_src=1 ;;
        fleet)   pkgs="$pkgs $demo_pkgs prometheus golang-go" ;;
        browser) pkgs="$pkgs chromium fonts-dejavu-core nodejs npm" ;;
        production) pkgs="$pkgs $demo_pkgs $production_pkgs linux-headers-amd64" ;; # bcc compiles against kernel headers
        *) usage ;;
    esac
done
pkgs="$(echo $pkgs | tr ' ' '\n' | sort -u | tr '\n' ' ') ${DEPS_EXTRA:-}"

# A deb-src entry for Debian's own archive, the one the machine already uses
# (tests/realcode/build.sh runs apt-get source). Only when none is there.
src_list=/etc/apt/sources.list.d/leaklab-deb-src.sources
need_src=0
if [ "$want_src" -eq 1 ] && [ -z "$(apt-cache showsrc redis 2>/dev/null | head -n 1)" ]; then need_src=1; fi

missing=""
for p in $pkgs; do
    # Node.js from another source (e.g. NodeSource's nodejs, which bundles npm
    # and conflicts with Debian's npm) counts as installed when its command runs.
    case "$p" in nodejs) command -v node >/dev/null 2>&1 && continue ;;
                 npm) command -v npm >/dev/null 2>&1 && continue ;; esac
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *" installed") ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && [ "$need_src" -eq 0 ] && exit 0
if [ "$check" -eq 1 ]; then
    [ -z "$missing" ] || echo "missing Debian package(s):$missing: run 'make deps' (or: sudo apt-get install$missing)" >&2
    [ "$need_src" -eq 0 ] || echo "no deb-src entry (apt-get source): run scripts/deps.sh realcode" >&2
    exit 1
fi

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -eq 0 ]; then sudo=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"
else
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get update && sudo $cmd" >&2
    exit 1
fi
if [ "$need_src" -eq 1 ]; then
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then # deb822, as Debian 12 installs it
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $sudo tee "$src_list" >/dev/null
    else # one-line format
        src_list=${src_list%.sources}.list
        sed -n 's/^deb \(.*debian.*\)$/deb-src \1/p' /etc/apt/sources.list 2>/dev/null | $sudo tee "$src_list" >/dev/null
    fi
    echo "deps: added $src_list (deb-src of the machine's Debian archive, for apt-get source)" >&2
    $sudo apt-get update -qq || { echo "deps: failed: $sudo apt-get update (after adding $src_list)" >&2; exit 1; }
    [ -n "$missing" ] || exit 0
fi
echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# Update the package lists once per machine (a fresh machine has none).
if [ ! -e /var/lib/apt/lists/lock ] || [ -z "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] \
   || ! $sudo apt-get install -y --no-install-recommends $missing >/dev/null 2>&1; then
    $sudo apt-get update -qq || { echo "deps: failed: $sudo apt-get update (network or apt sources?)" >&2; exit 1; }
    $sudo $cmd -qq >/dev/null || { echo "deps: failed: $sudo $cmd" >&2; exit 1; }
fi
echo "deps: installed$missing" >&2
