#!/usr/bin/env bash
# ruff, mypy (strict for the vpsfleet package), yamllint and ansible-lint (production profile).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
echo "lint: ruff";  "$bin/ruff" check .
echo "lint: mypy";  "$bin/mypy" vpsfleet tests benchmarks pulumi/vpsfleet_infra
echo "lint: yamllint"; "$bin/yamllint" --strict .
if compgen -G "ansible/roles/*/tasks/main.yml" >/dev/null || compgen -G "ansible/playbooks/*.yml" >/dev/null; then
  echo "lint: ansible-lint"
  (cd ansible && PATH="$PWD/../$bin:$PATH" "../$bin/ansible-lint" --profile production)
fi
