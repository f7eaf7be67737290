#!/usr/bin/env bash
# Builds Open vSwitch's static C library from the Debian source tarball.
# Usage: build-ovs.sh TARBALL OUTDIR
# Idempotent: a stamp holding the tarball's checksum makes a second run a no-op.
set -euo pipefail
tarball=$1
out=$2
stamp="$out/.vpcguard-stamp"
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
lib="$out/openvswitch/lib/.libs/libopenvswitch.a"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" && -f "$lib" ]]; then
  touch "$lib"
  exit 0
fi
exec 9>"$out.lock" 2>/dev/null || { mkdir -p "$(dirname "$out")"; exec 9>"$out.lock"; }
flock 9
# Another build may have finished while we waited for the lock.
if [[ -f "$stamp" && "$(cat "$stamp")" == "$sum" && -f "$lib" ]]; then
  touch "$lib"; exit 0
fi
rm -rf "$out"
mkdir -p "$out"
log="$out/build.log"
echo "build-ovs: extracting $tarball into $out (log: $log)"
tar -xzf "$tarball" -C "$out"
cd "$out/openvswitch"
echo "build-ovs: configure"
./configure --enable-static --disable-shared --with-pic \
  CFLAGS="-O2 -g0 -fPIC" >"$log" 2>&1 || { tail -30 "$log"; exit 1; }
# Generated headers (odp-netlink.h, ofp-errors.inc, ...) must exist before the library.
printf 'vpcguard-built-sources: $(BUILT_SOURCES)\n' >vpcguard.mk
echo "build-ovs: generated sources"
make -j"$(nproc)" -f Makefile -f vpcguard.mk vpcguard-built-sources >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
echo "build-ovs: lib/libopenvswitch.la ($(nproc) jobs)"
make -j"$(nproc)" lib/libopenvswitch.la >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
echo "$sum" >"$stamp"
echo "build-ovs: done"
