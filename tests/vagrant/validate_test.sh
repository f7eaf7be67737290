#!/usr/bin/env bash
# tests/vagrant/validate_test.sh (ctest vagrant_validate, label vagrant): checks vagrant/ without
# booting anything (no box image can be downloaded in CI):
#   1. `vagrant validate --ignore-provider` with plugins disabled: Ruby syntax, core settings of every
#      machine, provisioner script paths, with and without a .deb (the file provisioner). Provider
#      blocks (libvirt) are NOT checked by this; with the vagrant-libvirt plugin present, a full
#      `vagrant validate` runs too and does check them.
#   2. that validate is not a no-op: a copy with a misspelt core setting must fail;
#   3. shellcheck on vagrant/provision/*.sh;
#   4. the guest domain XML (rendered by hypervisor.sh --render-domain) against libvirt's schema
#      with virt-xml-validate, and that a non-UUID interfaceid (eni-...) is rejected.
# A missing tool (vagrant, shellcheck, ...) fails the test: a skip could never fail on a machine
# without it.
set -Eeuo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'ok: %s\n' "$*"; }

command -v vagrant >/dev/null 2>&1 || fail "vagrant is not installed (scripts/deps.sh installs it)"
command -v shellcheck >/dev/null 2>&1 || fail "shellcheck is not installed (scripts/deps.sh)"

WORK=$(mktemp -d /tmp/vgt.vagrant.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# VAGRANT_DOTFILE_PATH: keep vagrant/.vagrant (machine state) out of the source tree.
export VAGRANT_HOME=$WORK/home VAGRANT_DOTFILE_PATH=$WORK/dotfile VAGRANT_CHECKPOINT_DISABLE=1 \
  VAGRANT_NO_COLOR=1
unset VPCGUARD_DEB

validate_core() {  # $1: directory with a Vagrantfile
  (cd "$1" && VAGRANT_NO_PLUGINS=1 vagrant validate --ignore-provider) >"$WORK/out" 2>&1
}

# 1. Core validation, without and with a .deb.
validate_core "$REPO/vagrant" || { cat "$WORK/out"; fail "vagrant validate (no .deb)"; }
grep -q "validated successfully" "$WORK/out" || { cat "$WORK/out"; fail "no success line"; }
pass "vagrant validate --ignore-provider (plugins off)"
: >"$WORK/vpcguard_0.0.0_amd64.deb"
VPCGUARD_DEB=$WORK/vpcguard_0.0.0_amd64.deb validate_core "$REPO/vagrant" ||
  { cat "$WORK/out"; fail "vagrant validate with VPCGUARD_DEB"; }
pass "vagrant validate with a .deb (file provisioner)"

if (VAGRANT_HOME=$WORK/home vagrant plugin list 2>/dev/null || true) | grep -q vagrant-libvirt; then
  (cd "$REPO/vagrant" && vagrant validate) >"$WORK/out" 2>&1 ||
    { cat "$WORK/out"; fail "vagrant validate (with vagrant-libvirt: provider options)"; }
  pass "vagrant validate with the vagrant-libvirt plugin (libvirt options checked)"
else
  echo "note: vagrant-libvirt not installed: libvirt provider options not checked"
fi

# 2. A broken copy must fail.
mkdir -p "$WORK/broken"
cp -r "$REPO/vagrant/." "$WORK/broken/"
sed -i 's/hv.vm.hostname = /hv.vm.hostnam = /' "$WORK/broken/Vagrantfile"
grep -q 'hv.vm.hostnam = ' "$WORK/broken/Vagrantfile" || fail "could not break the copy"
if validate_core "$WORK/broken"; then
  cat "$WORK/out"
  fail "vagrant validate accepted a misspelt setting"
fi
pass "vagrant validate rejects a misspelt setting"

# 3. shellcheck.
shellcheck "$REPO"/vagrant/provision/*.sh || fail "shellcheck vagrant/provision/*.sh"
pass "shellcheck vagrant/provision/*.sh"

# 4. Domain XML.
render=$REPO/vagrant/provision/hypervisor.sh
bash "$render" --render-domain vpcguard-web1 02:00:00:00:01:0a \
  6f3b5a2e-0001-4c0a-9e1a-02000000010a /var/lib/libvirt/images/vpcguard-web1.qcow2 \
  /var/lib/libvirt/images/vpcguard-web1-seed.iso kvm >"$WORK/domain.xml"
grep -q "interfaceid='6f3b5a2e-0001-4c0a-9e1a-02000000010a'" "$WORK/domain.xml" ||
  fail "rendered domain lacks the interfaceid"
if grep -q '@[A-Z_]*@' "$WORK/domain.xml"; then fail "placeholders left in the rendered domain"; fi
bash "$render" --render-domain vpcguard-web1 02:00:00:00:01:0a eni-web1 /a.qcow2 /s.iso kvm \
  >"$WORK/bad-domain.xml" 2>/dev/null
if command -v virt-xml-validate >/dev/null 2>&1; then
  virt-xml-validate "$WORK/domain.xml" domain || fail "virt-xml-validate guest-domain.xml"
  pass "virt-xml-validate: rendered guest domain"
  if virt-xml-validate "$WORK/bad-domain.xml" domain >/dev/null 2>&1; then
    fail "virt-xml-validate accepted interfaceid='eni-web1' (libvirt requires a UUID)"
  fi
  pass "virt-xml-validate rejects a non-UUID interfaceid"
else
  echo "note: virt-xml-validate not installed (package libvirt-clients): domain XML not validated"
fi
echo "all vagrant checks passed"
