#!/usr/bin/env bash
# Removes what Ketch (a lab from `ketch up`, or an interrupted test run) left
# in the kernel: only objects whose names start with PREFIX (default "ketch").
# Never touches anything else. Run it when no Ketch lab or test run is meant
# to be running: it stops them.
#   deploy/clean-host.sh            # everything named ketch*
#   deploy/clean-host.sh ketch-lab  # only the default lab's objects
set -u
prefix="${1:-ketch}"

# Daemons recorded in pid files ("pid starttime"): `ketch up` labs under
# /run/ketch*, test labs under /tmp/ketch*/state/run. A pid counts only while
# its start time (field 22 of /proc/PID/stat) still matches.
for pidfile in /run/ketch*/*.pid /run/ketch*/*/*.pid /tmp/ketch*/state/run/*.pid; do
  [ -f "$pidfile" ] || continue
  case "$pidfile" in */"$prefix"*) ;; *) continue ;; esac   # another lab's: not ours to touch
  pid="" started=""
  read -r pid started < "$pidfile" || true
  rm -f "$pidfile"
  [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || continue
  if [ -n "$started" ]; then
    now=$(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $20}')
    [ "$now" = "$started" ] || continue
  fi
  kill -TERM "-$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
done
sleep 1

# cgroups (v1 hierarchies and v2): what still runs in them is a container of
# a lab or test whose runtime is gone; kill it, then remove the cgroups, leaves first.
cgroups() {
  for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
    [ -d "$root" ] || continue
    find "$root" -mindepth 1 -maxdepth 4 -type d -name "$prefix*" 2>/dev/null
  done
}
for cg in $(cgroups); do
  find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
    kill -KILL "$pid" 2>/dev/null
  done
done

# Mounts whose target has a path component starting with the prefix (state
# dirs /var/lib/ketch*, /run/ketch*, /tmp/ketch*...), deepest first.
awk -v p="/$prefix" 'index($2, p) {print $2}' /proc/mounts | sort -r | while read -r m; do
  umount -l "$(printf '%b' "$m")" 2>/dev/null
done

# Network namespaces (a lab's nodes: ketch-<lab>-n1...), then links (its bridge and veths).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$prefix"); do ip netns delete "$ns"; done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$prefix"); do
  ip link delete "$link" 2>/dev/null
done

# nftables tables Ketch owns (names use _ where links use -).
nft list tables 2>/dev/null | awk -v p="${prefix//-/_}" 'index($3, p) == 1 {print $2, $3}' | while read -r family table; do
  nft delete table "$family" "$table"
done

# cgroups, leaves first (a killed process leaves its cgroup a moment later).
sleep 0.5
for cg in $(cgroups | sort -r); do
  find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
done
exit 0
