#!/bin/sh
# Removes whatever vpcguard tests left behind when they were killed before their destructors ran
# (ctest timeout, SIGKILL). The harness names everything so this can find it: temp dirs
# /tmp/vgt.*, network namespaces vgt-*, veths vgt*. Run it when no test is running (the test
# runner calls it after ctest). `--dry-run` only lists what it would remove.
set -u
dry=0
[ "${1:-}" = "--dry-run" ] && dry=1

act() {
    if [ "$dry" = 1 ]; then echo "would: $*"; else "$@" 2>/dev/null; fi
}

# Sandbox daemons: their command line (or, for ovs-vswitchd, its OVS_RUNDIR) names /tmp/vgt.
for pid in $(pgrep -x ovsdb-server 2>/dev/null) $(pgrep -x ovs-vswitchd 2>/dev/null); do
    if tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -q '/tmp/vgt\.' ||
       tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -q '^OVS_RUNDIR=/tmp/vgt\.'; then
        act kill -9 "$pid"
    fi
done

for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^vgt-'); do
    act ip netns delete "$ns"
done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^vgt'); do
    act ip link delete "$link"
done
for d in /tmp/vgt.*; do
    [ -e "$d" ] && act rm -rf "$d"
done
exit 0
