#!/usr/bin/env bash
# deps.sh - make sure the Debian packages a lab step needs are installed (apt-get, sudo if not root).
set -eu

usage() {
    echo "usage: $0 [--check] STEP...   (STEP: build demo test compare fleet browser bench production)" >&2
    echo "Installs the Debian packages those steps need, or says the exact command to run." >&2
    echo "--check: install nothing; if some are missing, say which in one line and exit 1." >&2
    echo "Environment: DEPS_EXTRA=\"PKG...\" adds packages to the list (tests use a name that" >&2
    echo "does not exist to see the message a missing package gives)." >&2
    exit 2
}

check=0
want_src=0
[ "${1:-}" = --check ] && { check=1; shift; }
[ $# -ge 1 ] || usage
demo_pkgs="apache2-utils gnuplot-nox curl"
checker_pkgs="valgrind clang libclang-rt-14-dev" # valgrind, sanitizers, libFuzzer
# tests/test_host.sh: the real programs run with and without the preload
host_pkgs="python3 perl gawk sqlite3 git xz-utils g++ util-linux binutils"
# docs/workshop.md step 9, tests/test_production.sh: bcc's memleak, jemalloc profiling, gcore
production_pkgs="bpfcc-tools libjemalloc2 libjemalloc-dev gdb"
# tests/test_transparency.sh and tests/test_redis.sh: servers that drop root, programs on
# foreign allocators, runtimes and everyday tools run with and without the preload; redis's
# own test suite (tcl) comes from Debian's source package (dpkg-dev unpacks it, and a
# deb-src entry is added below if the machine has none). rustc: Debian's, only when no
# rustc is installed otherwise (e.g. rustup's in ~/.cargo/bin).
transparency_pkgs="redis-server redis-tools memcached nginx-light lighttpd libjemalloc-dev
    libgoogle-perftools-dev libmimalloc-dev golang-go openjdk-17-jdk-headless nodejs zstd jq
    openssl cmake gdb tcl curl dpkg-dev"
command -v rustc >/dev/null 2>&1 || [ -x "${HOME:-/root}/.cargo/bin/rustc" ] || transparency_pkgs="$transparency_pkgs rustc"
pkgs=""
for step in "$@"; do
    case "$step" in
        build)   pkgs="$pkgs gcc make libc6-dev libmicrohttpd-dev libdw-dev libelf-dev libprotobuf-c-dev protobuf-c-compiler zlib1g-dev" ;;
        demo)    pkgs="$pkgs $demo_pkgs" ;;
        test)    pkgs="$pkgs $demo_pkgs file wrk golang-go prometheus perl $checker_pkgs $host_pkgs $production_pkgs $transparency_pkgs"
                 want_src=1 ;;
        compare) pkgs="$pkgs $demo_pkgs heaptrack $checker_pkgs" ;;
        bench)   pkgs="$pkgs heaptrack valgrind libunwind-dev sqlite3 perl python3" ;; # tests/bench_tracker.sh
        fleet)   pkgs="$pkgs $demo_pkgs prometheus golang-go" ;;
        browser) pkgs="$pkgs chromium fonts-dejavu-core nodejs npm" ;;
        production) pkgs="$pkgs $demo_pkgs $production_pkgs linux-headers-amd64" ;; # bcc compiles against kernel headers
        *) usage ;;
    esac
done
pkgs="$(echo $pkgs | tr ' ' '\n' | sort -u | tr '\n' ' ') ${DEPS_EXTRA:-}"

# deps_sudo: sets sudo ("" as root, "sudo" when it works without a password); 1 if neither.
deps_sudo() {
    if [ "$(id -u)" -eq 0 ]; then sudo=""
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"
    else return 1
    fi
}

missing=""
for p in $pkgs; do
    # Node.js from another source (e.g. NodeSource's nodejs, which bundles npm
    # and conflicts with Debian's npm) counts as installed when its command runs.
    case "$p" in nodejs) command -v node >/dev/null 2>&1 && continue ;;
                 npm) command -v npm >/dev/null 2>&1 && continue ;; esac
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    case "$st" in *" installed") ;; *) missing="$missing $p" ;; esac
done
# deb_src: apt-get source (tests/test_redis.sh) needs a deb-src entry: one
# like each deb entry of Debian's archive, in a file of its own, then the lists
# updated. Nothing is changed where one exists, or without root.
has_src() { grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/; }
deb_src() {
    local f=/etc/apt/sources.list.d/leaklab-deb-src.sources
    has_src && return 0
    [ -r /etc/apt/sources.list.d/debian.sources ] || return 0
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $sudo tee "$f" >/dev/null &&
        echo "deps: added $f (deb-src, for apt-get source redis)" >&2 &&
        { $sudo apt-get update -qq || echo "deps: apt-get update failed after adding $f" >&2; }
}

if [ -z "$missing" ]; then
    [ "$check" -eq 0 ] && [ "$want_src" -eq 1 ] && ! has_src && deps_sudo && deb_src
    exit 0
fi
if [ "$check" -eq 1 ]; then
    echo "missing Debian package(s):$missing: run 'make deps' (or: sudo apt-get install$missing)" >&2
    exit 1
fi

cmd="apt-get install -y --no-install-recommends$missing"
if ! deps_sudo; then
    echo "deps: missing Debian packages:$missing" >&2
    echo "deps: run: sudo apt-get update && sudo $cmd" >&2
    exit 1
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
[ "$want_src" -eq 1 ] && deb_src
exit 0
