#!/usr/bin/env bash
# make lab: the lab fleet (inventories/lab) running on this machine, as in production.
#   1. validates the fleet file;  2. builds what is missing (podman set-up, the test image);
#   3. makes the lab network: a network namespace of its own (nothing leaves it) holding one
#      podman network per address pool in use, with the pool's gateway;
#   4. starts one systemd container per guest, store and monitor at its fixed IPv4, and the
#      mail sink at the address the fleet reserves for the relay;
#   5. new guests get the lab operator's key (what cloud-init does in production); site.yml is
#      applied over SSH through ansible-runner (stores and monitors included), then new unmanaged guests are
#      handed over (playbooks/handover.yml);  6. runs a backup of the managed guests and verifies
#      it;  7. prints what runs where and how to reach it.
# Running it again only starts what is missing and re-applies site.yml (which changes nothing).
# scripts/lab-down.sh removes everything it made.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export VPSFLEET_ROOT="$root"
export PATH="$root/.venv/bin:$PATH"
lab_dir="${VPSFLEET_LAB_DIR:-/var/lib/vpsfleet-lab}"
netns=vpsfleet-lab
sink_ipv4="${VPSFLEET_LAB_MAIL_SINK:-198.51.100.3}"  # reserved for the relay in the lab fleet
started=$SECONDS
step() { printf '\n\033[1m==> %s\033[0m (%ss)\n' "$*" "$((SECONDS - started))"; }
in_lab() { nsenter --net="/run/netns/$netns" "$@"; }

step "validating inventories/lab"
vpsfleet validate lab

step "building what is missing"
python -m vpsfleet.agent_build  # the programs the roles install (vpsfleet_agents)
bash scripts/setup.d/30-podman.sh
image="$(bash scripts/build-test-image.sh)"
mkdir -p "$lab_dir/ssh" "$lab_dir/runner"
chmod 700 "$lab_dir" "$lab_dir/ssh"
key="$lab_dir/ssh/id_ed25519"
[[ -f "$key" ]] || ssh-keygen -q -t ed25519 -N "" -C "ops@vpsfleet-lab" -f "$key"
# The secret the backup credentials derive from (a vault in production): a throwaway of the lab's.
secret="$lab_dir/backup-secret"
[[ -f "$secret" ]] || (umask 077 && head -c 30 /dev/urandom | base64 >"$secret")

# The plan, from the fleet file: pools in use, guests, the sink, the relay's name.
plan="$lab_dir/plan.sh"
python - "$sink_ipv4" >"$plan" <<'PY'
import ipaddress
import shlex
import sys

from vpsfleet.environments import fleet_path
from vpsfleet.loader import load_fleet

fleet = load_fleet(fleet_path("lab"))
sink = ipaddress.IPv4Address(sys.argv[1])
found = fleet.pool_of(sink)
if found is None or sink not in found[1].reserved:
    sys.exit(f"the mail sink {sink} must be a reserved address of a lab pool (fleet.yml)")
pools = {found[1].name: found[1]}
guests = []
for guest in fleet.live_guests():
    if guest.ipv4 is None:
        continue
    _, pool = fleet.pool_of(guest.ipv4)
    pools[pool.name] = pool
    offer = fleet.offer(guest.offer)
    guests.append(f"{guest.name}:{guest.ipv4}:{pool.name}:{offer.root}:{offer.name}")


def provider_machines(machines, kind):
    """The provider's own machines (stores, monitors) as NAME:IPV4:POOL:provider:KIND."""
    out = []
    for machine in machines:
        found_machine = fleet.pool_of(machine.address)
        if found_machine is None:
            sys.exit(f"the {kind} {machine.name} ({machine.address}) is outside every lab pool")
        pools[found_machine[1].name] = found_machine[1]
        out.append(f"{machine.name}:{machine.address}:{found_machine[1].name}:provider:{kind}")
    return out


stores = provider_machines(fleet.backup_stores, "backup-store")
monitors = provider_machines(fleet.monitors, "monitor")
print("pools=(" + " ".join(shlex.quote(f"{p.name}:{p.network}:{p.gateway}") for p in pools.values()) + ")")
print("guests=(" + " ".join(shlex.quote(g) for g in guests) + ")")
print("stores=(" + " ".join(shlex.quote(s) for s in stores) + ")")
print("monitors=(" + " ".join(shlex.quote(m) for m in monitors) + ")")
print(f"sink_pool={found[1].name}")
print(f"relay_host={shlex.quote(fleet.provider.relay.host)}")
PY
# shellcheck disable=SC1090
source "$plan"

step "lab network (namespace $netns)"
if [[ ! -e "/run/netns/$netns" ]]; then
  ip netns add "$netns"
  ip -n "$netns" link set lo up
fi
for pool in "${pools[@]}"; do
  IFS=: read -r name network gateway <<<"$pool"
  if ! podman network exists "vpsfleet-lab-$name"; then
    # Inside the namespace: podman checks the subnet against the routes of its own namespace.
    in_lab podman network create --label vpsfleet-lab=1 --disable-dns --subnet "$network" \
      --gateway "$gateway" "vpsfleet-lab-$name" >/dev/null
    echo "  network vpsfleet-lab-$name: $network, gateway $gateway"
  fi
done

# start_container NAME HOSTNAME POOL IPV4: prints "new" when it had to be created.
start_container() {
  local name=$1 hostname=$2 pool=$3 ipv4=$4
  if ! podman container exists "$name"; then
    in_lab podman run -d --name "$name" --hostname "$hostname" --label vpsfleet-lab=1 \
      --network "vpsfleet-lab-$pool" --ip "$ipv4" --systemd=always --cap-add NET_ADMIN --cap-add NET_RAW \
      "$image" /sbin/init >/dev/null
    echo new
  elif [[ "$(podman container inspect -f '{{.State.Running}}' "$name")" != true ]]; then
    in_lab podman start "$name" >/dev/null
  fi
}

step "containers"
new_guests=()
new_unmanaged=()
for guest in "${guests[@]}" "${stores[@]}" "${monitors[@]}" "mailsink:$sink_ipv4:$sink_pool:provider:lab"; do
  IFS=: read -r name ipv4 pool who offer <<<"$guest"
  if [[ "$(start_container "lab-$name" "$name" "$pool" "$ipv4")" == new ]]; then
    echo "  lab-$name: created at $ipv4"
    new_guests+=("$name")
    [[ "$who" == customer ]] && new_unmanaged+=("$name")
  fi
done
for name in "${new_guests[@]}"; do
  # What cloud-init does in production: the provider's key on root, until Ansible takes over.
  podman exec "lab-$name" systemctl is-system-running --wait >/dev/null || true
  podman exec -i "lab-$name" sh -c \
    'install -d -m 700 /root/.ssh && cat > /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys' \
    <"$key.pub"
done

# What the lab adds to the fleet's inventory: the sink, and how the lab reaches its guests.
cat >"$lab_dir/lab-hosts.yml" <<YAML
# Written by scripts/lab.sh: the lab's additions to the fleet inventory.
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: $key
    ansible_ssh_common_args: >-
      -o UserKnownHostsFile=$lab_dir/ssh/known_hosts -o StrictHostKeyChecking=accept-new
    # The lab's operator key stands in for the fleet's operators (whose keys are examples).
    common_operators: [{name: ops, ssh_keys: ["$(cat "$key.pub")"]}]
    common_mail_relay_address: "$sink_ipv4"
    common_apt_update_cache: false  # the image carries every package; the lab has no way out
    vpsfleet_backup_secret: "{{ lookup('ansible.builtin.file', '$secret') }}"
mail_sinks:
  hosts:
    mailsink:
      ansible_host: "$sink_ipv4"
      mail_sink_hostname: "$relay_host"
YAML

# run_playbook PLAYBOOK [LIMIT]: through ansible-runner, inside the lab's namespace.
run_playbook() {
  in_lab python - "$root" "$lab_dir" "$1" "${2:-}" <<'PY'
import sys

import ansible_runner

root, lab_dir, playbook, limit = sys.argv[1:5]
result = ansible_runner.run(
    private_data_dir=f"{lab_dir}/runner",
    playbook=f"{root}/ansible/playbooks/{playbook}",
    inventory=[f"{root}/inventories/lab/vpsfleet.yml", f"{lab_dir}/lab-hosts.yml"],
    limit=limit or None,
    envvars={
        "ANSIBLE_CONFIG": f"{root}/ansible/ansible.cfg",
        "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
        "ANSIBLE_DISPLAY_OK_HOSTS": "false",
        "ANSIBLE_FORCE_COLOR": "false",
        # SSH masters of the lab's own, gone with it (make lab-down): a master left from
        # containers that were since replaced at the same address breaks the next run.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": f"{lab_dir}/ssh/cp",
        "ANSIBLE_SSH_RETRIES": "3",
    },
    rotate_artifacts=10,
    quiet=False,
)
print(f"ansible-runner: {result.status}, artifacts in {result.config.artifact_dir}")
sys.exit(0 if result.rc == 0 else 1)
PY
}

step "applying site.yml (ansible-runner, over SSH)"
run_playbook lab.yml
# After site.yml: the backup annex of an unmanaged guest reads its store's certificate.
if ((${#new_unmanaged[@]})); then
  step "handing over new unmanaged guests: ${new_unmanaged[*]}"
  run_playbook handover.yml "$(IFS=,; echo "${new_unmanaged[*]}")"
fi

step "a backup now on the guests with a database, then its verification (as each night)"
run_playbook backup-now.yml "backup_clients:&managed"
run_playbook verify-backups.yml
python - "$root/artifacts/verify-backups/summary.json" <<'PY'
import json
import sys

for r in json.load(open(sys.argv[1]))["results"]:
    what = ", ".join(c["file"] for c in r.get("checked", []))
    verdict = "skipped (no set yet)" if r["skipped"] else ("verified" if r["ok"] else "FAILED")
    print(f"  {r['guest']}: set {r.get('set') or '-'} {verdict} ({what})")
PY
for store in "${stores[@]}"; do
  IFS=: read -r name _ <<<"$store"
  echo "  sets on $name:"
  podman exec "lab-$name" find /srv/vpsfleet-backup -mindepth 3 -maxdepth 3 -type d -not -path '*/.vpsfleet/*' -printf '    %P\n' | sort
done

step "the lab"
printf '%-12s %-16s %-18s %-9s %s\n' NAME IPV4 OFFER STATE "HOW TO REACH IT"
for guest in "${guests[@]}" "${stores[@]}" "${monitors[@]}" "mailsink:$sink_ipv4:$sink_pool:provider:mail-sink"; do
  IFS=: read -r name ipv4 pool who offer <<<"$guest"
  state="$(podman container inspect -f '{{.State.Status}}' "lab-$name" 2>/dev/null || echo absent)"
  case "$who:$offer" in
    *:backup-store) how="podman exec lab-$name ls /srv/vpsfleet-backup  (FTPS: customer id and its derived password)" ;;
    *:monitor) how="nsenter --net=/run/netns/$netns ssh -L 9090:127.0.0.1:9090 -i $key root@$ipv4  (Prometheus on its loopback)" ;;
    *:mail-sink) how="podman exec lab-mailsink ls /var/mail/sink/new  ($(podman exec lab-mailsink sh -c 'ls /var/mail/sink/new | wc -l') mails)" ;;
    provider:*) how="nsenter --net=/run/netns/$netns ssh -i $key root@$ipv4" ;;
    *) how="handed over: the customer's keys only (podman exec -it lab-$name bash)" ;;
  esac
  printf '%-12s %-16s %-18s %-9s %s\n' "$name" "$ipv4" "$offer" "$state" "$how"
done
echo
echo "lab up in $((SECONDS - started)) s; scripts/lab-down.sh (make lab-down) removes it."
