#!/usr/bin/env bash
# Usage: check_install.sh install BUILD_DIR CC CXX CXX_STD "CFLAGS" "CXXFLAGS" "LDFLAGS"
#        check_install.sh deb BUILD_DIR
# install: cmake --install BUILD_DIR into a fresh temporary prefix; every installed header
#   compiles alone (C++17, the oldest standard the headers promise); a C++ client and a C99
#   client build through pkg-config alone and run; the installed goldfish-as answers --help.
#   The flags are the build's (a sanitizer build's library needs its runtime in the client).
# deb: cpack -G DEB into a temporary directory; the package's name, dependencies, files and
#   unit are checked with dpkg-deb (nothing is installed). Exit 77 (skipped) without dpkg-deb.
# Everything happens in a temporary directory removed on exit, wherever the checkout is.
set -euo pipefail

mode=${1:?usage: check_install.sh install|deb BUILD_DIR ...}
build=${2:?usage: check_install.sh install|deb BUILD_DIR ...}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gf-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "check_install: $*" >&2; exit 1; }

if [ "$mode" = deb ]; then
    command -v dpkg-deb >/dev/null || { echo "check_install: no dpkg-deb: skipped"; exit 77; }
    cpack -G DEB -B "$tmp" --config "$build/CPackConfig.cmake" >"$tmp/cpack.log" 2>&1 ||
        { cat "$tmp/cpack.log" >&2; fail "cpack -G DEB failed"; }
    debs=("$tmp"/*.deb)
    if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
        fail "cpack made no single .deb"
    fi
    deb=${debs[0]}
    echo "package: $(basename "$deb")"
    [ "$(dpkg-deb -f "$deb" Package)" = goldfish-address-space ] || fail "wrong package name"
    depends=$(dpkg-deb -f "$deb" Depends)
    echo "Depends: $depends"
    names=$(sed 's/ *([^)]*)//g; s/, */\n/g' <<<"$depends")
    for want in fuse3 libfuse3-3 libc6 libstdc++6; do
        grep -qxF "$want" <<<"$names" || fail "Depends lacks $want"
    done
    contents=$(dpkg-deb -c "$deb")
    for want in usr/bin/goldfish-as usr/bin/goldfish-vmm-device usr/sbin/goldfish-asd \
        usr/lib/libgoldfish-address-space.a usr/lib/pkgconfig/goldfish-address-space.pc \
        usr/include/goldfish-address-space/linux/goldfish_address_space.h \
        usr/lib/systemd/system/goldfish-asd.service \
        usr/libexec/goldfish-address-space/wait-for-node \
        usr/share/man/man1/goldfish-as.1.gz usr/share/man/man8/goldfish-asd.8.gz \
        usr/share/doc/goldfish-address-space/copyright; do
        grep -q " \./$want\$" <<<"$contents" || fail "the package lacks /$want"
    done
    dpkg-deb -x "$deb" "$tmp/root"
    unit=$tmp/root/usr/lib/systemd/system/goldfish-asd.service
    grep -qx 'ExecStart=/usr/sbin/goldfish-asd .*' "$unit" || fail "the unit's ExecStart is not /usr/sbin's"
    grep -q '^prefix=/usr$' "$tmp/root/usr/lib/pkgconfig/goldfish-address-space.pc" ||
        fail "the package's pkg-config file does not say prefix=/usr"
    echo "deb: ok"
    exit 0
fi

[ "$mode" = install ] || fail "mode is install or deb"
cc=$3 cxx=$4 cxx_std=$5 cflags=$6 cxxflags=$7 ldflags=$8
here=$(cd "$(dirname "$0")" && pwd)
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log" >&2; fail "cmake --install failed"; }

pc=$(find "$prefix" -name goldfish-address-space.pc)
[ -n "$pc" ] || fail "no goldfish-address-space.pc installed"
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
read -r -a pc_cflags <<<"$(pkg-config --cflags goldfish-address-space)"
read -r -a pc_libs <<<"$(pkg-config --libs goldfish-address-space)"
echo "pkg-config: ${pc_cflags[*]} ${pc_libs[*]}"
# The build's flags, split into words on purpose.
read -r -a cflags <<<"$cflags"
read -r -a cxxflags <<<"$cxxflags"
read -r -a ldflags <<<"$ldflags"

# Each installed header alone: what it includes is installed too.
while IFS= read -r header; do
    rel=${header#"$prefix"/include/goldfish-address-space/}
    printf '#include <%s>\n' "$rel" >"$tmp/one.cpp"
    "$cxx" -std=c++17 "${cxxflags[@]}" "${pc_cflags[@]}" -fsyntax-only "$tmp/one.cpp" ||
        fail "the installed $rel does not compile alone"
done < <(find "$prefix/include" -name '*.h' | sort)

"$cxx" "$cxx_std" "${cxxflags[@]}" "${pc_cflags[@]}" -o "$tmp/client" "$here/client.cpp" \
    "${ldflags[@]}" "${pc_libs[@]}" || fail "the C++ client does not build through pkg-config"
"$cc" -std=c99 -pedantic-errors "${cflags[@]}" "${pc_cflags[@]}" -o "$tmp/uapi_client" \
    "$here/uapi_client.c" "${ldflags[@]}" "${pc_libs[@]}" ||
    fail "the C client does not build through pkg-config"
"$tmp/client" "$tmp/no-node" || fail "the C++ client failed"
"$tmp/uapi_client" || fail "the C client failed"

"$prefix/bin/goldfish-as" --help >"$tmp/help.txt" || fail "goldfish-as --help failed"
head -1 "$tmp/help.txt"
echo "install: ok"
