#!/usr/bin/env bash
# make lab: the lab fleet (inventories/lab) running on this machine, as in production.
#   1. validates the fleet file;  2. builds what is missing (podman set-up, the test image);
#   3. makes the lab network: a network namespace of its own (nothing leaves it) holding one
#      podman network per address pool in use, with the pool's gateway;
#   4. starts one systemd container per guest, dedicated server, store, monitor, hypervisor the
#      fleet gives an address and edge router at its fixed IPv4 (the last two privileged: libvirtd,
#      br_netfilter's sysctls, IPv4 forwarding; a hypervisor reads the base images the lab makes
#      from a read-only folder), and the mail sink at the address the fleet reserves for the relay; each boots with
#      the cloud-init seed the Pulumi program's own code renders (pulumi/vpsfleet_infra/nocloud.py),
#      which gives root its keys as in production: no key is put in by hand;
#   5. lab.yml (the sink, the lab's apt repository, demo data, then site.yml, then the managed
#      guests' nightly security upgrade now) is applied over SSH through ansible-runner, the
#      hypervisors and edge routers it configured are shown over SSH (libvirtd, the pool, the
#      traffic timer; the edge ruleset's dedicated servers), then new
#      unmanaged guests are handed over (playbooks/handover.yml: the provider is locked out);
#   6. runs a backup of the managed guests and verifies it;  7. shows the monitor at work: its
#      targets up, one outage (a guest's address black-holed in the lab's router for a moment)
#      fired and resolved as ticket mails in the sink, and the month's SLA report and chart
#      (python -m vpsfleet.lab_monitor);  8. runs the GitOps pipeline on a merge (python -m
#      vpsfleet.lab_pipeline): in a throwaway repository of the lab's fleet, a new guest, a port 25
#      block and a suspension, then `vpsfleet deploy apply` twice (the new guest's container,
#      site.yml, the customers' notices in the sink; then nothing), and the lab put back;
#   9. prints what runs where and how to reach it.
# Running it again only starts what is missing and re-applies site.yml (which changes nothing).
# scripts/lab-down.sh removes everything it made.
# Its Python steps (the plan from the fleet file, ansible-runner, the verification's summary)
# are `python -m vpsfleet.lab ...` (vpsfleet/lab.py, tested in tests/suite/test_lab.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export VPSFLEET_ROOT="$root"
export PATH="$root/.venv/bin:$PATH"
# This checkout's package first, for every Python the lab starts (the vpsfleet command, Ansible's
# inventory plugin): a worktree whose .venv links another checkout's would import that one's.
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
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
# Throwaway keys for the lab's three parties: the operators, the hand-over (docs/handover.md) and
# the customers (the lab plays every customer, to show what they see after the hand-over).
key="$lab_dir/ssh/id_ed25519"
handover_key="$lab_dir/ssh/handover"
customer_key="$lab_dir/ssh/customer"
for who in "$key:ops" "$handover_key:handover" "$customer_key:customer"; do
  [[ -f "${who%%:*}" ]] || ssh-keygen -q -t ed25519 -N "" -C "${who##*:}@vpsfleet-lab" -f "${who%%:*}"
done
# The secret the backup credentials derive from (a vault in production): a throwaway of the lab's.
secret="$lab_dir/backup-secret"
[[ -f "$secret" ]] || (umask 077 && head -c 30 /dev/urandom | base64 >"$secret")
password_seed="$lab_dir/password-seed"  # the initial passwords' seed (a Pulumi secret in production)
[[ -f "$password_seed" ]] || (umask 077 && head -c 30 /dev/urandom | base64 >"$password_seed")

# The plan, from the fleet file: pools in use, guests, the sink, the relay's name.
plan="$lab_dir/plan.sh"
python -m vpsfleet.lab plan "$sink_ipv4" >"$plan"
# What the plan assigns (declared here for the reader and for shellcheck).
pools=() guests=() stores=() monitors=() hypervisors=() edge_routers=() images=() sink_pool="" relay_host=""
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
# The pools route to each other without NAT, as in production: the monitor must see each guest
# at its own address (the node exporters' firewall admits the monitor's; the connection logs are
# filed by sender address). podman masquerades what leaves its network: these rules come first.
for from in "${pools[@]}"; do
  IFS=: read -r _ from_net _ <<<"$from"
  for to in "${pools[@]}"; do
    IFS=: read -r _ to_net _ <<<"$to"
    [[ "$from_net" == "$to_net" ]] && continue
    in_lab iptables -t nat -C POSTROUTING -s "$from_net" -d "$to_net" -j ACCEPT 2>/dev/null ||
      in_lab iptables -t nat -I POSTROUTING 1 -s "$from_net" -d "$to_net" -j ACCEPT
  done
done

step "cloud-init seeds (the Pulumi program's code, with the lab's keys)"
PYTHONPATH="$root/pulumi" python -m vpsfleet_infra.nocloud lab-seeds inventories/lab/fleet.yml \
  "$lab_dir/seeds" --operator-key "$key.pub" --handover-key "$handover_key.pub" \
  --customer-key "$customer_key.pub" --password-seed "$password_seed" --provider-machine mailsink

# start_container NAME HOSTNAME POOL IPV4: prints "new" when it had to be created, starts it when
# stopped. A systemd container at its fixed address, with its seed folder where cloud-init reads a
# NoCloud seed (what a VPS's seed disk is: cloud-init reads it at first boot). The podman command
# is vpsfleet/lab.py's (container_command), which the pipeline demo uses for its new guest too.
start_container() {
  in_lab python -m vpsfleet.lab start-container "$lab_dir" "$image" "$@"
}

step "containers"
for guest in "${guests[@]}" "${stores[@]}" "${monitors[@]}" "mailsink:$sink_ipv4:$sink_pool:provider:lab"; do
  IFS=: read -r name ipv4 pool who offer <<<"$guest"
  if [[ "$(start_container "lab-$name" "$name" "$pool" "$ipv4")" == new ]]; then
    echo "  lab-$name: created at $ipv4"
  fi
done
if ((${#hypervisors[@]})); then
  # The guests' bridge filters need br_netfilter, whose sysctls exist in a container's network
  # namespace only once this machine's kernel has the module (role hypervisor sets them).
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter
  # The base images the hypervisors fetch into their pool (hypervisor_image_urls below): small
  # empty qcow2 files of the lab's, not Debian's images (the lab has no way out). qemu-img comes
  # from the test image: this machine's libvirt set-up has no qemu-utils.
  mkdir -p "$lab_dir/images"
  for name in "${images[@]}"; do
    [[ -f "$lab_dir/images/$name.qcow2" ]] || podman run --rm --network none \
      --volume "$lab_dir/images:/images" "$image" qemu-img create -q -f qcow2 "/images/$name.qcow2" 16M
  done
fi
images_in_hypervisor=/srv/vpsfleet-lab-images
for machine in "${hypervisors[@]}" "${edge_routers[@]}"; do
  IFS=: read -r name ipv4 pool who kind <<<"$machine"
  volume=()
  [[ "$kind" == hypervisor ]] && volume=(--volume "$lab_dir/images:$images_in_hypervisor:ro")
  if [[ "$(start_container "lab-$name" "$name" "$pool" "$ipv4" --privileged "${volume[@]}")" == new ]]; then
    echo "  lab-$name: created at $ipv4 (privileged, $kind)"
  fi
done
image_urls=""
for name in "${images[@]}"; do
  image_urls+="$name: \"file://$images_in_hypervisor/$name.qcow2\", "
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
    # The lab's keys stand in for the fleet's, which are examples (the seeds carry the same).
    guest_base_operators: [{name: ops, ssh_keys: ["$(cat "$key.pub")"]}]
    guest_base_customer_ssh_keys: ["$(cat "$customer_key.pub")"]
    guest_base_mail_relay_address: "$sink_ipv4"
    guest_base_apt_update_cache: false  # the image carries every package; the lab has no way out
    vpsfleet_backup_secret: "{{ lookup('ansible.builtin.file', '$secret') }}"
unmanaged:
  vars:
    ansible_ssh_private_key_file: $handover_key  # until the hand-over removes it
managed:
  vars:
    # The lab's archives on the sink (role lab_apt_repo), in role patching's form: what lab.yml
    # sets from lab_apt_repo_sources, here too so that every site.yml of the lab (a
    # vpsfleet deploy apply of the pipeline demo) keeps them instead of removing them.
    patching_apt_sources:
      - {name: "the lab's security archive (Debian-Security)", uris: ["http://$sink_ipv4:8080/security"],
         suites: [bookworm-security], components: [main], trusted: true}
      - {name: "the lab's main archive (Debian)", uris: ["http://$sink_ipv4:8080/main"],
         suites: [bookworm], components: [main], trusted: true}
hypervisors_reachable:
  vars:
    hypervisor_apt_update_cache: false  # the image carries the packages
    hypervisor_image_urls: {${image_urls%, }}  # the lab's images above, never a download
monitors:
  vars:
    # The lab's alert demo below waits for a ticket and its resolution: shorter delays than
    # production's (role monitor's defaults), the rules and routes are the same.
    monitor_alert_for_probe_down: 30s
    monitor_group_wait: 10s
    monitor_group_interval: 15s
mail_sinks:
  hosts:
    mailsink:
      ansible_host: "$sink_ipv4"
      mail_sink_hostname: "$relay_host"
YAML

# run_playbook PLAYBOOK [LIMIT]: through ansible-runner, inside the lab's namespace.
run_playbook() {
  in_lab python -m vpsfleet.lab run-playbook "$root" "$lab_dir" "$1" "${2:-}"
}

step "applying site.yml (ansible-runner, over SSH)"
run_playbook lab.yml
# lab_ssh IPV4 COMMAND: as the operators reach a provider's machine (their key, over the lab's network).
lab_ssh() {
  in_lab ssh -i "$key" -o UserKnownHostsFile="$lab_dir/ssh/known_hosts" "root@$1" "$2"
}
step "the hypervisors and edge routers site.yml configured, seen over SSH"
for machine in "${hypervisors[@]}"; do
  IFS=: read -r name ipv4 _ <<<"$machine"
  echo "  $name ($ipv4): libvirtd, the traffic quota timer (M8), the guests' bridge, the pool and its base images"
  # shellcheck disable=SC2016  # expanded on the hypervisor
  lab_ssh "$ipv4" 'systemctl is-active libvirtd vpsfleet-traffic.timer | paste -sd" " | sed "s/^/active: /";
    ip -br link show type bridge; virsh -q -c qemu:///system net-list --all | sed "s/^/net: /";
    virsh -q -c qemu:///system pool-list --all --details | sed "s/^/pool:/";
    for p in $(virsh -q -c qemu:///system pool-list --name); do virsh -q -c qemu:///system vol-list "$p" | sed "s/^/volume ($p):/"; done;
    sysctl net.bridge.bridge-nf-call-iptables; nft list tables | paste -sd" "' | sed 's/^/    /'
done
for machine in "${edge_routers[@]}"; do
  IFS=: read -r name ipv4 _ <<<"$machine"
  echo "  $name ($ipv4): the edge ruleset (vpsfleet edge render), its dedicated servers, IPv4 forwarding"
  lab_ssh "$ipv4" 'systemctl is-active vpsfleet-edge-firewall.service | sed "s/^/vpsfleet-edge-firewall: /";
    sysctl net.ipv4.ip_forward; nft list map inet vpsfleet_edge inbound | grep elements;
    nft list set inet vpsfleet_edge management | grep elements' | sed 's/^[[:space:]]*/    /'
done

step "the managed guests' nightly security upgrade, run now (M14): what was patched, where the notice is"
python -m vpsfleet.lab_patching summary "$root/artifacts/upgrade-now"
# After site.yml: the backup annex of an unmanaged guest reads its store's certificate. Every
# run: a machine already handed over refuses the provider's keys and is left alone, and one
# that an interrupted run left un-handed-over is handed over now.
step "handing over to their customers: unmanaged guests and delivered dedicated servers"
run_playbook handover.yml

step "a backup now on the guests with a database, then its verification (as each night)"
run_playbook backup-now.yml "backup_clients:&managed"
run_playbook verify-backups.yml
python -m vpsfleet.lab verify-summary "$root/artifacts/verify-backups/summary.json"
for store in "${stores[@]}"; do
  IFS=: read -r name ipv4 _ <<<"$store"
  echo "  sets on $name:"
  lab_ssh "$ipv4" "find /srv/vpsfleet-backup -mindepth 3 -maxdepth 3 -type d -not -path '*/.vpsfleet/*' -printf '    %P\n'" | sort
done

step "the monitor: its targets, one alert fired and resolved as a ticket mail, the month's SLA report"
# Prometheus listens on the monitor's loopback: reached through SSH, as an operator does.
IFS=: read -r _ monitor_ipv4 _ <<<"${monitors[0]}"
tunnel="$lab_dir/ssh/cp/prometheus"
in_lab ssh -i "$key" -o UserKnownHostsFile="$lab_dir/ssh/known_hosts" -o ExitOnForwardFailure=yes \
  -M -S "$tunnel" -f -N -L 127.0.0.1:19090:127.0.0.1:9090 "root@$monitor_ipv4"
demo=0
in_lab python -m vpsfleet.lab_monitor demo inventories/lab/fleet.yml --prometheus http://127.0.0.1:19090 \
  --sink "$sink_ipv4" --ssh-key "$key" --known-hosts "$lab_dir/ssh/known_hosts" --out "$lab_dir/sla" || demo=$?
if ((${#hypervisors[@]})); then
  # The traffic quota job's figures (M8), from the hypervisors' node exporters (job hypervisor_node).
  echo "  the hypervisors' traffic quota job in Prometheus:"
  in_lab curl -sf --get --data-urlencode 'query={__name__=~"vpsfleet_traffic_.*",job="hypervisor_node"}' \
    http://127.0.0.1:19090/api/v1/query |
    jq -r '.data.result[] | "    \(.metric.host) \(.metric.__name__)\(if .metric.guest then "{guest=\(.metric.guest)}" else "" end) \(.value[1])"' |
    sort | grep . || echo "    (no run of the job yet)"
fi
in_lab ssh -S "$tunnel" -O exit "root@$monitor_ipv4" 2>/dev/null || true
((demo == 0)) || exit "$demo"

step "the GitOps pipeline on a merge: a new guest, a port 25 block, a suspension; apply, twice"
# In a throwaway repository of the lab's fleet (docs/lab.md): the merge made with the commands,
# the new guest's container as pulumi up would make its VM, `vpsfleet deploy apply --skip-pulumi`
# (site.yml on what changed, the notices through the sink), the mails checked, the same apply
# again (nothing sent, nothing changed), then the lab put back as its fleet says.
in_lab python -m vpsfleet.lab_pipeline demo inventories/lab/fleet.yml --lab-dir "$lab_dir" \
  --image "$image" --sink "$sink_ipv4"

step "the lab"
printf '%-12s %-16s %-18s %-9s %s\n' NAME IPV4 OFFER STATE "HOW TO REACH IT"
for guest in "${guests[@]}" "${stores[@]}" "${monitors[@]}" "${hypervisors[@]}" "${edge_routers[@]}" \
  "mailsink:$sink_ipv4:$sink_pool:provider:mail-sink"; do
  IFS=: read -r name ipv4 pool who offer <<<"$guest"
  state="$(podman container inspect -f '{{.State.Status}}' "lab-$name" 2>/dev/null || echo absent)"
  case "$who:$offer" in
    *:backup-store) how="nsenter --net=/run/netns/$netns ssh -i $key root@$ipv4 ls /srv/vpsfleet-backup  (FTPS: customer id and its derived password)" ;;
    *:hypervisor) how="nsenter --net=/run/netns/$netns ssh -i $key root@$ipv4 virsh -c qemu:///system pool-list  (libvirtd, the traffic job)" ;;
    *:edge-router) how="nsenter --net=/run/netns/$netns ssh -i $key root@$ipv4 nft list table inet vpsfleet_edge" ;;
    *:monitor) how="nsenter --net=/run/netns/$netns ssh -L 9090:127.0.0.1:9090 -i $key root@$ipv4  (Prometheus on its loopback)" ;;
    *:mail-sink) how="podman exec lab-mailsink ls /var/mail/sink/new  ($(podman exec lab-mailsink sh -c 'ls /var/mail/sink/new | wc -l') mails); apt repository http://$sink_ipv4:8080/" ;;
    provider:*) how="nsenter --net=/run/netns/$netns ssh -i $key root@$ipv4" ;;
    *) how="handed over, the customer's alone: nsenter --net=/run/netns/$netns ssh -i $customer_key root@$ipv4  (the lab's customer key)" ;;
  esac
  printf '%-12s %-16s %-18s %-9s %s\n' "$name" "$ipv4" "$offer" "$state" "$how"
done
echo
echo "lab up in $((SECONDS - started)) s; scripts/lab-down.sh (make lab-down) removes it."
