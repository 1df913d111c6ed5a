#!/usr/bin/env bash
# make lab-down: removes everything scripts/lab.sh made (containers, networks, namespace, keys).
set -euo pipefail
lab_dir="${VPSFLEET_LAB_DIR:-/var/lib/vpsfleet-lab}"
netns=vpsfleet-lab
mapfile -t containers < <(podman ps -a --filter label=vpsfleet-lab=1 --format '{{.Names}}')
if ((${#containers[@]})); then
  echo "removing containers: ${containers[*]}"
  podman rm -f -t 5 "${containers[@]}" >/dev/null
fi
mapfile -t networks < <(podman network ls --filter label=vpsfleet-lab=1 --format '{{.Name}}')
if ((${#networks[@]})); then
  echo "removing networks: ${networks[*]}"
  podman network rm "${networks[@]}" >/dev/null
fi
if [[ -e "/run/netns/$netns" ]]; then
  echo "removing network namespace $netns"
  ip netns delete "$netns"
fi
rm -rf "$lab_dir"
echo "lab removed"
