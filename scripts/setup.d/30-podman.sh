#!/usr/bin/env bash
# Podman for systemd containers on these machines: runc (crun fails on the hybrid cgroup layout)
# and lowered default ulimits (the sandbox lacks CAP_SYS_RESOURCE, so podman's defaults fail).
# Writes /etc/containers/containers.conf only when its content differs.
set -euo pipefail
conf=/etc/containers/containers.conf
want="$(cat <<'CONF'
# Written by vpsfleet scripts/setup.d/30-podman.sh: systemd containers need runc here, and the
# sandbox cannot raise ulimits above what it was given.
[containers]
default_ulimits = [
  "nofile=4096:4096",
  "nproc=4096:4096",
]

[engine]
runtime = "runc"
CONF
)"
if [[ -f "$conf" && "$(cat "$conf")" == "$want" ]]; then
  echo "  podman configured (runc, ulimits)"
else
  mkdir -p /etc/containers
  printf '%s\n' "$want" > "$conf"
  echo "  wrote $conf (runc, ulimits)"
fi
# Each systemd container takes inotify instances; the default (128 per user, all containers
# share root's) runs out with a dozen of them and systemd then hangs at boot.
for limit in fs.inotify.max_user_instances=1024 fs.inotify.max_user_watches=524288; do
  key="${limit%=*}" want="${limit#*=}"
  if (($(sysctl -n "$key") < want)); then
    sysctl -qw "$limit" && echo "  $limit"
  fi
done
podman info --format '{{.Host.OCIRuntime.Name}}' >/dev/null
