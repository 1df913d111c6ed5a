#!/usr/bin/env bash
# Installs every Debian package listed in scripts/debian-packages/*.txt (one per line, # comments).
set -euo pipefail
root="${VPSFLEET_ROOT:?}"
mapfile -t wanted < <(cat "$root"/scripts/debian-packages/*.txt | sed 's/#.*//' | awk 'NF {print $1}' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "  all ${#wanted[@]} Debian packages present"
  exit 0
fi
echo "  installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
