#!/bin/sh
# /init of the test guest (busybox ash). It logs in to the target with the Linux kernel
# initiator, runs the checks run.sh asked for, logs out and powers off. Each check prints one
# line `RESULT <check> PASS|FAIL key=value...`; run.sh reads them from the serial console.
# Parameters come through qemu's fw_cfg (opt/s3tgt/params, shell assignments G_*), so one
# cached initramfs serves every run and secrets never appear on a command line.
export PATH=/sbin:/usr/bin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mkdir -p /run/lock/iscsi /etc/iscsi/nodes /etc/iscsi/send_targets /etc/iscsi/ifaces
dmesg -n 1
echo "STEP init uptime=$(cut -d' ' -f1 /proc/uptime)"

CHECKS=0
FAILED=0
pass() { CHECKS=$((CHECKS + 1)); echo "RESULT $1 PASS $2"; }
fail() { CHECKS=$((CHECKS + 1)); FAILED=$((FAILED + 1)); echo "RESULT $1 FAIL $2"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
show() { [ -s "$2" ] && tail -n "${3:-30}" "$2" | sed "s/^/LOG|$1| /"; } # prefix, file, lines

# Evidence for a failure: what iscsid said and what the kernel logged about SCSI and iSCSI.
diagnose() {
  show iscsid /run/iscsid.log 40
  dmesg | grep -E 'iscsi|scsi|SCSI|\[sd[a-z]+\]|EXT4|I/O|error|fail|reset|abort|timed out' >/run/dmesg.sel
  show dmesg /run/dmesg.sel 40
}

finish() {
  cd /
  umount /mnt 2>/dev/null
  [ "$FAILED" = 0 ] || diagnose
  if [ "$FAILED" = 0 ] && [ "$CHECKS" -gt 0 ]; then
    echo "RESULT guest PASS checks=$CHECKS failed=0 uptime_s=$(now)"
  else
    echo "RESULT guest FAIL checks=$CHECKS failed=$FAILED uptime_s=$(now)"
  fi
  sync
  poweroff -f
}

modprobe qemu_fw_cfg
params=/sys/firmware/qemu_fw_cfg/by_name/opt/s3tgt/params/raw
[ -r "$params" ] || { fail setup "reason=no_fw_cfg_params"; finish; }
# shellcheck source=/dev/null
. "$params"

# The guest stops itself before run.sh's hard limit kills qemu, so a hang still reports.
(
  sleep "$G_WATCHDOG"
  echo "RESULT watchdog FAIL reason=guest_budget_exceeded after_s=$G_WATCHDOG"
  diagnose
  echo "RESULT guest FAIL reason=watchdog"
  poweroff -f
) &

# crc32c_intel needs SSE4.2; crc32c_generic serves when it is missing.
modprobe crc32c_intel 2>/dev/null
modprobe -a virtio_pci virtio_net virtio_rng crc32c_generic sd_mod iscsi_tcp ext4 2>/run/modprobe.err ||
  { fail setup "reason=modprobe_failed"; show modprobe /run/modprobe.err; finish; }

# The only address the guest can reach is 10.0.2.2, which qemu forwards to the target's
# portal on the host loopback: no default route, no DHCP, no DNS, no IPv6.
ip link set lo up
nic=
for n in /sys/class/net/*; do [ "${n##*/}" = lo ] || { nic=${n##*/}; break; }; done
[ -n "$nic" ] || { fail setup "reason=no_network_interface"; finish; }
ip link set "$nic" up
ip addr add 10.0.2.15/32 dev "$nic"
ip route add 10.0.2.2/32 dev "$nic"

echo "InitiatorName=$G_INITIATOR" >/etc/iscsi/initiatorname.iscsi
iscsid -f >/run/iscsid.log 2>&1 &
# `iscsiadm -m session` answers 21 (no sessions) once iscsid listens.
i=0
until iscsiadm -m session >/dev/null 2>&1 || [ $? = 21 ]; do
  i=$((i + 1))
  [ $i -lt 100 ] || { fail setup "reason=iscsid_not_answering"; finish; }
  sleep 0.1
done
echo "STEP iscsid uptime=$(now)"

# ---- SendTargets discovery (a SessionType=Discovery login, RFC 7143 §13.21), optionally with CHAP
set_discovery() { iscsiadm -m discoverydb -t st -p "$G_PORTAL" -o update -n "$1" -v "$2" >/dev/null; }
iscsiadm -m discoverydb -t st -p "$G_PORTAL" -o new >/dev/null
if [ "$G_DISCOVERY_CHAP" = 1 ]; then
  set_discovery discovery.sendtargets.auth.authmethod CHAP
  set_discovery discovery.sendtargets.auth.username "$G_CHAP_USER"
  set_discovery discovery.sendtargets.auth.password "$G_CHAP_SECRET"
  if [ -n "$G_MUTUAL_USER" ]; then
    set_discovery discovery.sendtargets.auth.username_in "$G_MUTUAL_USER"
    set_discovery discovery.sendtargets.auth.password_in "$G_MUTUAL_SECRET"
  fi
fi
t0=$(now)
timeout 60 iscsiadm -m discoverydb -t st -p "$G_PORTAL" --discover >/run/discovery.out 2>&1
rc=$?
# Lines are "<advertised portal>,<tpgt> <iqn>".
advertised=$(awk -v t="$G_TARGET" '$2 == t { print $1; exit }' /run/discovery.out)
listed=$(awk 'NF == 2 && $1 ~ /,[0-9]+$/' /run/discovery.out | wc -l)
TPGT=1
if [ $rc = 0 ] && [ -n "$advertised" ]; then
  TPGT=${advertised##*,}
  pass discovery "targets=$listed advertised=$advertised discovery_s=$(since "$t0")"
else
  [ $rc = 0 ] && reason=target_not_listed || reason=discovery_failed
  fail discovery "rc=$rc targets=$listed reason=$reason"
  show iscsiadm /run/discovery.out
fi

# Discovery recorded the portals the target advertises (its own 127.0.0.1, which here is the
# guest itself): log in through the portals we were given instead.
iscsiadm -m node -o delete >/dev/null 2>&1
set_node_at() { iscsiadm -m node -T "$G_TARGET" -p "$1" -o update -n "$2" -v "$3" >/dev/null; }
set_node() { set_node_at "$G_PORTAL" "$@"; }
new_node() { # portal, tpgt: a node record with the run's CHAP and digest settings
  iscsiadm -m node -o new -T "$G_TARGET" -p "$1,$2" >/dev/null
  if [ -n "$G_CHAP_USER" ]; then
    set_node_at "$1" node.session.auth.authmethod CHAP
    set_node_at "$1" node.session.auth.username "$G_CHAP_USER"
    set_node_at "$1" node.session.auth.password "$G_CHAP_SECRET"
    if [ -n "$G_MUTUAL_USER" ]; then
      set_node_at "$1" node.session.auth.username_in "$G_MUTUAL_USER"
      set_node_at "$1" node.session.auth.password_in "$G_MUTUAL_SECRET"
    fi
  fi
  if [ "$G_DIGEST" = crc32c ]; then
    # Offer only CRC32C: the login fails unless the target agrees (RFC 7143 §13.1).
    set_node_at "$1" 'node.conn[0].iscsi.HeaderDigest' CRC32C
    set_node_at "$1" 'node.conn[0].iscsi.DataDigest' CRC32C
  fi
}
[ -n "${G_PORTAL2:-}" ] || new_node "$G_PORTAL" "$TPGT"

SESSION=0
login() { # check name
  t0=$(now)
  timeout 60 iscsiadm -m node -T "$G_TARGET" -p "$G_PORTAL" --login >/run/login.out 2>&1
  rc=$?
  if [ $rc != 0 ]; then fail "$1" "rc=$rc login_s=$(since "$t0")"; show iscsiadm /run/login.out; return 1; fi
  SESSION=1
  iscsiadm -m session -P 2 >/run/session.out 2>&1
  HDIGEST=$(awk '$1 == "HeaderDigest:" { print $2; exit }' /run/session.out)
  DDIGEST=$(awk '$1 == "DataDigest:" { print $2; exit }' /run/session.out)
  pass "$1" "target=$G_TARGET portal=$G_PORTAL,$TPGT login_s=$(since "$t0") header_digest=$HDIGEST data_digest=$DDIGEST"
}
logout() { # check name
  t0=$(now)
  timeout 60 iscsiadm -m node -T "$G_TARGET" -p "$G_PORTAL" --logout >/run/logout.out 2>&1
  rc=$?
  iscsiadm -m session >/dev/null 2>&1
  left=$?
  SESSION=0
  # 21: no session is left
  if [ $rc = 0 ] && [ $left = 21 ]; then pass "$1" "logout_s=$(since "$t0")"; return 0; fi
  fail "$1" "rc=$rc session_rc=$left"
  show iscsiadm /run/logout.out
  return 1
}

DEV=
find_disk() { # the block device of LUN G_LUN in our session, once the kernel has scanned it
  DEV=
  i=0
  while [ $i -lt 300 ]; do
    for b in /sys/class/iscsi_session/session*/device/target*/*:*:*:"$G_LUN"/block/*; do
      [ -e "$b" ] && [ "$(cat "$b/size")" != 0 ] && { DEV=/dev/${b##*/}; SYSDEV=${b%/block/*}; return 0; }
    done
    i=$((i + 1))
    sleep 0.1
  done
  return 1
}

# The initiator must have seen no I/O error (and, unless a target was killed on purpose, no
# connection failure): the kernel log's lines matching $1, and $2 = 1 when connection errors count.
kernel_log() {
  dmesg >/run/dmesg.txt
  io_errors=$(grep -ciE "$1" /run/dmesg.txt)
  conn_errors=0
  [ "$2" = 0 ] || conn_errors=$(grep -ciE 'conn error|connection.*(failed|timed out)|session recovery timed out' /run/dmesg.txt)
  if [ "$io_errors" = 0 ] && [ "$conn_errors" = 0 ]; then pass kernel-log "io_errors=0 conn_errors=0 target_killed=$((1 - $2))"; else
    fail kernel-log "io_errors=$io_errors conn_errors=$conn_errors"
  fi
  sed 's/^/KLOG| /' /run/dmesg.txt
}

[ -z "${G_PORTAL2:-}" ] || . /multipath.sh

login login || finish
if [ "$G_DIGEST" = crc32c ]; then
  if [ "$HDIGEST" = CRC32C ] && [ "$DDIGEST" = CRC32C ]; then
    pass digest "header=$HDIGEST data=$DDIGEST"
  else
    fail digest "header=$HDIGEST data=$DDIGEST expected=CRC32C"
  fi
fi
if ! find_disk; then
  fail disk "reason=no_block_device_for_lun_$G_LUN"
  logout logout
  finish
fi
blk=${DEV#/dev/}
SIZE=$(($(cat /sys/block/$blk/size) * 512))
trim() { sed 's/ *$//; s/ /_/g' "$1"; }
pass disk "dev=$DEV lun=$G_LUN size_bytes=$SIZE logical_block=$(cat /sys/block/$blk/queue/logical_block_size)\
 physical_block=$(cat /sys/block/$blk/queue/physical_block_size) vendor=$(trim "$SYSDEV/vendor") model=$(trim "$SYSDEV/model")\
 cache=$(sed 's/ /_/g' "$SYSDEV"/scsi_disk/*/cache_type) discard_max=$(cat /sys/block/$blk/queue/discard_max_bytes)"

# ---- smoke: direct I/O that crosses the target's 1 MiB chunk boundaries at odd offsets, read
# back from the target (O_DIRECT bypasses the guest's page cache).
smoke() {
  mib=$((SIZE >> 20))
  r=
  dd if="$DEV" of=/dev/null bs=1M count=2 iflag=direct 2>/run/dd.err || r="$r read_head"
  dd if="$DEV" of=/dev/null bs=1M skip=$((mib - 1)) count=1 iflag=direct 2>>/run/dd.err || r="$r read_tail"
  # 3 MiB at (middle + 192 KiB), 64 KiB blocks: a partial chunk, two whole ones, a partial one.
  at=$(((mib / 2) * 16 + 3))
  head -c $((3 << 20)) /dev/urandom >/run/pattern
  dd if=/run/pattern of="$DEV" bs=64K seek=$at oflag=direct conv=fsync 2>>/run/dd.err || r="$r write"
  dd if="$DEV" of=/run/back bs=64K skip=$at count=48 iflag=direct 2>>/run/dd.err || r="$r read_back"
  cmp -s /run/pattern /run/back || r="$r mismatch"
  # One 4 KiB write inside an already written chunk, then the chunk around it again.
  head -c 4096 /dev/urandom >/run/small
  dd if=/run/small of=/run/pattern bs=4K seek=100 conv=notrunc 2>/dev/null
  dd if=/run/small of="$DEV" bs=4K seek=$((at * 16 + 100)) oflag=direct conv=fsync 2>>/run/dd.err || r="$r small_write"
  dd if="$DEV" of=/run/back bs=64K skip=$at count=48 iflag=direct 2>>/run/dd.err || r="$r small_read_back"
  cmp -s /run/pattern /run/back || r="$r small_mismatch"
  rm -f /run/pattern /run/back /run/small
  if [ -z "$r" ]; then pass smoke "written_kib=3076 offset_kib=$((at * 64))"; else
    fail smoke "reason=$(echo $r | tr ' ' ,)"
    show dd /run/dd.err
  fi
}

# ---- fs: ext4 with files of many sizes, then verified after a fresh login, so every byte
# comes back from the target (and through it from S3 or its cache), not from the guest.
fs() {
  t0=$(now)
  mkfs.ext4 -F -q "$DEV" >/run/mkfs.out 2>&1 || { fail fs-mkfs "rc=$?"; show mkfs /run/mkfs.out; return; }
  pass fs-mkfs "mkfs_s=$(since "$t0")"
  mount -t ext4 "$DEV" /mnt 2>/run/mount.err || { fail fs-write "reason=mount_failed"; show mount /run/mount.err; return; }
  r=
  t0=$(now)
  mkdir -p /mnt/a/b/c
  head -c $((G_FS_MIB << 20)) /dev/urandom >/mnt/big || r="$r big"
  n=0
  for dir in /mnt /mnt/a /mnt/a/b /mnt/a/b/c; do
    for size in 1 511 4096 4097 65536 100000 1048577 131071; do
      head -c "$size" /dev/urandom >"$dir/f$n" || r="$r small"
      n=$((n + 1))
    done
  done
  : >/mnt/empty
  # Sparse: most of it is never written and must read back as zeros.
  truncate -s 64M /mnt/sparse && dd if=/dev/urandom of=/mnt/sparse bs=4K seek=5000 count=3 conv=notrunc 2>/dev/null || r="$r sparse"
  (cd /mnt && find . -type f ! -path './lost+found/*' | sort | xargs sha256sum) >/run/sums || r="$r sums"
  files=$(wc -l </run/sums)
  sync
  cd /
  umount /mnt || r="$r umount"
  if [ -n "$r" ]; then fail fs-write "reason=$(echo $r | tr ' ' ,)"; return; fi
  pass fs-write "files=$files big_mib=$G_FS_MIB write_s=$(since "$t0")"
  logout fs-logout || return
  login fs-login || return
  find_disk || { fail fs-verify "reason=disk_missing_after_login"; return; }
  mount -t ext4 -o ro "$DEV" /mnt 2>/run/mount.err || { fail fs-verify "reason=mount_failed"; show mount /run/mount.err; return; }
  t0=$(now)
  bad=$(cd /mnt && sha256sum -c /run/sums 2>&1 | grep -vc ': OK$')
  cd /
  umount /mnt
  if [ "$bad" = 0 ]; then pass fs-verify "files=$files mismatches=0 verify_s=$(since "$t0")"; else
    fail fs-verify "files=$files mismatches=$bad"
  fi
  e2fsck -f -n "$DEV" >/run/fsck.out 2>&1
  rc=$?
  if [ $rc = 0 ]; then pass fs-fsck "rc=0"; else fail fs-fsck "rc=$rc"; show fsck /run/fsck.out; fi
}

# ---- fio: random writes verified by CRC32C as they go (verify_backlog), with 4 KiB blocks
# inside chunks and 768 KiB blocks that straddle chunks and need R2T (> FirstBurstLength).
fio_run() {
  mib=$((SIZE >> 20))
  cat >/run/fio.job <<EOF
[global]
filename=$DEV
direct=1
ioengine=libaio
rw=randwrite
verify=crc32c
verify_backlog=32
verify_fatal=1
verify_state_save=0
time_based
runtime=$G_FIO_SECONDS
group_reporting
[small]
bs=4k
iodepth=16
offset=0
size=$((mib / 8))m
[large]
bs=768k
iodepth=4
offset=$((mib / 4))m
size=$((mib / 4))m
EOF
  timeout $((G_FIO_SECONDS + 90)) fio --output-format=terse --terse-version=3 /run/fio.job >/run/fio.out 2>/run/fio.err
  rc=$?
  # Terse v3: field 5 error, 6 read KiB (the verify reads), 47 write KiB, 49 write IOPS.
  line=$(grep '^3;' /run/fio.out | tail -n1)
  # shellcheck disable=SC2046 # split into $1..$4 on purpose
  set -- $(echo "$line" | awk -F';' '{ print $5, int($6 / 1024), int($47 / 1024), int($49) }')
  if [ $rc = 0 ] && [ "${1:-x}" = 0 ] && [ "${2:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ]; then
    pass fio "written_mib=$3 verified_mib=$2 write_iops=$4 runtime_s=$G_FIO_SECONDS"
  else
    fail fio "rc=$rc error=${1:-none} verified_mib=${2:-0} written_mib=${3:-0}"
    show fio /run/fio.err
    show fio /run/fio.out 10
  fi
}

# ---- crash: ext4 with files, and fio writing and verifying a file in it; a few seconds into
# fio the guest prints "INFO crash_window_open" and the host kills the target (kill -9) and
# starts it again. The initiator's session recovery reconnects, the commands in flight are
# retried, fio goes on verifying every block it wrote (before the kill too), and afterwards
# fsck is clean and the files verify.
CRASHED=0
crash() {
  CRASHED=1
  # The restart replays the journal before it serves: give session recovery the 120 s the
  # README recommends for S3 LUNs (iscsid.conf's 15 s suits the other modes).
  for t in /sys/class/iscsi_session/session*/recovery_tmo; do echo 120 >"$t"; done
  mkfs.ext4 -F -q "$DEV" >/run/mkfs.out 2>&1 || { fail crash-fio "reason=mkfs_failed"; show mkfs /run/mkfs.out; return; }
  mount -t ext4 "$DEV" /mnt 2>/run/mount.err || { fail crash-fio "reason=mount_failed"; show mount /run/mount.err; return; }
  mkdir -p /mnt/d
  for size in 1 4097 65536 1048577 3000000; do head -c "$size" /dev/urandom >"/mnt/d/f$size"; done
  (cd /mnt && find d -type f | sort | xargs sha256sum) >/run/crash-sums
  sync
  cat >/run/crash.job <<EOF
[crash]
filename=/mnt/fio.dat
size=48m
direct=1
ioengine=libaio
rw=randwrite
bs=4k
iodepth=16
verify=crc32c
verify_backlog=16
verify_fatal=1
verify_state_save=0
time_based
runtime=$G_FIO_SECONDS
EOF
  t0=$(now)
  timeout $((G_FIO_SECONDS + 150)) fio --output-format=terse --terse-version=3 /run/crash.job >/run/fio.out 2>/run/fio.err &
  fio_pid=$!
  sleep 4
  echo "INFO crash_window_open uptime=$(now)"
  wait $fio_pid
  rc=$?
  line=$(grep '^3;' /run/fio.out | tail -n1)
  # shellcheck disable=SC2046 # split into $1..$3 on purpose
  set -- $(echo "$line" | awk -F';' '{ print $5, int($6 / 1024), int($47 / 1024) }')
  if [ $rc = 0 ] && [ "${1:-x}" = 0 ] && [ "${2:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ]; then
    pass crash-fio "written_mib=$3 verified_mib=$2 fio_s=$(since "$t0")"
  else
    fail crash-fio "rc=$rc error=${1:-none} verified_mib=${2:-0} written_mib=${3:-0}"
    show fio /run/fio.err
    show fio /run/fio.out 10
  fi
  sync
  cd /
  umount /mnt || fail crash-fsck "reason=umount_failed"
  e2fsck -f -n "$DEV" >/run/fsck.out 2>&1
  rc=$?
  if [ $rc = 0 ]; then pass crash-fsck "rc=0"; else fail crash-fsck "rc=$rc"; show fsck /run/fsck.out; fi
  mount -t ext4 -o ro "$DEV" /mnt 2>/run/mount.err || { fail crash-files "reason=mount_failed"; return; }
  bad=$(cd /mnt && sha256sum -c /run/crash-sums 2>&1 | grep -vc ': OK$')
  cd /
  umount /mnt
  if [ "$bad" = 0 ]; then pass crash-files "files=$(wc -l </run/crash-sums) mismatches=0"; else fail crash-files "mismatches=$bad"; fi
}

for mode in $G_MODES; do
  case $mode in
    smoke) smoke ;;
    fs) fs ;;
    fio) fio_run ;;
    crash) crash ;;
  esac
  # A failed re-login inside fs leaves no session for what follows.
  if [ $SESSION = 0 ]; then
    login login-again && find_disk || break
  fi
done

[ $SESSION = 1 ] && logout logout
# The crash mode kills the target on purpose: connection errors are expected there, I/O errors never.
kernel_log 'I/O error|EXT4-fs error|Sense Key|critical medium|blk_update_request' $((1 - CRASHED))
finish
