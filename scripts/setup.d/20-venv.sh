#!/usr/bin/env bash
# The project's virtualenv in .venv, with the project and its pinned tools installed.
# Reinstalls only when pyproject.toml changes (its hash is kept in the venv).
set -euo pipefail
root="${VPSFLEET_ROOT:?}"
venv="$root/.venv"
stamp="$venv/.pyproject.sha256"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "  virtualenv up to date"
  exit 0
fi
python3.11 -m venv "$venv"
"$venv/bin/pip" install -q --upgrade pip >"$venv/pip.log" 2>&1 || { cat "$venv/pip.log"; exit 1; }
"$venv/bin/pip" install -q -e "${root}[dev]" >"$venv/pip.log" 2>&1 || { cat "$venv/pip.log"; exit 1; }
echo "$want" > "$stamp"
