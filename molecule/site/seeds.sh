#!/usr/bin/env bash
# The site scenario's first step (Molecule's `dependency`, before `create`): throwaway keys for
# the operators, the hand-over and the customers, and each machine's cloud-init seed rendered by
# the Pulumi program's own code (pulumi/vpsfleet_infra/nocloud.py), which molecule.yml mounts
# where cloud-init reads a NoCloud seed. No key is put into a container by hand: cloud-init does
# it at first boot, as on a production VPS.
set -euo pipefail
root="${VPSFLEET_ROOT:?}"
work="${MOLECULE_EPHEMERAL_DIRECTORY:?}"
mkdir -p "$work/keys"
chmod 700 "$work/keys"
for who in ops handover customer; do
  [[ -f "$work/keys/$who" ]] || ssh-keygen -q -t ed25519 -N "" -C "$who@vpsfleet-site" -f "$work/keys/$who"
done
[[ -f "$work/keys/password-seed" ]] || (umask 077 && head -c 30 /dev/urandom | base64 >"$work/keys/password-seed")
rm -rf "$work/seeds"
PYTHONPATH="$root/pulumi" "$root/.venv/bin/python" -m vpsfleet_infra.nocloud lab-seeds \
  "$root/inventories/lab/fleet.yml" "$work/seeds" --operator-key "$work/keys/ops.pub" \
  --handover-key "$work/keys/handover.pub" --customer-key "$work/keys/customer.pub" \
  --password-seed "$work/keys/password-seed" --provider-machine mailsink
rm -f "$work/known_hosts"  # new containers, new host keys
