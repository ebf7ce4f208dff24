#!/usr/bin/env bash
# build.sh NAME VARIANT - one program of the real-code battery: its Debian source fetched (upstream version pinned by the orig tarball's sha256), the planted leak applied, built under build/realcode/; prints the build's directory.
set -eu

# NAME: redis | mosquitto | lighttpd | nginx.
# VARIANT: default (the project's own build flags), O2g (-O2 -g), jemalloc
# (redis only: as the project ships it, its bundled jemalloc linked in).
# A build is kept (build/realcode/NAME-VARIANT/.built holds the hash of
# this script and of the patch) and redone only when either changes.
# Sources come from Debian's archive only (apt-get source; CI reaches no
# other network): scripts/deps.sh realcode adds the deb-src entry they need.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RC=$root/build/realcode
[ $# -eq 2 ] || { echo "usage: $0 NAME default|O2g|jemalloc" >&2; exit 2; }
name=$1 variant=$2

# Debian source package, upstream version, orig tarball, its sha256. The
# Debian revision may move (security updates), the upstream tarball may not.
case "$name" in
    redis)     pkg=redis     ver=7.0.15 orig=redis_7.0.15.orig.tar.gz \
               sum=4b1dc4ee6d622a09fff9c6777191209750fb5e5a725ef78ea012d6eef4c22982 ;;
    mosquitto) pkg=mosquitto ver=2.0.11 orig=mosquitto_2.0.11.orig.tar.gz \
               sum=7b36a7198bce85cf31b132f5c6ee36dcf5dadf86fb768501eb1e11ce95d4f78a ;;
    lighttpd)  pkg=lighttpd  ver=1.4.69 orig=lighttpd_1.4.69.orig.tar.xz \
               sum=16ac8db95e719629ba61949b99f8a26feba946a81d185215b28379bb4116b0b4 ;;
    nginx)     pkg=nginx     ver=1.22.1 orig=nginx_1.22.1.orig.tar.gz \
               sum=9ebb333a9e82b952acd3e2b4aeb1d4ff6406f72491bab6cd9fe69f0dea737f31 ;;
    *) echo "build.sh: unknown program $name" >&2; exit 2 ;;
esac
case "$name:$variant" in
    *:default|*:O2g|redis:jemalloc) ;;
    *) echo "build.sh: unknown variant $variant for $name" >&2; exit 2 ;;
esac

# redis' own flags are -O2 -g -ggdb, lighttpd's autotools default -g -O2:
# for them one build is both.
case "$name:$variant" in redis:O2g|lighttpd:O2g) variant=default ;; esac

mkdir -p "$RC/dl"
tarball=$RC/dl/$orig
if [ ! -f "$tarball" ] || [ "$(sha256sum < "$tarball" | cut -d' ' -f1)" != "$sum" ]; then
    rm -f "$tarball"
    # The security suite's index can name a revision whose files are gone
    # from the mirror: then the release's own.
    (cd "$RC/dl" && { apt-get source --download-only -qq "$pkg" >/dev/null 2>&1 ||
                      apt-get source --download-only -qq -t bookworm "$pkg" >/dev/null 2>&1; }) || true
    if [ ! -f "$tarball" ]; then
        echo "build.sh: apt-get source $pkg gave no $orig (no deb-src entry? run scripts/deps.sh realcode)" >&2
        exit 1
    fi
    got=$(sha256sum < "$tarball" | cut -d' ' -f1)
    if [ "$got" != "$sum" ]; then
        echo "build.sh: $orig has sha256 $got, not the pinned $sum (Debian moved $pkg past $ver?)" >&2
        exit 1
    fi
fi

dir=$RC/$name-$variant
patch=$root/tests/realcode/$name.patch
stamp=$(cat "${BASH_SOURCE[0]}" "$patch" | sha256sum | cut -d' ' -f1)
if [ -f "$dir/.built" ] && [ "$(cat "$dir/.built")" = "$stamp" ]; then echo "$dir"; exit 0; fi

rm -rf "$dir"
mkdir -p "$dir"
tar -xf "$tarball" -C "$dir" --strip-components=1
patch -s -d "$dir" -p1 < "$patch"
log=$dir/build.log
jobs=${REALCODE_JOBS:-2}
{
    case "$name:$variant" in
        redis:default)
            make -C "$dir/src" -j"$jobs" MALLOC=libc BUILD_TLS=no USE_SYSTEMD=no redis-server redis-cli redis-benchmark ;;
        redis:jemalloc)
            make -C "$dir/src" -j"$jobs" BUILD_TLS=no USE_SYSTEMD=no redis-server ;;
        mosquitto:*)
            flags=() # cmake's default build type: no -O, no -g (a build without debug info)
            [ "$variant" = O2g ] && flags=(-DCMAKE_C_FLAGS="-O2 -g")
            mkdir -p "$dir/build"
            (cd "$dir/build" && cmake .. -DWITH_TLS=OFF -DWITH_CJSON=OFF -DDOCUMENTATION=OFF -DWITH_SRV=OFF \
                -DWITH_WEBSOCKETS=OFF -DWITH_BUNDLED_DEPS=ON "${flags[@]}" && make -j"$jobs" mosquitto) ;;
        lighttpd:*)
            (cd "$dir" && ./configure --without-pcre2 --without-zlib --without-bzip2 --disable-static &&
                make -j"$jobs") ;;
        nginx:*)
            opt=() # nginx's own default: -O -g (auto/cc/gcc)
            [ "$variant" = O2g ] && opt=(--with-cc-opt="-O2 -g")
            (cd "$dir" && ./configure --prefix="$dir/run" --without-http_rewrite_module --without-http_gzip_module \
                "${opt[@]}" && make -j"$jobs") ;;
    esac
} >"$log" 2>&1 || { echo "build.sh: $name $variant failed to build: tail of $log:" >&2; tail -n 20 "$log" >&2; exit 1; }
echo "$stamp" > "$dir/.built"
echo "$dir"
