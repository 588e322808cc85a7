#!/usr/bin/env bash
# Builds a gzip'd cpio (newc) initramfs for a test or demo VM: busybox (static) with all its
# applets, the given programs with their ELF interpreter and the shared libraries ldd lists,
# optional kernel modules, extra files, and an init script.
#
#   make-initramfs.sh -o OUT.cpio.gz --init INIT.sh [--module FILE.ko]... \
#                     [--file SRC:DEST]... [PROGRAM...]
#
# Programs land in /bin under their own name; modules in /lib/modules/ (flat); a --file
# at DEST (an absolute path inside the guest). The init script becomes /init. /dev is
# left empty: mount devtmpfs there first thing in init (the kernel opens no console before
# that, so init should redirect its output to /dev/console once /dev is mounted).
set -euo pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

out="" init="" modules=() files=() programs=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|--output) out="$2"; shift 2 ;;
    --init) init="$2"; shift 2 ;;
    --module) modules+=("$2"); shift 2 ;;
    --file) files+=("$2"); shift 2 ;;
    -h|--help) usage ;;
    --) shift; programs+=("$@"); break ;;
    -*) echo "make-initramfs: unknown option $1" >&2; usage ;;
    *) programs+=("$1"); shift ;;
  esac
done
[ -n "$out" ] && [ -n "$init" ] || usage

die() { echo "make-initramfs: $*" >&2; exit 1; }

busybox=$(command -v busybox || true)
[ -n "$busybox" ] || die "busybox not found (Debian: apt-get install busybox-static)"
# It runs before any library is there, so it must be static (ldd fails on static programs).
if LC_ALL=C ldd "$busybox" >/dev/null 2>&1; then
  die "$busybox is dynamically linked; install busybox-static"
fi
[ -r "$init" ] || die "no init script at $init"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,mnt,etc,lib/modules,usr/bin,usr/sbin,var/tmp}

cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
  [ -e "$stage/bin/$applet" ] || ln -s busybox "$stage/bin/$applet"
done
# libfuse and others look here; there is no mtab file to keep up to date.
ln -s /proc/self/mounts "$stage/etc/mtab"

# Copies a file to the same absolute path inside the guest (following symlinks).
copy_same_path() {
  local src="$1"
  [ -e "$stage$src" ] && return 0
  mkdir -p "$stage$(dirname "$src")"
  cp -L "$src" "$stage$src"
}

for program in "${programs[@]}"; do
  [ -x "$program" ] || die "not an executable: $program"
  cp -L "$program" "$stage/bin/$(basename "$program")"
  # The ELF interpreter and every library ldd resolves ("name => /path (addr)" or
  # "/path (addr)"); a static program has none.
  if deps=$(LC_ALL=C ldd "$program" 2>/dev/null); then
    while read -r lib; do
      copy_same_path "$lib"
    done < <(printf '%s\n' "$deps" | awk '
      $2 == "=>" && $3 ~ /^\// { print $3; next }
      $1 ~ /^\// { print $1 }')
    if missing=$(printf '%s\n' "$deps" | grep "not found"); then
      die "$program: libraries not found: $missing"
    fi
  fi
done

for module in "${modules[@]}"; do
  [ -r "$module" ] || die "no module at $module"
  case "$module" in
    *.ko) cp "$module" "$stage/lib/modules/" ;;
    *.ko.xz) xz -dc "$module" > "$stage/lib/modules/$(basename "$module" .xz)" ;;
    *.ko.zst) zstd -qdc "$module" > "$stage/lib/modules/$(basename "$module" .zst)" ;;
    *) die "not a kernel module: $module" ;;
  esac
done

for spec in "${files[@]}"; do
  src="${spec%%:*}" dest="${spec#*:}"
  [ "$src" != "$spec" ] && [[ "$dest" == /* ]] || die "--file wants SRC:/ABSOLUTE/DEST, got $spec"
  [ -r "$src" ] || die "no file at $src"
  mkdir -p "$stage$(dirname "$dest")"
  cp -L "$src" "$stage$dest"
done

cp "$init" "$stage/init"
chmod 755 "$stage/init"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"
echo "make-initramfs: $out ($(du -h "$out" | cut -f1), ${#programs[@]} programs, ${#modules[@]} modules)" >&2
