#!/usr/bin/env bash
# Patching tests (issue 5): the Debian packages a managed guest needs for unattended-upgrades
# that the test image lacks, cached once, so that the scenario's own apt repository serves them
# and its guests never talk to a Debian mirror (network rule). Idempotent: skips what is cached.
set -euo pipefail
cache="${PATCHING_TOOL_DEBS:-/var/cache/vpsfleet/patching-debs}"
# unattended-upgrades and what it pulls onto the test image (apt-get install -s in the image).
packages=(unattended-upgrades python3-distro-info lsb-release python3-dbus libglib2.0-0
  xz-utils liblzma5)
mkdir -p "$cache"
missing=()
for pkg in "${packages[@]}"; do
  compgen -G "$cache/${pkg}_*.deb" >/dev/null || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "  patching tool packages cached in $cache"
  exit 0
fi
echo "  downloading ${missing[*]} into $cache"
(cd "$cache" && apt-get download -qq -o APT::Sandbox::User=root "${missing[@]}" >/dev/null)
