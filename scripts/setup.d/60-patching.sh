#!/usr/bin/env bash
# Patching tests (issue 5): the Debian packages a managed guest needs for unattended-upgrades
# that the test image lacks, cached here, so that the scenario's own apt repository serves them
# and its guests never talk to a Debian mirror (network rule). Idempotent: a package is fetched
# again only when apt's candidate version is not the cached one (the image follows the mirror).
set -euo pipefail
cache="${PATCHING_TOOL_DEBS:-/var/cache/vpsfleet/patching-debs}"
# unattended-upgrades and what it pulls onto the test image (apt-get install -s in the image).
packages=(unattended-upgrades python3-distro-info lsb-release python3-dbus libglib2.0-0
  xz-utils liblzma5)
mkdir -p "$cache"

candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && !v {v = $2} END {print v}'; }
stale() {  # the packages whose candidate is not in the cache
  local pkg version
  for pkg in "${packages[@]}"; do
    version="$(candidate "$pkg")"
    if [[ -z "$version" || "$version" == "(none)" ]] \
      || ! compgen -G "$cache/${pkg}_${version//:/%3a}_*.deb" >/dev/null; then
      echo "$pkg"
    fi
  done
}

mapfile -t missing < <(stale)
if ((${#missing[@]} == 0)); then
  echo "  patching tool packages cached in $cache"
  exit 0
fi
version="$(candidate "${missing[0]}")"
if [[ -z "$version" || "$version" == "(none)" ]]; then
  apt-get update -qq  # a fresh machine: no package lists yet
fi
echo "  downloading ${missing[*]} into $cache"
for pkg in "${missing[@]}"; do
  rm -f "$cache/${pkg}"_*.deb
done
(cd "$cache" && apt-get download -qq -o APT::Sandbox::User=root "${missing[@]}" >/dev/null)
