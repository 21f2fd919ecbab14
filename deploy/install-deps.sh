#!/usr/bin/env bash
# Installs what Ketch needs on a fresh Debian 12 machine, as root:
# system packages from apt and a virtualenv at .venv with the project in it.
# Safe to run again: it only adds what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

apt_packages=(etcd-server etcd-client busybox-static nftables iproute2 iptables
              util-linux procps kmod ca-certificates python3-venv skopeo iperf3
              prometheus)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts etcd and Prometheus as services on install; Ketch runs its own
# (`ketch monitoring-config` writes a Prometheus config for a lab).
for service in etcd prometheus; do
  if systemctl is-active --quiet "$service" 2>/dev/null; then systemctl disable --now "$service" >/dev/null 2>&1 || true; fi
done

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/pip install -q --upgrade pip >/dev/null
.venv/bin/pip install -q -e ".[dev]"
# Bytecode up front: start-up time matters for the CLI and every daemon, and an
# environment with PYTHONDONTWRITEBYTECODE set would otherwise recompile on every start.
.venv/bin/python -m compileall -q -j 0 apiserver scheduler controllers ketch node-agent proto >/dev/null || true
