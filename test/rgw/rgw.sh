#!/usr/bin/env bash
# A throw-away single-node Ceph cluster (one monitor, one memstore OSD) with a RADOS Gateway,
# bound to 127.0.0.1 only: the real S3 server the s3tgt tests and benchmarks run against.
#
#   rgw.sh start DIR RGW_PORT MON_PORT   -> prints S3_ENDPOINT=..., exits when S3 answers
#   rgw.sh stop DIR                      -> stops the daemons it started and removes DIR
#
# Environment: OBJECTSTORE=memstore|bluestore (default memstore), ACCESS_KEY, SECRET_KEY,
# START_TIMEOUT (seconds for the whole start, default 90; on expiry the daemons are stopped and
# the tail of each log is printed, so a caller can retry with fresh ports).
# Needs: apt-get install --no-install-recommends radosgw ceph-mon ceph-osd ceph-common
set -euo pipefail

cmd=${1:?usage: rgw.sh start|stop DIR [RGW_PORT MON_PORT]}
dir=${2:?DIR}
access=${ACCESS_KEY:-s3tgt-test}
secret=${SECRET_KEY:-s3tgt-test-secret}
store=${OBJECTSTORE:-memstore}

is_running() { # pidfile -> true when the process lives and is not a zombie
  [ -f "$1" ] || return 1
  local pid; pid=$(cat "$1")
  [ -r "/proc/$pid/stat" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]
}

stop_all() {
  for d in rgw osd mon; do
    local f="$dir/$d.pid"
    is_running "$f" || continue
    local pid; pid=$(cat "$f")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do is_running "$f" || break; sleep 0.1; done
    is_running "$f" && kill -KILL "$pid" 2>/dev/null || true
  done
}

if [ "$cmd" = stop ]; then
  [ -d "$dir" ] || exit 0
  stop_all
  rm -rf "$dir"
  exit 0
fi

rgw_port=${3:?RGW_PORT}
mon_port=${4:?MON_PORT}
for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph-authtool ceph; do
  command -v "$b" >/dev/null || { echo "missing $b (apt-get install radosgw ceph-mon ceph-osd ceph-common)" >&2; exit 2; }
done
rm -rf "$dir"
mkdir -p "$dir/log" "$dir/run" "$dir/mon" "$dir/osd" "$dir/rgw"
conf="$dir/ceph.conf"
fsid=$(cat /proc/sys/kernel/random/uuid)

# Single node: replication 1, few placement groups, messenger v1 on loopback, and fast
# paxos commits so the gateway's pools are created in seconds rather than tens of seconds.
cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mon_port
mon initial members = a
public addr = 127.0.0.1
ms bind msgr2 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $dir/keyring
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
log to stderr = false
err to stderr = false
mon data = $dir/mon
osd data = $dir/osd
osd objectstore = $store
osd fast shutdown = false
memstore device bytes = 8589934592
bluestore block create = true
bluestore block size = 21474836480
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 5
# A monitor refuses to start with less than 5 % of its disk free by default: a test machine's
# disk, not this throw-away cluster's data (8 GiB of memstore in RAM), is what that measures.
mon data avail crit = 1
mon max pg per osd = 1000
paxos propose interval = 0.05
paxos min wait = 0.01
[client.rgw]
rgw data = $dir/rgw
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw thread pool size = 256
rgw enable usage log = false
rgw enable ops log = false
# Server-side encryption for test/integration/s3-sse.test.ts: SSE-C over plain HTTP (loopback
# only), and SSE-KMS with the "testing" backend's static key (a fixed test value, not a secret).
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=c3RhdGljIHRlc3Qga2V5IGZvciBzM3RndCBzc2UtMDE=
CONF

kt() { ceph-authtool "$dir/keyring" "$@" >/dev/null; }
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
kt --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *'
kt --gen-key -n osd.0 --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd'
kt --gen-key -n client.rgw --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
monmaptool --create --clobber --fsid "$fsid" --addv a "[v1:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
timeout 60 ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"

daemon() { # name command...: run in the foreground mode, in the background, remember the pid
  local name=$1; shift
  nohup "$@" >>"$dir/log/$name.out" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}
ceph_() { timeout 15 ceph -c "$conf" --connect-timeout 5 "$@"; }
# One wall-clock budget for the whole start: a step that hangs (a command's own timeout is up
# to 15 s per try) cannot stretch the start past it.
deadline=$((SECONDS + ${START_TIMEOUT:-90}))
show_logs() {
  for f in "$dir"/log/*.out "$dir"/log/mon.a.log "$dir"/log/osd.0.log "$dir"/log/client.rgw.log; do
    [ -s "$f" ] || continue
    echo "--- tail of $f" >&2
    tail -n 8 "$f" >&2
  done
}
wait_for() { # description command...
  local what=$1; shift
  while [ "$SECONDS" -lt "$deadline" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out after ${START_TIMEOUT:-90} s waiting for $what; logs in $dir/log" >&2
  return 1
}
left() { local n=$((deadline - SECONDS)); [ "$n" -gt 1 ] && echo "$n" || echo 1; }

trap 'show_logs; stop_all' ERR
trap 'stop_all; exit 143' TERM INT
daemon mon ceph-mon -c "$conf" -i a -f
wait_for "the monitor" ceph_ -s
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
[ "$(ceph_ osd new "$osd_uuid")" = 0 ]
timeout "$(left)" ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/log/osd.out" 2>&1
daemon osd ceph-osd -c "$conf" -i 0 -f
osd_up() { ceph_ osd stat | grep -q '1 up'; }
wait_for "the OSD" osd_up
daemon rgw radosgw -c "$conf" -n client.rgw -f
wait_for "the gateway" curl -sf -m 5 -o /dev/null "http://127.0.0.1:$rgw_port/"
timeout "$(left)" radosgw-admin -c "$conf" user create --uid=s3tgt --display-name=s3tgt --access-key="$access" --secret-key="$secret" >/dev/null
trap - ERR TERM INT
echo "S3_ENDPOINT=http://127.0.0.1:$rgw_port"
echo "AWS_ACCESS_KEY_ID=$access"
echo "AWS_SECRET_ACCESS_KEY=$secret"
