#!/usr/bin/env bash
# package_deb: the Debian package, end to end on this machine (docs/install.md).
#
#   tests/package/deb_test.sh BUILD_DIR
#
# Builds vpcguard_*.deb with CPack in BUILD_DIR, installs it with apt (offline: scripts/deps.sh
# installed every Depends), checks what it put where (programs, man pages, conffiles, the systemd
# unit through `systemd-analyze verify`), then runs the packaged service the systemd-free way
# (/etc/init.d/vpcguardd, start-stop-daemon) against a private lab switch (vagrant/lab.sh with
# the INSTALLED programs) and checks real traffic between the lab's VMs: what the policy allows
# passes, what it does not is blocked. Then stop, `dpkg -P`, and the file lists of /etc /usr /lib
# /var/lib /run must equal the snapshot taken before the install.
#
# Refuses to run (fails, touches nothing) when a vpcguard package is installed already. A trap
# takes the lab down and purges the package also on failure, on SIGTERM and SIGINT. ctest kills a
# test at its TIMEOUT (900 s) without running traps, so the script keeps its own deadline below
# it: it runs itself under `timeout --signal=TERM 780` (then KILL 60 s later). Needs root; exit 77
# (skipped) only where network namespaces cannot be made.
set -euo pipefail

DEADLINE=780
if [[ -z ${VPCG_DEB_TEST_DEADLINE:-} ]]; then
  export VPCG_DEB_TEST_DEADLINE=$DEADLINE
  exec timeout --signal=TERM --kill-after=60 "$DEADLINE" bash "${BASH_SOURCE[0]}" "$@"
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB=$REPO/vagrant/lab.sh
SKIP=77
BUILD_DIR=${1:-}

step() { printf '\n=== package_deb: %s\n' "$*"; }
fail() { printf '\nFAIL package_deb: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP package_deb: %s\n' "$*"; exit "$SKIP"; }

[[ -n $BUILD_DIR && -f $BUILD_DIR/CMakeCache.txt ]] ||
  fail "usage: $0 BUILD_DIR (a configured vpcguard build directory)"
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)
((EUID == 0)) || skip "needs root (dpkg, network namespaces, Open vSwitch)"
for c in dpkg dpkg-deb dpkg-shlibdeps apt-get cpack help2man man systemd-analyze start-stop-daemon ip \
  ovs-vsctl ovs-ofctl nc; do
  command -v "$c" >/dev/null 2>&1 ||
    fail "command '$c' not found (Debian packages: dpkg-dev help2man man-db systemd openvswitch-switch iproute2 netcat-openbsd cmake; scripts/deps.sh)"
done

# Never touch an installed vpcguard, not even one removed with its config files left ("rc").
status=$(dpkg-query -W -f='${db:Status-Abbrev}' vpcguard 2>/dev/null || true)
if [[ -n ${status// /} && $status != un* ]]; then
  fail "a vpcguard package is already on this machine (dpkg status '$status'); this test installs and purges its own: remove it first (dpkg -P vpcguard) or run the test elsewhere"
fi
[[ ! -e /etc/vpcguard ]] || fail "/etc/vpcguard exists without the package: move it away first"

WORK=$(mktemp -d /tmp/vpcg-deb-test.XXXXXX)
LAB_DIR=$WORK/lab
# A prefix no namespace uses yet: lab names are "<prefix>-...".
LAB_PREFIX=""
for _ in $(seq 20); do
  candidate=d$(printf '%05x' $((RANDOM * 32 + $$ % 32)))
  if ! ip netns list | awk '{print $1}' | grep -q "^$candidate-"; then LAB_PREFIX=$candidate; break; fi
done
[[ -n $LAB_PREFIX ]] || fail "no free LAB_PREFIX found"
if ! ip netns add "$LAB_PREFIX-probe" 2>/dev/null; then
  rm -rf "$WORK"
  skip "cannot create network namespaces here"
fi
ip netns del "$LAB_PREFIX-probe"
export LAB_DIR LAB_PREFIX LAB_SKIP_DEPS=1 LAB_NO_BUILD=1 VPCGUARD_BUILD_DIR=$WORK/installed
echo "package_deb: BUILD_DIR=$BUILD_DIR WORK=$WORK LAB_PREFIX=$LAB_PREFIX"

installed=0 lab_up=0
# The test's own output, for cleanup: a signal may arrive while a function runs with its output
# redirected (connects, snapshot), and the trap runs inside that redirection. Long-lived
# children get 3>&- 4>&- (an inherited copy would keep ctest's pipe open).
exec 3>&1 4>&2
cleanup() {
  local rc=$?
  exec 1>&3 2>&4
  trap - EXIT
  trap '' TERM INT
  if ((rc == 143 || rc == 130)); then
    echo "package_deb: terminated by a signal (own deadline ${DEADLINE} s, or ctest/Ctrl-C): cleaning up" >&2
  fi
  if ((lab_up)); then
    "$LAB" down >/dev/null || echo "package_deb: WARNING: lab down failed (LAB_DIR=$LAB_DIR)" >&2
  fi
  if ((installed)); then
    echo "package_deb: cleaning up: stopping vpcguardd, purging the package"
    [[ ! -x /etc/init.d/vpcguardd ]] || /etc/init.d/vpcguardd stop >/dev/null 2>&1 || true
    dpkg -P vpcguard >/dev/null || echo "package_deb: WARNING: dpkg -P vpcguard failed" >&2
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# File lists of the places a package may touch. Left out: dpkg's and apt's own bookkeeping,
# caches, and what other programs change on their own while we run (namespaces, user sessions).
snapshot() {
  find /etc /usr /lib /var/lib /run -xdev \
    \( -path /var/lib/dpkg -o -path /var/lib/apt -o -path /run/netns -o -path /run/user \
    -o -path /run/lock -o -path /var/lib/ucf -o -path /var/lib/man-db \) -prune -o -print 2>/dev/null |
    grep -v -e '/__pycache__' -e "^$WORK" | LC_ALL=C sort
}

# ---- build ---------------------------------------------------------------------------------------
step "building the package (cpack in $BUILD_DIR)"
cmake --build "$BUILD_DIR" -j"${VPCGUARD_BUILD_JOBS:-2}" \
  --target vpcguardd vpcguardctl vpcguard-apid man_pages >"$WORK/build.log" 2>&1 ||
  { tail -n 30 "$WORK/build.log" >&2; fail "building the programs failed"; }
rm -f "$BUILD_DIR"/vpcguard_*.deb
(cd "$BUILD_DIR" && cpack -G DEB) >"$WORK/cpack.log" 2>&1 ||
  { tail -n 30 "$WORK/cpack.log" >&2; fail "cpack failed"; }
debs=("$BUILD_DIR"/vpcguard_*.deb)
if ((${#debs[@]} != 1)) || [[ ! -f ${debs[0]} ]]; then
  fail "expected one vpcguard_*.deb in $BUILD_DIR, got: ${debs[*]}"
fi
DEB=${debs[0]}
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$BUILD_DIR/CMakeCache.txt")
echo "package: $DEB"
dpkg-deb -I "$DEB" | sed 's/^/    /'

step "checking the package's metadata"
[[ $(dpkg-deb -f "$DEB" Package) == vpcguard ]] || fail "Package is not vpcguard"
[[ $(dpkg-deb -f "$DEB" Version) == "$version" ]] || fail "Version is not the project's $version"
depends=$(dpkg-deb -f "$DEB" Depends)
[[ $depends == *openvswitch-switch* ]] || fail "Depends lacks openvswitch-switch: $depends"
[[ $depends == *libc6* ]] || fail "Depends lacks the shared libraries (dpkg-shlibdeps): $depends"
dpkg-deb -e "$DEB" "$WORK/control"
for f in postinst prerm postrm conffiles; do [[ -f $WORK/control/$f ]] || fail "control.tar lacks $f"; done
dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\./|/|' >"$WORK/contents"
# Every file under /etc is a conffile, and every conffile is in the package.
etc_files=$(grep '^/etc/.*[^/]$' "$WORK/contents" | LC_ALL=C sort)
[[ $etc_files == "$(LC_ALL=C sort "$WORK/control/conffiles")" ]] ||
  fail "conffiles differ from the files under /etc: $(diff <(echo "$etc_files") <(LC_ALL=C sort "$WORK/control/conffiles") || true)"
# Programs: exactly the three (no test or bench binaries); no build tree, no libraries.
programs=$(grep -E '^/usr/s?bin/.' "$WORK/contents" | LC_ALL=C sort | paste -sd' ')
[[ $programs == "/usr/bin/vpcguardctl /usr/sbin/vpcguard-apid /usr/sbin/vpcguardd" ]] ||
  fail "programs in the package: $programs"
! grep -qE '/_ovs/|\.(a|so|o)$|/usr/local|/usr/lib/' "$WORK/contents" ||
  fail "build files in the package: $(grep -E '/_ovs/|\.(a|so|o)$|/usr/local|/usr/lib/' "$WORK/contents")"
if command -v lintian >/dev/null 2>&1; then
  lintian --no-tag-display-limit "$DEB" || echo "package_deb: lintian found issues (informational)"
fi

# ---- install -------------------------------------------------------------------------------------
step "snapshot of /etc /usr /lib /var/lib /run, then apt-get install"
snapshot >"$WORK/before"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  -o DPkg::Lock::Timeout=120 "$DEB" 2>&1 | tee "$WORK/install.log" | sed 's/^/    /'
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' vpcguard) == ii* ]] || fail "vpcguard is not installed after apt-get"
grep -q "not starting vpcguardd: no policy: neither /etc/vpcguard/policy.toml nor the directory /etc/vpcguard/policy.d exists" "$WORK/install.log" ||
  fail "postinst did not say why vpcguardd was not started (no policy)"

step "installed files"
for f in /usr/sbin/vpcguardd /usr/sbin/vpcguard-apid /usr/bin/vpcguardctl; do
  [[ -x $f ]] || fail "$f missing or not executable"
done
for f in /usr/share/vpcguard/vpcguard.ovsschema /etc/vpcguard/vpcguardd.toml \
  /etc/vpcguard/examples/lab.toml /etc/vpcguard/iam/bindings.json /etc/init.d/vpcguardd \
  /lib/systemd/system/vpcguardd.service /usr/share/doc/vpcguard/copyright \
  /usr/share/doc/vpcguard/docs/install.md /usr/share/man/man8/vpcguardd.8.gz \
  /usr/share/man/man8/vpcguardctl.8.gz /usr/share/man/man8/vpcguard-apid.8.gz \
  /etc/logrotate.d/vpcguard; do
  [[ -f $f ]] || fail "$f missing"
done
[[ ! -e /etc/vpcguard/policy.toml ]] || fail "the package must not ship /etc/vpcguard/policy.toml"
getent group vpcguard >/dev/null || fail "postinst made no system group vpcguard"
[[ -d /var/lib/vpcguard ]] || fail "postinst made no /var/lib/vpcguard"
[[ $(stat -c %a /var/log/vpcguard) == 750 ]] || fail "/var/log/vpcguard is not 0750 (flow logs are private)"
if command -v logrotate >/dev/null 2>&1; then
  logrotate --debug /etc/logrotate.d/vpcguard >/dev/null 2>&1 || fail "logrotate rejects /etc/logrotate.d/vpcguard"
fi
[[ -L /etc/systemd/system/multi-user.target.wants/vpcguardd.service ]] ||
  fail "vpcguardd.service is not enabled (deb-systemd-helper)"
zcat /usr/share/man/man8/vpcguardd.8.gz | grep -qF 'settings file' || fail "vpcguardd.8 does not document --settings"
vpcguardd --version | grep -qF "$version" || fail "vpcguardd --version does not say $version: $(vpcguardd --version 2>&1)"
vpcguardctl check /etc/vpcguard/examples/lab.toml >/dev/null || fail "installed vpcguardctl rejects the installed example"
# systemd-analyze works without systemd as PID 1; verify also runs `man vpcguardd(8)` (Documentation=).
(cd / && systemd-analyze verify /lib/systemd/system/vpcguardd.service) ||
  fail "systemd-analyze verify rejects the installed unit"
# Without a policy the init script refuses (LSB 6: not configured), naming what is missing.
rc=0
out=$(/etc/init.d/vpcguardd start 2>&1) || rc=$?
((rc == 6)) || fail "init script start without a policy: exit $rc, want 6: $out"
grep -q 'neither /etc/vpcguard/policy.toml nor the directory /etc/vpcguard/policy.d exists' <<<"$out" ||
  fail "init script did not name the missing policy: $out"
# Not running: status 3, reload 7 (LSB).
rc=0; /etc/init.d/vpcguardd status >/dev/null 2>&1 || rc=$?
((rc == 3)) || fail "init script status of a vpcguardd never started: exit $rc, want 3"
rc=0; /etc/init.d/vpcguardd reload >/dev/null 2>&1 || rc=$?
((rc == 7)) || fail "init script reload of a vpcguardd not running: exit $rc, want 7"

# ---- run: a lab with the installed programs, then the service via /etc/init.d -------------------
step "lab (vagrant/lab.sh) on the installed programs"
mkdir -p "$VPCGUARD_BUILD_DIR/daemon" "$VPCGUARD_BUILD_DIR/api"
ln -s /usr/sbin/vpcguardd "$VPCGUARD_BUILD_DIR/daemon/vpcguardd"
ln -s /usr/bin/vpcguardctl "$VPCGUARD_BUILD_DIR/daemon/vpcguardctl"
ln -s /usr/sbin/vpcguard-apid "$VPCGUARD_BUILD_DIR/api/vpcguard-apid"
lab_up=1
"$LAB" up --config /etc/vpcguard/examples/lab.toml >"$WORK/lab-up.log" 2>&1 3>&- 4>&- ||
  { tail -n 30 "$WORK/lab-up.log" >&2; fail "lab.sh up failed"; }
lab() { "$LAB" exec "$@"; }
lab eni-db1 -- setsid nc -lk 5432 </dev/null >/dev/null 2>&1 3>&- 4>&- &
connects() { lab "$1" -- nc -zw3 10.0.2.10 5432 >/dev/null 2>&1; }
for _ in $(seq 20); do connects eni-web1 && break; sleep 0.5; done
connects eni-web1 || fail "the lab itself does not let eni-web1 reach eni-db1:5432"

step "the lab's own vpcguardd stopped, its flows removed: nothing passes"
kill -TERM "$(cat "$LAB_DIR/vpcguardd.pid")"
for _ in $(seq 50); do [[ -e /proc/$(cat "$LAB_DIR/vpcguardd.pid") ]] || break; sleep 0.1; done
rm -f "$LAB_DIR/vpcguardd.pid"
ovs-ofctl -O OpenFlow15 del-flows "unix:$LAB_DIR/br-int.mgmt"
! connects eni-web1 || fail "eni-web1 reached eni-db1 with no flows on a fail-secure bridge"

step "/etc/init.d/vpcguardd start with the package's settings pointed at the lab"
cp /etc/vpcguard/examples/lab.toml /etc/vpcguard/policy.toml
port=$((20000 + RANDOM % 20000))
{
  echo 'config = "/etc/vpcguard/policy.toml"'
  echo 'bridge = "br-int"'
  echo "ovsdb = \"unix:$LAB_DIR/db.sock\""
  echo 'datapath-type = "netdev"'
  echo "metrics-listen = \"127.0.0.1:$port\""
} >/etc/vpcguard/vpcguardd.toml
/etc/init.d/vpcguardd start || fail "init script start failed: $(tail -n 5 /var/log/vpcguard/vpcguardd.log 2>&1)"
pid=$(cat /run/vpcguard/vpcguardd.pid) || fail "no pid file /run/vpcguard/vpcguardd.pid"
[[ $(readlink "/proc/$pid/exe") == /usr/sbin/vpcguardd ]] || fail "pid $pid is not /usr/sbin/vpcguardd"
status_file=/run/vpcguard/br-int.status.json
for _ in $(seq 100); do [[ -s $status_file ]] && break; sleep 0.1; done
[[ -s $status_file ]] || fail "no status file $status_file after 10 s; log: $(tail -n 5 /var/log/vpcguard/vpcguardd.log)"
/etc/init.d/vpcguardd status || fail "init script status says not running"
vpcguardctl status --status-file "$status_file" | sed 's/^/    /' || fail "vpcguardctl status failed"

step "traffic: allowed passes, blocked is blocked"
ok=0
for _ in $(seq 30); do connects eni-web1 && { ok=1; break; }; sleep 0.5; done
((ok)) || fail "eni-web1 -> eni-db1:5432 (allowed by sg-db) does not connect under the packaged vpcguardd"
! connects eni-bastion || fail "eni-bastion -> eni-db1:5432 (not allowed by sg-db) connected"
lab eni-web1 -- ping -c1 -W2 10.0.2.10 >/dev/null || fail "eni-web1 cannot ping eni-db1 (allowed)"

step "metrics on 127.0.0.1:$port"
command -v curl >/dev/null 2>&1 || fail "curl not found: run scripts/deps.sh"
body=$(curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics") || fail "no /metrics on 127.0.0.1:$port"
grep -q '^vpcguard' <<<"$body" || fail "/metrics has no vpcguard_* metric: $(head -n 5 <<<"$body")"

# Alive and not a zombie (a PID 1 that does not reap, as in containers, leaves zombies).
running() { [[ -r /proc/$1/status ]] && ! grep -qE '^State:[[:space:]]+Z' "/proc/$1/status"; }
# The packaged daemons: live processes started with the package's settings (zombies have no
# command line). Other vpcguardd processes on this machine (other tests) are not ours.
packaged_pids() { pgrep -f '^/usr/sbin/vpcguardd --settings /etc/vpcguard/vpcguardd.toml' || true; }

step "upgrade in place: the same .deb installed again while vpcguardd runs"
[[ $(packaged_pids) == "$pid" ]] || fail "before the reinstall: packaged vpcguardd processes: $(packaged_pids | paste -sd' '), want $pid"
DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall --no-install-recommends \
  -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold "$DEB" 2>&1 |
  tee "$WORK/reinstall.log" | sed 's/^/    /'
[[ $(dpkg-query -W -f='${db:Status-Abbrev}' vpcguard) == ii* ]] || fail "vpcguard is not installed after the reinstall"
# dpkg replaced the binary: the running daemon's executable is a deleted inode now (what made
# start-stop-daemon --exec lose it).
running "$pid" || fail "vpcguardd (pid $pid) died during the reinstall"
[[ $(readlink "/proc/$pid/exe") == *'(deleted)' ]] ||
  fail "the reinstall did not replace /usr/sbin/vpcguardd under the running daemon: $(readlink "/proc/$pid/exe")"
/etc/init.d/vpcguardd status >/dev/null || fail "init script status lost the daemon whose binary was replaced"
# postinst's invoke-rc.d restart is blocked where /usr/sbin/policy-rc.d says so (containers):
# restart as it would, by hand; where it was not blocked this restarts once more.
/etc/init.d/vpcguardd restart || fail "init script restart failed: $(tail -n 5 /var/log/vpcguard/vpcguardd.log 2>&1)"
! running "$pid" || fail "the old vpcguardd (pid $pid) still runs after restart"
pids=$(packaged_pids | paste -sd' ')
[[ -n $pids && $pids != *' '* ]] || fail "after the reinstall and restart: packaged vpcguardd processes: '$pids', want exactly one"
newpid=$(cat /run/vpcguard/vpcguardd.pid) || fail "no pid file after restart"
[[ $newpid == "$pids" ]] || fail "pid file says $newpid, the running vpcguardd is $pids"
pid=$newpid
[[ $(readlink "/proc/$pid/exe") == /usr/sbin/vpcguardd ]] || fail "restarted pid $pid is not the new /usr/sbin/vpcguardd"
ok=0
for _ in $(seq 30); do connects eni-web1 && { ok=1; break; }; sleep 0.5; done
((ok)) || fail "eni-web1 -> eni-db1:5432 does not connect after the restart"
! connects eni-bastion || fail "eni-bastion -> eni-db1:5432 connected after the restart"

step "reload, stop, purge"
/etc/init.d/vpcguardd reload || fail "init script reload failed"
running "$pid" || fail "vpcguardd died on reload (SIGHUP)"
/etc/init.d/vpcguardd stop || fail "init script stop failed"
! running "$pid" || fail "vpcguardd (pid $pid) still runs after stop"
[[ -z $(packaged_pids) ]] || fail "packaged vpcguardd still running after stop: $(packaged_pids | paste -sd' ')"
[[ ! -e /run/vpcguard/vpcguardd.pid ]] || fail "stop left the pid file"
rc=0; /etc/init.d/vpcguardd status >/dev/null 2>&1 || rc=$?
((rc == 3)) || fail "init script status after stop: exit $rc, want 3 (not running)"
/etc/init.d/vpcguardd stop >/dev/null || fail "stop of a stopped vpcguardd must succeed (LSB)"
# Purge removes the operator's policy, a file or a directory.
mkdir -p /etc/vpcguard/policy.d
cp /etc/vpcguard/examples/lab.toml /etc/vpcguard/policy.d/lab.toml
"$LAB" down >/dev/null || fail "lab down failed"
lab_up=0
dpkg -P vpcguard 2>&1 | sed 's/^/    /'
installed=0
[[ -z $(dpkg-query -W -f='${db:Status-Abbrev}' vpcguard 2>/dev/null || true) ]] ||
  [[ $(dpkg-query -W -f='${db:Status-Abbrev}' vpcguard) == un* ]] || fail "vpcguard still known to dpkg after purge"
[[ ! -e /var/log/vpcguard ]] || fail "/var/log/vpcguard left after purge"
snapshot >"$WORK/after"
# Debian policy lets the system group stay; groupadd may have made the shadow tools' backups.
if ! changes=$(diff "$WORK/before" "$WORK/after" | grep '^[<>]' |
  grep -vE '^> /etc/(group|gshadow|passwd|shadow)-$|^> /etc/\.pwd\.lock$'); then
  changes=""
fi
[[ -z $changes ]] || fail "the machine differs from before the install:
$changes"
printf '\nPASS package_deb\n'
