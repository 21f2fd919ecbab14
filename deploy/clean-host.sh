#!/usr/bin/env bash
# Removes what Ketch (or an interrupted test run) left in the kernel: only
# objects whose names start with "ketch". Never touches anything else.
set -u
# Processes Ketch daemons recorded in their pid files.
for pidfile in /run/ketch/*.pid /run/ketch/*/*.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile" 2>/dev/null); [ -n "$pid" ] && kill "$pid" 2>/dev/null
  rm -f "$pidfile"
done
# Mounts, deepest first.
grep -E '(^| )[^ ]*ketch[^ ]* ' /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
# Network namespaces and links.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ketch'); do ip netns delete "$ns"; done
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^ketch'); do
  ip link delete "$link" 2>/dev/null
done
# nftables tables Ketch owns.
nft list tables 2>/dev/null | awk '$3 ~ /^ketch/ {print $2, $3}' | while read -r family table; do
  nft delete table "$family" "$table"
done
# cgroups (v1 hierarchies and v2), leaves first.
for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
  [ -d "$root" ] || continue
  find "$root" -mindepth 1 -maxdepth 4 -type d -name 'ketch*' 2>/dev/null | sort -r | while read -r cg; do
    find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
done
exit 0
