# Sourced by scripts/s3-server: the --object-lock server. Ceph's radosgw (Debian 12) on a
# one-monitor, one-OSD Ceph cluster whose OSD keeps its data in memory (memstore), all on
# 127.0.0.1 with authentication off inside the cluster; S3 clients still sign with SigV4, which
# radosgw verifies. It has what s3rver lacks: versioning and Object Lock.

ceph_pkgs=(radosgw ceph-mon ceph-osd)

do_install_ceph() {
  local missing=() p
  for p in "${ceph_pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "s3-server: radosgw is not installed (apt-get install ${missing[*]})" >&2
    exit 3
  fi
  echo "s3-server: installing ${missing[*]} (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  exec 8>/var/lock/bulwark-s3-server-apt.lock
  flock 8
  { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; } ||
    { echo "s3-server: cannot install ${missing[*]}" >&2; exit 3; }
  exec 8>&-
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

ceph_conf() {  # $1 = cluster dir, $2 = fsid, $3 = monitor port, $4 = radosgw port
  local c="$1"
  printf '%s\n' \
    "[global]" \
    "fsid = $2" \
    "mon host = v1:127.0.0.1:$3" \
    "ms bind msgr2 = false" \
    "auth cluster required = none" \
    "auth service required = none" \
    "auth client required = none" \
    "osd pool default size = 1" \
    "osd pool default min size = 1" \
    "mon allow pool size one = true" \
    "mon warn on pool no redundancy = false" \
    "osd pool default pg autoscale mode = off" \
    "osd pool default pg num = 8" \
    "osd pool default pgp num = 8" \
    "osd crush chooseleaf type = 0" \
    "osd objectstore = memstore" \
    "memstore device bytes = 4294967296" \
    "run dir = $c/run" \
    "admin socket = $c/run/\$name.asok" \
    "log file = $c/log/\$name.log" \
    "pid file = $c/run/\$name.pid" \
    "keyring = $c/keyring" \
    "mon data = $c/mon" \
    "osd data = $c/osd\$id" \
    "[client.rgw]" \
    "rgw frontends = beast endpoint=127.0.0.1:$4"
}

do_start_ceph() {
  local dir="$1"
  do_install_ceph
  command -v node >/dev/null || do_install
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [ -f "$dir/pids" ] && die "a server is already running in $dir"
  rm -f "$dir/endpoint" "$dir/pid"
  local c="$dir/ceph" fsid mport rport
  mkdir -p "$c/mon" "$c/osd0" "$c/run" "$c/log"
  # One bring-up at a time on this machine. Two at once (tests in parallel) load the CPU enough
  # that a Ceph client can send its first command before it has the monitor map: it then carries
  # fsid 0 and the monitor refuses it ('wrong fsid'). That stopped the OSD from ever booting
  # (mon_cmd_maybe_osd_create fail: 'wrong fsid'). Daemons get fd 8 closed, so only this script
  # holds the lock.
  exec 8>"${TMPDIR:-/tmp}/bulwark-radosgw-start.lock"
  flock 8
  fsid="$(cat /proc/sys/kernel/random/uuid)"
  mport="$(free_port)"
  rport="$(free_port)"
  ceph_conf "$c" "$fsid" "$mport" "$rport" >"$c/ceph.conf"
  local conf=(-c "$c/ceph.conf")
  local deadline=$((SECONDS + 90))
  ceph_wait() {  # poll until the command succeeds
    until "$@" >/dev/null 2>&1; do
      if [ $SECONDS -ge $deadline ]; then
        do_stop "$dir"
        die "not ready after 90 s: $* (log: $dir/server.log, $c/log)"
      fi
      sleep 0.1
    done
  }
  {
    monmaptool --create --addv a "[v1:127.0.0.1:$mport]" --fsid "$fsid" "$c/monmap" &&
      ceph-authtool --create-keyring "$c/keyring" --gen-key -n mon. --cap mon 'allow *' &&
      ceph-mon "${conf[@]}" --mkfs -i a --monmap "$c/monmap" --keyring "$c/keyring"
  } >>"$dir/server.log" 2>&1 || die "ceph-mon --mkfs failed (log: $dir/server.log)"
  setsid ceph-mon "${conf[@]}" -i a -f </dev/null >>"$dir/server.log" 2>&1 8>&- &
  echo $! >"$dir/pids"
  ceph_wait timeout 5 ceph "${conf[@]}" mon stat
  # The same race can refuse any one command ('wrong fsid'): retry each until it succeeds.
  # `osd create` with the OSD's uuid is idempotent.
  local osd_uuid
  osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
  ceph_wait timeout 10 ceph "${conf[@]}" osd create "$osd_uuid"
  ceph-osd "${conf[@]}" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$dir/server.log" 2>&1 ||
    { do_stop "$dir"; die "OSD set-up failed (log: $dir/server.log)"; }
  ceph_wait timeout 10 ceph "${conf[@]}" osd crush add osd.0 1.0 root=default
  # The OSD daemon asks the monitor for its place in the CRUSH map as it boots and gives up on a
  # refusal: start it again until the monitor reports it up.
  local osd_pid="" osd_tries=0
  osd_up() {
    if [ -z "$osd_pid" ] || ! alive "$osd_pid" || grep -q "wrong fsid" "$c/log/osd.0.log" 2>/dev/null; then
      [ -n "$osd_pid" ] && { kill -KILL "$osd_pid" 2>/dev/null || true; }
      [ "$osd_tries" -lt 5 ] || return 1
      osd_tries=$((osd_tries + 1))
      : >"$c/log/osd.0.log"
      setsid ceph-osd "${conf[@]}" -i 0 -f </dev/null >>"$dir/server.log" 2>&1 8>&- &
      osd_pid=$!
      echo "$osd_pid" >>"$dir/pids"
      return 1
    fi
    timeout 5 ceph "${conf[@]}" osd stat 2>/dev/null | grep -q "1 up"
  }
  ceph_wait osd_up
  setsid radosgw "${conf[@]}" -n client.rgw -f </dev/null >>"$dir/server.log" 2>&1 8>&- &
  echo $! >>"$dir/pids"
  echo $! >"$dir/pid"
  if [ -n "${S3_SERVER_PARENT_PID:-}" ] && [ "$S3_SERVER_PARENT_PID" != 0 ]; then
    # The daemons can't watch the parent themselves: a watcher stops them once it is gone.
    setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ -f "$2" ]; do sleep 1; done; [ -f "$2" ] && kill $(cat "$2")' \
      s3-server-watch "$S3_SERVER_PARENT_PID" "$dir/pids" </dev/null >/dev/null 2>&1 8>&- &
  fi
  local ak sk
  ak="BWTEST$(head -c 7 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
  sk="$(head -c 30 /dev/urandom | base64 -w0)"
  umask 077
  printf 'access_key=%s\nsecret_key=%s\nregion=%s\n' "$ak" "$sk" "$region" >"$dir/credentials"
  # radosgw sets up its zone on first start; a radosgw-admin running meanwhile deadlocks with it.
  ceph_answers() { curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$rport/"; }
  ceph_wait ceph_answers
  ceph_wait timeout 30 radosgw-admin "${conf[@]}" user create --uid bulwark-test --display-name bulwark-test \
    --access-key "$ak" --secret-key "$sk"
  ceph_ready() { [ "$(signed_status "$dir" "http://127.0.0.1:$rport/")" = 200 ]; }
  ceph_wait ceph_ready
  exec 8>&-  # the next cluster may start
  echo "http://127.0.0.1:$rport" >"$dir/endpoint"
  cat "$dir/endpoint"
}

do_stop_ceph() {  # radosgw, OSD, monitor: each checked to be this cluster's
  local dir="$1" p pids=()
  for p in $(tac "$dir/pids"); do
    if alive "$p" && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q -- "$dir/ceph/ceph.conf"; then
      kill -TERM "$p" 2>/dev/null || true
      pids+=("$p")
    fi
  done
  local deadline=$((SECONDS + 20))
  for p in "${pids[@]}"; do
    while alive "$p"; do
      [ $SECONDS -lt $deadline ] || kill -KILL "$p" 2>/dev/null || true
      sleep 0.05
    done
  done
  rm -f "$dir/pids" "$dir/pid" "$dir/endpoint"
}
