# Mode multipath of the test guest, sourced by /init (init.sh) after discovery when run.sh got
# --portal2: the LUN through both nodes of an s3tgt HA pair (docs/ha.md), one iSCSI session to
# each, under dm-multipath with implicit ALUA (multipath.conf). ext4 on the multipath device,
# fio writing and verifying a file in it, and a probe that writes and reads 4 KiB with O_DIRECT
# and prints `INFO io n=N t0=UPTIME t1=UPTIME` per completion. A few seconds into fio the guest
# prints "INFO multipath_io_running" and the host acts on the pair while fio runs (ha-guest.test.ts:
# `s3tgt lun move` to node b and back, then kill -9 of the active node, then node a restarted).
# On a hand-over the old node's path turns standby (02/04/0B) and dm-multipath moves to the other
# group; on the kill iSCSI gives up on that path after replacement_timeout and dm-multipath queues
# I/O (no_path_retry) until the standby node has taken the LUN over and its path is reinstated.
# fio must finish with every block verified, fsck must be clean. Ends with finish (power off).

# iSCSI fails the commands of a dead path after this long, so dm-multipath can retry them on
# another (open-iscsi's default is 120 s; 5 s is the usual value under dm-multipath). NOP-Outs
# every 5 s, 5 s to answer, notice a node that hangs without closing its connections.
MP_REPLACEMENT_TIMEOUT=5
MP_NOOP=5
# Queueing lasts no_path_retry checks of polling_interval seconds (multipath.conf): I/O fails
# only when no path served for replacement_timeout + that long after a node died.
mp_conf() { awk -v k="$1" '$1 == k { print $2; exit }' /etc/multipath.conf; }
MP_NO_PATH_S=$((MP_REPLACEMENT_TIMEOUT + $(mp_conf no_path_retry) * $(mp_conf polling_interval)))
MP_FIO_FILE_MIB=32

tpgt_of() { # guest portal -> the portal group tag discovery advertised for its port
  awk -v t="$G_TARGET" -v p=":${1##*:}," '$2 == t && index($1, p) { sub(/.*,/, "", $1); print $1; exit }' /run/discovery.out
}

path_disk() { # guest portal -> sdX of LUN G_LUN in the session to it (empty until scanned)
  for s in /sys/class/iscsi_session/session*; do
    [ "$(cat "/sys/class/iscsi_connection/connection${s##*session}:0/persistent_port" 2>/dev/null)" = "${1##*:}" ] || continue
    for b in "$s"/device/target*/*:*:*:"$G_LUN"/block/*; do
      [ -e "$b" ] && [ "$(cat "$b/size")" != 0 ] && { echo "${b##*/}"; return; }
    done
  done
}

mp_paths() { multipathd show paths raw format "%d %t %T %p" 2>/dev/null; } # dev dm_st chk_st prio
mp_path() { mp_paths | awk -v d="$1" '$1 == d { print $2 "/" $3 "/" $4; exit }'; }

mp_diagnose() {
  multipath -ll >/run/mp-ll.out 2>&1
  show multipath /run/mp-ll.out
  show multipathd /run/multipathd.log 60
}

# Unmounts, removes the map, stops multipathd, logs out of both sessions, checks the kernel log.
mp_end() {
  cd /
  umount /mnt 2>/dev/null
  [ "$FAILED" = 0 ] || mp_diagnose
  [ -z "${MPNAME:-}" ] || multipath -f "$MPNAME" >/run/mp-flush.out 2>&1 || show multipath /run/mp-flush.out
  [ -z "${MPD_PID:-}" ] || { kill "$MPD_PID" 2>/dev/null; wait "$MPD_PID" 2>/dev/null; }
  if [ $SESSION = 1 ]; then
    t0=$(now)
    timeout 60 iscsiadm -m node -T "$G_TARGET" --logout >/run/logout.out 2>&1
    rc=$?
    iscsiadm -m session >/dev/null 2>&1
    left=$?
    if [ $left = 21 ]; then pass logout "sessions=2 rc=$rc logout_s=$(since "$t0")"; else
      fail logout "rc=$rc session_rc=$left"
      show iscsiadm /run/logout.out
    fi
  fi
  # A path going away is expected (the host kills a node); an error on the multipath device or
  # in ext4 never is. Errors of the dead path's sd device are what dm-multipath retries elsewhere.
  kernel_log 'EXT4-fs (error|warning)|I/O error, dev dm-|Buffer I/O error on dev dm-' 0
  finish
}

modprobe -a dm_multipath dm_service_time scsi_dh_alua 2>/run/modprobe.err ||
  { fail mp-login "reason=modprobe_failed"; show modprobe /run/modprobe.err; finish; }

# ---- a session through each node's portal, with the portal group tag that node advertises
t0=$(now)
paths=
for p in "$G_PORTAL" "$G_PORTAL2"; do
  tpgt=$(tpgt_of "$p")
  [ -n "$tpgt" ] || { fail mp-login "reason=portal_not_advertised portal=$p"; show discovery /run/discovery.out; mp_end; }
  new_node "$p" "$tpgt"
  set_node_at "$p" node.session.timeo.replacement_timeout $MP_REPLACEMENT_TIMEOUT
  set_node_at "$p" 'node.conn[0].timeo.noop_out_interval' $MP_NOOP
  set_node_at "$p" 'node.conn[0].timeo.noop_out_timeout' $MP_NOOP
  timeout 60 iscsiadm -m node -T "$G_TARGET" -p "$p" --login >/run/login.out 2>&1
  rc=$?
  [ $rc = 0 ] || { fail mp-login "rc=$rc portal=$p"; show iscsiadm /run/login.out; mp_end; }
  SESSION=1
  paths="$paths${paths:+,}$p,$tpgt"
done
i=0
until DISK_A=$(path_disk "$G_PORTAL") && DISK_B=$(path_disk "$G_PORTAL2") && [ -n "$DISK_A" ] && [ -n "$DISK_B" ]; do
  i=$((i + 1))
  [ $i -lt 300 ] || { fail mp-login "reason=disk_missing a=$DISK_A b=$DISK_B"; mp_end; }
  sleep 0.1
done
pass mp-login "paths=$paths disk_a=$DISK_A disk_b=$DISK_B login_s=$(since "$t0")\
 handler_a=$(cat /sys/block/$DISK_A/device/dh_state) handler_b=$(cat /sys/block/$DISK_B/device/dh_state)"

# ---- multipath maps both disks into one device: node a's path group first (active/optimized),
# node b's (standby) behind it; multipathd then watches the paths.
# No udevd runs here, and multipath only considers block devices udev has initialized: an
# entry in udev's database (an "I:" line, the time of initialization) marks them so.
mkdir -p /run/udev/data
for d in $DISK_A $DISK_B; do echo "I:$(date +%s)000000" >"/run/udev/data/b$(cat /sys/block/$d/dev)"; done
t0=$(now)
# The map is made by the command, not the daemon: a map multipathd creates waits for a udev
# event (missing_uev_wait_timeout, 30 s) before it may be reloaded.
timeout 60 multipath -v3 >/run/multipath.out 2>&1 || { fail mp-map "reason=multipath_failed"; show multipath /run/multipath.out 60; mp_end; }
multipathd -d -s -v3 >/run/multipathd.log 2>&1 &
MPD_PID=$!
MPDEV=
MPNAME=
i=0
while [ -z "$MPDEV" ]; do
  for d in /sys/block/dm-*; do
    case $(cat "$d/dm/uuid" 2>/dev/null) in mpath-*) ;; *) continue ;; esac
    [ -e "$d/slaves/$DISK_A" ] && [ -e "$d/slaves/$DISK_B" ] && { MPDEV=/dev/${d##*/}; MPNAME=$(cat "$d/dm/name"); }
  done
  [ -n "$MPDEV" ] && [ -n "$(mp_path "$DISK_A")" ] && [ -n "$(mp_path "$DISK_B")" ] && break
  MPDEV=
  i=$((i + 1))
  [ $i -lt 300 ] || { fail mp-map "reason=no_map_with_both_paths"; mp_end; }
  sleep 0.2
done
STATE_A=$(mp_path "$DISK_A")
STATE_B=$(mp_path "$DISK_B")
mp_paths | sed 's/^/INFO mp-path /'
# alua prio: 50 active/optimized, 1 standby (+80 for a preferred group that is not optimized).
if [ "${STATE_A##*/}" -gt "${STATE_B##*/}" ]; then
  pass mp-map "dev=$MPDEV wwid=$MPNAME a=$STATE_A b=$STATE_B no_path_s=$MP_NO_PATH_S map_s=$(since "$t0")"
else
  fail mp-map "dev=$MPDEV a=$STATE_A b=$STATE_B reason=node_a_not_preferred"
  mp_end
fi

# ---- ext4, the probe, fio
t0=$(now)
mkfs.ext4 -F -q "$MPDEV" >/run/mkfs.out 2>&1 || { fail mp-fio "reason=mkfs_failed"; show mkfs /run/mkfs.out; mp_end; }
mount -t ext4 "$MPDEV" /mnt 2>/run/mount.err || { fail mp-fio "reason=mount_failed"; show mount /run/mount.err; mp_end; }
# Written in full beforehand, so fio starts writing at once instead of laying the file out.
dd if=/dev/zero of=/mnt/fio.dat bs=1M count=$MP_FIO_FILE_MIB conv=fsync 2>/dev/null &&
  dd if=/dev/zero of=/mnt/probe bs=1M count=1 conv=fsync 2>/dev/null ||
  { fail mp-fio "reason=prefill_failed"; mp_end; }
echo "INFO mp_fs_ready dev=$MPDEV mkfs_and_fill_s=$(since "$t0")"

# One 4 KiB O_DIRECT write and read at a time, a completion line each: the host reads when I/O
# stopped and when it came back.
head -c 4096 /dev/urandom >/run/probe.blk
: >/run/probe.log
(
  n=0
  while [ ! -e /run/probe.stop ]; do
    t0=$(now)
    if dd if=/run/probe.blk of=/mnt/probe bs=4k seek=$((n % 256)) count=1 oflag=direct conv=notrunc 2>/dev/null &&
      dd if=/mnt/probe of=/dev/null bs=4k skip=$((n % 256)) count=1 iflag=direct 2>/dev/null; then
      line="INFO io n=$n t0=$t0 t1=$(now)"
    else
      line="INFO io_error n=$n t0=$t0 t1=$(now)"
    fi
    echo "$line"
    echo "$line" >>/run/probe.log
    n=$((n + 1))
    sleep 0.2
  done
) &
probe_pid=$!

cat >/run/mp.job <<EOF
[multipath]
filename=/mnt/fio.dat
size=${MP_FIO_FILE_MIB}m
direct=1
ioengine=libaio
rw=randwrite
bs=4k
iodepth=8
verify=crc32c
verify_backlog=16
verify_fatal=1
verify_state_save=0
time_based
runtime=$G_FIO_SECONDS
EOF
t0=$(now)
timeout $((G_FIO_SECONDS + MP_NO_PATH_S + 90)) fio --output-format=terse --terse-version=3 /run/mp.job >/run/fio.out 2>/run/fio.err &
fio_pid=$!
sleep 5
echo "INFO multipath_io_running uptime=$(now) no_path_s=$MP_NO_PATH_S"
wait $fio_pid
rc=$?
fio_s=$(since "$t0")
touch /run/probe.stop
wait $probe_pid
line=$(grep '^3;' /run/fio.out | tail -n1)
# shellcheck disable=SC2046 # split into $1..$3 on purpose
set -- $(echo "$line" | awk -F';' '{ print $5, int($6 / 1024), int($47 / 1024) }')
if [ $rc = 0 ] && [ "${1:-x}" = 0 ] && [ "${2:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ]; then
  pass mp-fio "written_mib=$3 verified_mib=$2 fio_s=$fio_s"
else
  fail mp-fio "rc=$rc error=${1:-none} verified_mib=${2:-0} written_mib=${3:-0}"
  show fio /run/fio.err
  show fio /run/fio.out 10
fi

# The probe's view: completions, errors, and the longest wait between two completions.
set -- $(awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] } }
  $2 == "io_error" { e++ } $2 == "io" { n++; if (last != "" && v["t1"] - last > gap) gap = v["t1"] - last; last = v["t1"] }
  END { printf "%d %d %.2f\n", n, e, gap }' /run/probe.log)
disabled=$(grep -c 'Disable queueing' /run/multipathd.log)
if [ "$1" -gt 0 ] && [ "$2" = 0 ] && [ "$disabled" = 0 ]; then
  pass mp-io "probes=$1 errors=0 longest_wait_s=$3 queueing_disabled=0"
else
  fail mp-io "probes=$1 errors=$2 longest_wait_s=$3 queueing_disabled=$disabled"
fi
STATE_A=$(mp_path "$DISK_A")
STATE_B=$(mp_path "$DISK_B")
mp_paths | sed 's/^/INFO mp-path /'
# Every path failure and reinstatement dm-multipath logged, with its kernel time (the clock of
# /proc/uptime): the host places its own events (a hand-over, node a back as standby) on that
# clock and tells expected failures (a path whose node went standby or died) from flapping.
dmesg | awk '/multipath: .*(Failing|Reinstating) path/ { t = $0; sub(/^\[ */, "", t); sub(/\].*/, "", t); d = $NF; sub(/\.$/, "", d)
  print "INFO mp-" ($0 ~ /Failing/ ? "fail" : "reinstate") " t=" t " dev=" d }'
pass mp-paths "a=$STATE_A b=$STATE_B a_dev=$(cat /sys/block/$DISK_A/dev) b_dev=$(cat /sys/block/$DISK_B/dev)\
 failed_paths_logged=$(dmesg | grep -c 'multipath: .*Failing path')"

sync
cd /
if umount /mnt; then
  e2fsck -f -n "$MPDEV" >/run/fsck.out 2>&1
  rc=$?
  if [ $rc = 0 ]; then pass mp-fsck "rc=0"; else fail mp-fsck "rc=$rc"; show fsck /run/fsck.out; fi
else
  fail mp-fsck "reason=umount_failed"
fi
mp_end
