#!/usr/bin/env bash
# Runs the Linux kernel iSCSI initiator (open-iscsi + iscsi_tcp + sd_mod) in a throw-away qemu
# guest against a target listening on this host's loopback, and reports one line per check:
#
#   RESULT <check> PASS|FAIL key=value...
#
# Exit status: 0 every check passed, 1 a check failed, 2 usage or setup error, 3 timed out.
# See README.md beside this file for the options and what each mode checks.
set -uo pipefail
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=$(realpath -m "${GUEST_CACHE_DIR:-$here/../../.cache/guest}")

usage() {
  cat <<'EOF'
usage: run.sh --portal 127.0.0.1:PORT --target IQN [options]
  --portal2 127.0.0.1:PORT the other node of an HA pair (mode multipath: a path through each)
  --lun N                  LUN to test (default 0)
  --mode LIST              comma-separated checks: smoke, fs, fio, or all (default smoke);
                           multipath (with --portal2) runs alone
  --chap-user U --chap-secret S          CHAP, the initiator authenticating to the target
  --mutual-user U --mutual-secret S      mutual CHAP (node.session.auth.username_in/password_in)
  --discovery-chap         use the same CHAP settings for SendTargets discovery
  --digest none|crc32c     HeaderDigest and DataDigest to insist on (default none)
  --fs-mib N               size of the big file of the fs check (default 16)
  --fio-seconds N          run time of the fio check (default 10; multipath: 60)
  --timeout S              hard limit of the guest's run (default from the modes)
  -v, --verbose            show the whole guest console
EOF
}
die() { echo "RESULT setup FAIL reason=$1"; [ -z "${2:-}" ] || echo "$2" >&2; exit 2; }

portal='' portal2='' target='' lun=0 modes=smoke digest=none verbose=0 limit=0
chap_user='' chap_secret='' mutual_user='' mutual_secret='' discovery_chap=0
fs_mib=16 fio_seconds=''
while [ $# -gt 0 ]; do
  case $1 in
    --portal) portal=${2:-}; shift 2 ;;
    --portal2) portal2=${2:-}; shift 2 ;;
    --target) target=${2:-}; shift 2 ;;
    --lun) lun=${2:-}; shift 2 ;;
    --mode) modes=${2:-}; shift 2 ;;
    --chap-user) chap_user=${2:-}; shift 2 ;;
    --chap-secret) chap_secret=${2:-}; shift 2 ;;
    --mutual-user) mutual_user=${2:-}; shift 2 ;;
    --mutual-secret) mutual_secret=${2:-}; shift 2 ;;
    --discovery-chap) discovery_chap=1; shift ;;
    --digest) digest=${2:-}; shift 2 ;;
    --fs-mib) fs_mib=${2:-}; shift 2 ;;
    --fio-seconds) fio_seconds=${2:-}; shift 2 ;;
    --timeout) limit=${2:-}; shift 2 ;;
    -v | --verbose) verbose=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die bad_argument "unknown argument: $1" ;;
  esac
done

# ---- validation
[[ $portal =~ ^(127\.0\.0\.1|localhost):([0-9]{1,5})$ ]] || die bad_portal "--portal must be 127.0.0.1:PORT (the guest reaches only the host loopback)"
port=${BASH_REMATCH[2]}
port2=''
if [ -n "$portal2" ]; then
  [[ $portal2 =~ ^(127\.0\.0\.1|localhost):([0-9]{1,5})$ ]] || die bad_portal "--portal2 must be 127.0.0.1:PORT"
  port2=${BASH_REMATCH[2]}
  [ "$port2" != "$port" ] || die bad_portal "--portal2 must differ from --portal"
fi
[ -n "$target" ] || die no_target "--target IQN is required"
[[ $lun =~ ^[0-9]+$ ]] || die bad_lun "--lun must be a number"
[ "$modes" = all ] && modes=smoke,fs,fio
for m in ${modes//,/ }; do
  case $m in smoke | fs | fio | crash | multipath) ;; *) die bad_mode "unknown mode $m" ;; esac
done
# multipath logs in through both portals and runs on its own; the other modes use one path.
if [[ ,$modes, == *,multipath,* ]]; then
  [ "$modes" = multipath ] || die bad_mode "mode multipath runs alone"
  [ -n "$port2" ] || die bad_mode "mode multipath needs --portal2"
  fio_seconds=${fio_seconds:-60}
else
  [ -z "$port2" ] || die bad_mode "--portal2 is for mode multipath"
fi
fio_seconds=${fio_seconds:-10}
case $digest in none | crc32c) ;; *) die bad_digest "--digest must be none or crc32c" ;; esac
for n in fs_mib fio_seconds limit; do [[ ${!n} =~ ^[0-9]+$ ]] || die bad_number "--${n//_/-} must be a number"; done
[ -z "$chap_user" ] || [ -n "$chap_secret" ] || die bad_chap "--chap-user needs --chap-secret"
[ -z "$mutual_user" ] || [ -n "$chap_user" ] || die bad_chap "mutual CHAP needs --chap-user too"
[ -z "$mutual_user" ] || [ -n "$mutual_secret" ] || die bad_chap "--mutual-user needs --mutual-secret"
[ "$discovery_chap" = 0 ] || [ -n "$chap_user" ] || die bad_chap "--discovery-chap needs --chap-user"
command -v qemu-system-x86_64 >/dev/null || die no_qemu "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"

# Fail before the boot when nothing listens: a guest run takes a while to say the same.
for p in $port $port2; do
  if ! timeout 2 bash -c ": </dev/tcp/127.0.0.1/$p" 2>/dev/null; then
    echo "RESULT precheck FAIL reason=nothing_listening portal=127.0.0.1:$p"
    exit 1
  fi
done

started=$EPOCHREALTIME
images=$("$here/build.sh" "$cache") || die build_failed "see build.sh's message above"

# ---- time budget: software emulation (no usable KVM here) is slow; a guest-side watchdog
# reports before the host-side limit kills qemu.
if [ "$limit" = 0 ]; then
  limit=120
  for m in ${modes//,/ }; do
    case $m in
      smoke) limit=$((limit + 30)) ;; fs) limit=$((limit + 90 + 4 * fs_mib)) ;; fio) limit=$((limit + 60 + fio_seconds)) ;;
      crash) limit=$((limit + 180 + fio_seconds)) ;; multipath) limit=$((limit + 150 + fio_seconds)) ;;
    esac
  done
fi
watchdog=$((limit - 15))
[ "$watchdog" -ge 30 ] || die bad_timeout "--timeout must be at least 45"

runs=$cache/runs
mkdir -p "$runs"
run_dir=$(mktemp -d "$runs/$(date +%Y%m%d-%H%M%S)-XXXX")
# Keep the console logs of the last 10 runs for post-mortems.
ls -1dt "$runs"/*/ | tail -n +11 | xargs -r rm -rf
console=$run_dir/console.log
# The path goes into qemu's -netdev option and slirp's command line: no commas, no spaces.
[[ $run_dir =~ ^[A-Za-z0-9/._+-]+$ ]] || die bad_cache_dir "cache path $run_dir must not contain commas or spaces"

quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; } # for the guest's `. params`
for v in "$target" "$chap_user" "$chap_secret" "$mutual_user" "$mutual_secret"; do
  [[ $v != *$'\n'* ]] || die bad_argument "values must be one line"
done
(
  umask 077
  cat >"$run_dir/params" <<EOF
G_PORTAL=10.0.2.2:$port
G_PORTAL2=${port2:+10.0.2.2:$port2}
G_TARGET=$(quote "$target")
G_LUN=$lun
G_MODES='${modes//,/ }'
G_INITIATOR=iqn.2026-11.io.s3tgt:guest
G_CHAP_USER=$(quote "$chap_user")
G_CHAP_SECRET=$(quote "$chap_secret")
G_MUTUAL_USER=$(quote "$mutual_user")
G_MUTUAL_SECRET=$(quote "$mutual_secret")
G_DISCOVERY_CHAP=$discovery_chap
G_DIGEST=$digest
G_FS_MIB=$fs_mib
G_FIO_SECONDS=$fio_seconds
G_WATCHDOG=$watchdog
EOF
)

# Every guest TCP connection to 10.0.2.2:PORT becomes one relay process to that portal. slirp
# runs it in a session of its own, so qemu's death does not reach it: record its pid to end it.
# Its stderr would reach the guest through the connection: nc's "Connection refused" while a
# node is down is no iSCSI PDU.
# restrict=on: slirp drops every guest packet except those to a guestfwd address and port, so
# the guest can reach nothing but the portals, whatever it tries. slirp keeps its own host
# address and DNS off 10.0.2.2 because a guestfwd must not use them.
netdev="user,id=net0,ipv6=off,restrict=on,net=10.0.2.0/24,host=10.0.2.1,dns=10.0.2.3"
for p in $port $port2; do
  cat >"$run_dir/relay-$p" <<EOF
#!/bin/sh
echo \$\$ >>'$run_dir/relays'
exec /bin/busybox nc 127.0.0.1 $p 2>/dev/null
EOF
  chmod 755 "$run_dir/relay-$p"
  netdev+=",guestfwd=tcp:10.0.2.2:$p-cmd:$run_dir/relay-$p"
done
# shellcheck disable=SC2054 # the commas belong to qemu's option values
qemu=(qemu-system-x86_64 -name s3tgt-guest -machine q35 -accel tcg,thread=multi -cpu max -smp 2 -m 1024
  -nodefaults -no-user-config -display none -no-reboot
  -kernel "$images/vmlinux" -initrd "$images/initramfs.img"
  -append "console=ttyS0 quiet loglevel=1 panic=-1 ipv6.disable=1 mitigations=off tsc=reliable"
  -fw_cfg "name=opt/s3tgt/params,file=$run_dir/params"
  -netdev "$netdev" -device virtio-net-pci,netdev=net0
  -device virtio-rng-pci
  -serial stdio -monitor none)

qemu_pid=''
stop_all() {
  # `timeout` forwards the signal to qemu; the relays are ended one by one, by pid.
  [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null
  [ -z "$qemu_pid" ] || wait "$qemu_pid" 2>/dev/null
  local pid cmd
  if [ -f "$run_dir/relays" ]; then
    while read -r pid; do
      cmd=$(cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ')
      [[ $cmd == "/bin/busybox nc 127.0.0.1 $port " || (-n $port2 && $cmd == "/bin/busybox nc 127.0.0.1 $port2 ") ]] && kill "$pid" 2>/dev/null
    done <"$run_dir/relays"
  fi
  rm -f "$run_dir/params"
}
trap stop_all EXIT
trap 'echo "RESULT host FAIL reason=interrupted"; exit 3' INT TERM HUP

echo "INFO run_dir=$run_dir portal=127.0.0.1:$port guest_portal=10.0.2.2:$port${port2:+ portal2=127.0.0.1:$port2 guest_portal2=10.0.2.2:$port2} modes=${modes} digest=$digest kernel=$(cat "$images/kver") timeout_s=$limit"
# `timeout` bounds qemu even when this script is killed with SIGKILL.
qemu_started=$EPOCHREALTIME
exec 3< <(exec timeout -k 5 "$limit" "${qemu[@]}" </dev/null 2>&1)
qemu_pid=$!
boot_deadline=$((SECONDS + 120))
booted=''
line=''
# The guest console, line by line. A read that times out keeps its partial line in $part.
while :; do
  IFS= read -r -t 1 -u 3 part
  rc=$?
  line+=$part
  if [ $rc -gt 128 ]; then
    if [ -z "$booted" ] && [ $SECONDS -ge $boot_deadline ]; then
      echo "RESULT boot FAIL reason=init_not_reached_in_120s"
      kill "$qemu_pid" 2>/dev/null
      boot_deadline=$((SECONDS + 3600))
    fi
    continue
  fi
  [ $rc = 0 ] || [ -n "$line" ] || break
  line=${line%$'\r'}
  printf '%s\n' "$line" >>"$console"
  [[ $line != "STEP init "* ]] || booted=$EPOCHREALTIME
  case $line in
    RESULT\ * | INFO\ * | LOG\|*) echo "$line" ;;
    *) [ "$verbose" = 0 ] || echo "console| $line" ;;
  esac
  line=''
  [ $rc = 0 ] || break
done
wait "$qemu_pid"
qemu_rc=$?
qemu_pid=''
ended=$EPOCHREALTIME

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
[ -z "$booted" ] || echo "RESULT boot PASS to_init_s=$(secs "$qemu_started" "$booted")"
failed=$(grep '^RESULT [^ ]* FAIL' "$console" | grep -vc '^RESULT guest ')
summary="failed_checks=$failed total_s=$(secs "$started" "$ended") qemu_rc=$qemu_rc log=$console"
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
  echo "RESULT host FAIL reason=timeout_after_${limit}s $summary"
  exit 3
fi
if [ "$qemu_rc" = 0 ] && [ "$failed" = 0 ] && grep -q '^RESULT guest PASS' "$console"; then
  echo "RESULT host PASS $summary"
  exit 0
fi
# What the lines above do not show yet: kernel messages such as a panic.
[ "$verbose" = 1 ] || grep -vE '^(RESULT |INFO |LOG\||KLOG\|)' "$console" | tail -n 20 | sed 's/^/console| /'
echo "RESULT host FAIL $summary"
exit 1
