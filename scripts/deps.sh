#!/usr/bin/env bash
# scripts/deps.sh: installs every Debian 12 package needed to build vpcguard, run its tests and
# run the lab (vagrant/lab.sh). The ONE list of packages: the lab and the test runner both call it.
#
# Usage: scripts/deps.sh            install what is missing (root; apt-get only when needed)
#        scripts/deps.sh --check    exit 1 and name the missing packages, install nothing
#        scripts/deps.sh --list     print the package list, one per line
#
# Presence is checked with dpkg-query, so a machine that has everything never runs apt-get.
set -euo pipefail

PACKAGES=(
  # build tools
  cmake ninja-build g++ clang make pkg-config autoconf automake libtool
  # linters for the checked-in .clang-format / .clang-tidy and the shell scripts
  clang-format clang-tidy shellcheck
  # libFuzzer and the sanitizer runtimes for clang (the config-loader fuzz run)
  libclang-rt-14-dev
  # Open vSwitch: the switch, its tools, and the source tarball the OVS C library is built from
  # (same version as the switch; Debian 12 has no libopenvswitch-dev)
  openvswitch-switch openvswitch-common openvswitch-source
  # libraries
  libnl-3-dev libnl-route-3-dev libnl-genl-3-dev
  libspdlog-dev libfmt-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libexpected-dev nlohmann-json3-dev libcli11-dev libssl-dev
  # xxHash, header-only: the digests keying vpcguardd's flow normalisation cache
  libxxhash-dev
  # jemalloc, vpcguardd's allocator (CMakeLists.txt says why)
  libjemalloc-dev
  # systemd integration of vpcguardd (sd_notify: Type=notify, watchdog) and the .deb's man pages
  libsystemd-dev help2man
  # the .deb (tests/package/deb_test.sh): dpkg-shlibdeps for its Depends, systemd-analyze verify
  # of the unit (which runs man for Documentation=)
  dpkg-dev systemd man-db
  # the metrics test parses vpcguardd's /metrics with the Prometheus client's own text parser
  python3-prometheus-client curl
  # zlib: the gzip writer/reader of flow-log files (.log.gz, as AWS publishes them)
  zlib1g-dev
  # lab and end-to-end tests: config helper, namespaces, veths, traffic
  python3 iproute2 ethtool iputils-ping netcat-openbsd iperf3 tcpdump procps psmisc
  # nfcapd/nfdump: the external IPFIX collector of the flow-log export test
  # (tests/e2e/flow_log_export_test.cpp, a flow log's ipfix_collector)
  nfdump
  # the peer benchmark (bench/vs_ovn.sh): OVN 23.03 on the same policy
  ovn-central ovn-host
  # tests/vagrant/validate_test.sh: `vagrant validate` of vagrant/Vagrantfile, and virt-xml-validate
  # (+ xmllint) on the guests' libvirt domain XML (7 packages). vagrant is in NO_RECOMMENDS: its
  # Recommends, vagrant-libvirt, pulls libvirt, QEMU, libguestfs (~550 more packages); plain
  # vagrant validates a file with libvirt provider blocks with --ignore-provider.
  vagrant libvirt-clients libxml2-utils
)
# Installed with --no-install-recommends (heavy Recommends that nothing here needs).
NO_RECOMMENDS=(vagrant)

say() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

mode=install
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  --list) printf '%s\n' "${PACKAGES[@]}"; exit 0 ;;
  -h|--help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (use --check, --list or no argument)" ;;
esac

command -v dpkg-query >/dev/null 2>&1 ||
  die "dpkg-query not found: this script supports Debian 12 only. Install by hand: ${PACKAGES[*]}"

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  say "all ${#PACKAGES[@]} packages present; nothing to install"
  exit 0
fi
if [[ $mode == check ]]; then
  say "missing ${#missing[@]} package(s): ${missing[*]}"
  exit 1
fi

((EUID == 0)) || die "missing ${missing[*]}; installing needs root: sudo $0"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"

export DEBIAN_FRONTEND=noninteractive
# -q and no pty: one line per step instead of redrawn progress bars (readable in CI logs).
apt_opts=(-q -o Dpkg::Use-Pty=0 -o APT::Color=0)
say "installing ${#missing[@]} missing package(s): ${missing[*]}"
say "apt-get update"
apt-get "${apt_opts[@]}" update || die "apt-get update failed (network? /etc/apt/sources.list?)"
say "apt-get install"
plain=() lean=()
for pkg in "${missing[@]}"; do
  if [[ " ${NO_RECOMMENDS[*]} " == *" $pkg "* ]]; then lean+=("$pkg"); else plain+=("$pkg"); fi
done
((${#plain[@]} == 0)) || apt-get "${apt_opts[@]}" install -y "${plain[@]}" ||
  die "apt-get install failed: ${plain[*]}"
((${#lean[@]} == 0)) || apt-get "${apt_opts[@]}" install -y --no-install-recommends "${lean[@]}" ||
  die "apt-get install failed: ${lean[*]}"

still=()
for pkg in "${missing[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]] || still+=("$pkg")
done
((${#still[@]} == 0)) || die "still missing after apt-get install: ${still[*]}"
say "done: ${#missing[@]} package(s) installed"
