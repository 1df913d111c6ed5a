#!/usr/bin/env bash
# ruff, mypy (strict for the vpsfleet package), yamllint and ansible-lint (production profile).
# With VPSFLEET_TIMING set to a file, each step appends its duration there (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin

step() {  # step NAME COMMAND...: runs it, records its time
  local name="$1" start=$SECONDS
  shift
  echo "lint: $name"
  "$@"
  if [[ -n "${VPSFLEET_TIMING:-}" ]]; then
    printf '{"part": "lint %s", "seconds": %d}\n' "$name" "$((SECONDS - start))" >>"$VPSFLEET_TIMING"
  fi
}

ansible_lint() { (cd ansible && PATH="$PWD/../$bin:$PATH" "../$bin/ansible-lint" --profile production); }

step ruff "$bin/ruff" check .
step mypy "$bin/mypy" vpsfleet tests benchmarks pulumi/vpsfleet_infra
step yamllint "$bin/yamllint" --strict .
if compgen -G "ansible/roles/*/tasks/main.yml" >/dev/null || compgen -G "ansible/playbooks/*.yml" >/dev/null; then
  step ansible-lint ansible_lint
fi
