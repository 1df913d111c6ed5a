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

# The programs shipped to machines are extension-less Python files (until issue 11 gives them a
# package): ruff and strict mypy check them by name, found by their shebang.
mapfile -t programs < <(git ls-files -- 'ansible/*/files/*' | while read -r f; do
  [[ "$(basename "$f")" != *.* ]] && head -1 "$f" | grep -q '^#!.*python' && echo "$f"; done)
step ruff "$bin/ruff" check . "${programs[@]}"
step mypy "$bin/mypy" vpsfleet vpsfleet_agents tests benchmarks pulumi/vpsfleet_infra
programs_mypy() { local f; for f in "${programs[@]}"; do "$bin/mypy" --strict --scripts-are-modules "$f" || return 1; done; }
step "mypy (shipped programs)" programs_mypy
step yamllint "$bin/yamllint" --strict .
if compgen -G "ansible/roles/*/tasks/main.yml" >/dev/null || compgen -G "ansible/playbooks/*.yml" >/dev/null; then
  step ansible-lint ansible_lint
fi
