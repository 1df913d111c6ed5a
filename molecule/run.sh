#!/usr/bin/env bash
# Runs Molecule on one scenario with the repository's shared base configuration.
#   molecule/run.sh ansible/roles/guest_base test            (the role's `default` scenario)
#   molecule/run.sh . test -s site                       (the site scenario under molecule/)
#   molecule/run.sh ansible/roles/guest_base converge        (any molecule sub-command)
set -euo pipefail
export VPSFLEET_ROOT="${VPSFLEET_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}"
project="${1:?usage: molecule/run.sh PROJECT_DIR COMMAND [ARGS...]}"
shift
export PATH="$VPSFLEET_ROOT/.venv/bin:$PATH"
# The systemd test image (built once, cached by recipe hash).
bash "$VPSFLEET_ROOT/scripts/build-test-image.sh" >/dev/null 2>&1
# The checkout's ansible/ as the collection vpsfleet.platform (the inventory plugin by FQCN).
bash "$VPSFLEET_ROOT/scripts/setup.d/25-collection-link.sh" >/dev/null
# The programs the roles install, from vpsfleet_agents/ (reproducible: unchanged sources, same bytes).
(cd "$VPSFLEET_ROOT" && .venv/bin/python -m vpsfleet.agent_build >/dev/null)
# Molecule keys its working folder (inventory links, instance state) by the checkout's folder
# name alone, so every checkout called `main` shared one, and a link left by a removed checkout
# broke the next run ("File exists"). One folder per checkout, project and scenario instead.
scenario=default
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -s | --scenario-name) scenario="${args[i + 1]:-default}" ;;
    --scenario-name=*) scenario="${args[i]#*=}" ;;
  esac
done
checkout_key="$(printf '%s' "$VPSFLEET_ROOT/$project" | sha256sum | cut -c1-12)"
export MOLECULE_EPHEMERAL_DIRECTORY="${XDG_CACHE_HOME:-$HOME/.cache}/vpsfleet-molecule/$checkout_key/$scenario"
cd "$VPSFLEET_ROOT/$project"
exec molecule --base-config "$VPSFLEET_ROOT/molecule/shared/base.yml" "$@"
