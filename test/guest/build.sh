#!/usr/bin/env bash
# Builds (once) the boot files of the test guest: an uncompressed Debian kernel and an initramfs
# holding busybox, open-iscsi, e2fsprogs, fio, multipath-tools, the kernel modules they need and
# init.sh.
#
#   build.sh CACHE_DIR   -> prints the directory holding vmlinux, initramfs.img and kver
#
# The result lives in CACHE_DIR/img-<key>; the key hashes this directory's files, the kernel
# package and the versions of the host packages copied in, so any change rebuilds and an
# unchanged setup reuses the files at once. Environment: GUEST_KERNEL_DEB (a linux-image .deb
# to use instead of the one apt-get downloads).
set -euo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${1:?usage: build.sh CACHE_DIR}
mkdir -p "$cache/debs"
cache=$(cd "$cache" && pwd)
fail() { echo "build.sh: $*" >&2; exit 2; }

# Host tools copied into the guest, by the Debian package that ships them.
HOST_PACKAGES="open-iscsi e2fsprogs fio kmod busybox-static multipath-tools"
for p in $HOST_PACKAGES cpio xz-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || fail "missing Debian package $p"
done

# Concurrent runs (two test files, a developer and CI) build once, one at a time.
exec 8>"$cache/lock"
flock -w 300 8 || fail "timed out waiting for $cache/lock"

kernel_deb() {
  if [ -n "${GUEST_KERNEL_DEB:-}" ]; then echo "$GUEST_KERNEL_DEB"; return; fi
  # A kernel once downloaded stays the guest's kernel: runs stay comparable and work offline.
  local have
  have=$(find "$cache/debs" -name 'linux-image-*-amd64_*.deb' | sort -V | tail -n1)
  if [ -n "$have" ]; then echo "$have"; return; fi
  # The kernel that linux-image-amd64 points to. Stale package lists (a fresh machine, or a
  # mirror that moved on) get one apt-get update and a second try.
  local pkg attempt
  for attempt in 1 2; do
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [ -n "$pkg" ] && (cd "$cache/debs" && timeout 300 apt-get download -q "$pkg" >&2); then
      find "$cache/debs" -name "${pkg}_*.deb" | head -n1
      return
    fi
    [ "$attempt" = 2 ] || timeout 300 apt-get update -qq >&2 || true
  done
  fail "could not download the package of linux-image-amd64 (apt-get update; apt-get download)"
}
deb=$(kernel_deb)
[ -f "$deb" ] || fail "no kernel package at $deb"

key=$({
  cat "$here"/build.sh "$here"/init.sh "$here"/multipath.sh "$here"/iscsid.conf "$here"/multipath.conf
  basename "$deb"
  dpkg-query -W $HOST_PACKAGES libc6
} | sha256sum | cut -c1-16)
out="$cache/img-$key"
if [ -s "$out/initramfs.img" ] && [ -s "$out/vmlinux" ]; then echo "$out"; exit 0; fi

started=$SECONDS
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
kroot=$work/kernel
root=$work/root
dpkg-deb -x "$deb" "$kroot"
kver=$(basename "$(find "$kroot/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
[ -n "$kver" ] && [ -f "$kroot/boot/vmlinuz-$kver" ] || fail "$deb holds no kernel"

# qemu boots an ELF vmlinux straight through its PVH entry point, skipping the decompressor
# that takes seconds under software emulation. The bzImage setup header tells where the
# compressed kernel is (x86 boot protocol 2.08+: setup_sects at 0x1f1, payload_offset at 0x248,
# payload_length at 0x24c, offsets from the protected-mode code after the setup sectors).
bz=$kroot/boot/vmlinuz-$kver
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
payload=$(((($(u8 "$bz" $((0x1f1))) + 1) * 512) + $(u32 "$bz" $((0x248)))))
dd if="$bz" iflag=skip_bytes,count_bytes skip="$payload" count="$(u32 "$bz" $((0x24c)))" bs=1M status=none |
  xz -dc --single-stream >"$work/vmlinux" ||
  fail "cannot unpack the xz payload of $bz"
[ "$(head -c4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] || fail "unpacked kernel is not ELF"

mkdir -p "$root"/{bin,sbin,usr/bin,etc/iscsi,etc/multipath,proc,sys,dev,run,tmp,mnt,lib/modules}

copy_with_libs() { # host binary, guest path: the binary and every library ld.so resolves for it
  mkdir -p "$root$(dirname "$2")"
  cp -L "$1" "$root$2"
  local lib
  for lib in $(ldd "$1" 2>/dev/null | awk '$3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    [ -e "$root$lib" ] || { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
  done
}
copy_with_libs /bin/busybox /bin/busybox
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"; done
copy_with_libs "$(command -v iscsid)" /sbin/iscsid
copy_with_libs "$(command -v iscsiadm)" /sbin/iscsiadm
copy_with_libs "$(command -v mke2fs)" /sbin/mke2fs
copy_with_libs "$(command -v e2fsck)" /sbin/e2fsck
copy_with_libs "$(command -v fio)" /usr/bin/fio
copy_with_libs "$(command -v kmod)" /sbin/kmod
copy_with_libs "$(command -v multipathd)" /sbin/multipathd
copy_with_libs "$(command -v multipath)" /sbin/multipath
# multipath's path checkers and prioritizers (tur, alua...) are plugins it dlopen()s.
mpath_plugins=$(dirname "$(dpkg -L multipath-tools | grep -m1 '/multipath/libchecktur\.so$')")
for so in "$mpath_plugins"/*.so; do copy_with_libs "$so" "$so"; done
# The real tools win over busybox's applets of the same name (PATH order in init.sh).
ln -s mke2fs "$root/sbin/mkfs.ext4"
ln -s kmod "$root/sbin/modprobe"
cp /etc/mke2fs.conf "$root/etc/"
cp "$here/iscsid.conf" "$root/etc/iscsi/iscsid.conf"
cp "$here/multipath.conf" "$root/etc/multipath.conf"
echo 'root:x:0:0:root:/:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
ln -s /proc/mounts "$root/etc/mtab"

# Only the modules init.sh loads, with their dependencies; crc32c serves the iSCSI digests and
# ext4, virtio-rng feeds the entropy pool that mke2fs and fio draw on, dm_multipath with its
# path selector and the ALUA device handler serve the multipath mode. The package ships no
# modules.dep (Debian's postinst makes it), which --show-depends needs.
depmod -b "$kroot" "$kver"
modules="qemu_fw_cfg virtio_pci virtio_net virtio_rng crc32c_generic crc32c_intel sd_mod iscsi_tcp ext4
  dm_mod dm_multipath dm_service_time scsi_dh_alua"
for m in $modules; do
  deps=$(modprobe -d "$kroot" -S "$kver" --show-depends "$m") || fail "module $m missing from $deb"
  for ko in $(awk '$1 == "insmod" { print $2 }' <<<"$deps"); do
    rel=${ko#"$kroot"}
    mkdir -p "$root$(dirname "$rel")"
    cp "$ko" "$root$rel"
  done
done
cp "$kroot/lib/modules/$kver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/"
depmod -b "$root" "$kver"

cp "$here/init.sh" "$root/init"
cp "$here/multipath.sh" "$root/multipath.sh"
chmod 755 "$root/init"
# Every tool must start inside the guest's root: a missing library would only show at boot.
for tool in "/bin/sh -c true" "/sbin/iscsiadm --version" "/sbin/iscsid --version" "/sbin/mke2fs -V" "/usr/bin/fio --version" "/sbin/kmod --version" \
  "/sbin/multipath -t" "/lib64/ld-linux-x86-64.so.2 --list /sbin/multipathd"; do
  chroot "$root" $tool >/dev/null 2>&1 || fail "'$tool' does not run in the guest root"
done

# Uncompressed: the guest unpacks it faster than it could decompress it under emulation.
(cd "$root" && find . | sort | cpio -o -H newc -R 0:0 --quiet) >"$work/initramfs.img"
echo "$kver" >"$work/kver"
mkdir -p "$work/out"
mv "$work/vmlinux" "$work/initramfs.img" "$work/kver" "$work/out/"
# Older images are stale by construction (their key no longer matches).
find "$cache" -mindepth 1 -maxdepth 1 -name 'img-*' -exec rm -rf {} +
mv "$work/out" "$out"
echo "build.sh: built $out (kernel $kver, initramfs $(($(stat -c %s "$out/initramfs.img") >> 20)) MiB) in $((SECONDS - started)) s" >&2
echo "$out"
