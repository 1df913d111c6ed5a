#!/usr/bin/env bash
# The fleet pipeline's steps, the one place where their command lines live: ci/gitlab-ci.yml and
# ci/github/fleet.yml both call `bash ci/fleet.sh STEP` from the root of the fleet repository (a
# checkout of vpsfleet whose inventories/ holds the provider's fleet; docs/pipelines.md).
#   install          the virtualenv .venv as scripts/setup.sh makes it, and the collection link
#   validate TARGET  vpsfleet validate ENV --against the target branch's tip
#   plan TARGET      vpsfleet deploy plan ENV --from the target's tip --to HEAD, kept in
#                    $VPSFLEET_CI_OUT/plan.txt and, ready to post, plan.md (a refusal too)
#   apply            vpsfleet deploy apply ENV --from <last deployed revision> --to HEAD
#   nightly          vpsfleet deploy nightly ENV
# Variables: VPSFLEET_ENV (the environment: inventories/ENV/fleet.yml); VPSFLEET_STATE_DIR (apply
# and nightly: the state kept between runs, an existing folder); VPSFLEET_DEPLOY_OPTIONS (more
# flags of apply and nightly, e.g. --skip-pulumi); VPSFLEET_BEFORE_SHA (the CI's previous tip of
# the branch, used while the state names no deployed revision); VPSFLEET_NOW (ISO-8601: pins the
# clock, for reproducible runs and tests); VPSFLEET_CI_OUT (reports and artifacts, ci-output/).
# Secrets come from the environment only (PULUMI_CONFIG_PASSPHRASE, VPSFLEET_PASSWORD_SEED,
# VPSFLEET_BACKUP_SECRET, VPSFLEET_SSH_KEY: a file) and are never written by this script.
set -euo pipefail
step="${1:?usage: ci/fleet.sh install | validate TARGET | plan TARGET | apply | nightly}"
env="${VPSFLEET_ENV:?VPSFLEET_ENV must name the environment (inventories/ENV/fleet.yml)}"
out="${VPSFLEET_CI_OUT:-ci-output}"
vpsfleet=.venv/bin/vpsfleet
export VPSFLEET_ROOT="$PWD"
mkdir -p "$out"

now_flags=()     # --now for deploy, --today for validate: only when VPSFLEET_NOW pins the clock
today_flags=()
if [[ -n "${VPSFLEET_NOW:-}" ]]; then
  now_flags=(--now "$VPSFLEET_NOW")
  today_flags=(--today "${VPSFLEET_NOW%%T*}")
fi

# The tip of the merge request's target branch. A merge request's pipeline fetches only its own
# branch, so the target is fetched first when the checkout has a remote.
target_rev() {
  local branch="${1:?the target branch}"
  if git remote get-url origin >/dev/null 2>&1; then
    git fetch --quiet origin "+refs/heads/$branch:refs/remotes/origin/$branch"
    echo "origin/$branch"
  else
    echo "$branch"
  fi
}

# apply and nightly write their record (notices sent, runs, ansible-runner artifacts) there: a
# folder that outlives the job. A missing one would mean a lost record and notices sent twice.
state_dir() {
  local dir="${VPSFLEET_STATE_DIR:?VPSFLEET_STATE_DIR must name the persisted state folder (docs/pipelines.md)}"
  [[ -d "$dir" ]] || { echo "ci/fleet.sh: state folder $dir does not exist: is the runner's state volume mounted? (docs/pipelines.md)" >&2; return 1; }
  echo "$dir"
}

# --from of apply: the revision the last successful apply reached (recorded in the state), else
# the CI's previous tip of the branch. Never a guess: a missing one stops the job.
deployed_rev() {
  local state="$1" rev=""
  if [[ -s "$state/ci-deployed-revision" ]]; then
    rev="$(cat "$state/ci-deployed-revision")"
  elif [[ -n "${VPSFLEET_BEFORE_SHA:-}" && ! "$VPSFLEET_BEFORE_SHA" =~ ^0+$ ]]; then
    rev="$VPSFLEET_BEFORE_SHA"
  fi
  if [[ -z "$rev" ]] || ! git cat-file -e "$rev^{commit}" 2>/dev/null; then
    echo "ci/fleet.sh: no deployed revision to apply from (got '${rev}'): write the revision" \
      "production runs into $state/ci-deployed-revision once (docs/pipelines.md)" >&2
    return 1
  fi
  echo "$rev"
}

# The SSH key (a file the CI wrote from its variable) goes into an agent for this job only:
# Pulumi's qemu+ssh connections and Ansible both use the agent, and the key file is read once.
start_ssh_agent() {
  [[ -n "${VPSFLEET_SSH_KEY:-}" ]] || return 0
  eval "$(ssh-agent -s)" >/dev/null
  trap 'ssh-agent -k >/dev/null' EXIT
  ssh-add -q - <"$VPSFLEET_SSH_KEY"
}

# The files apply or nightly wrote in the state during this job (ansible-runner's artifacts
# among them) are copied to $out/state/ for the CI to keep with the job.
keep_state_changes() {
  local state="$1" since="$2" file
  while IFS= read -r -d '' file; do
    mkdir -p "$out/state/$(dirname "${file#"$state"/}")"
    cp -p "$file" "$out/state/${file#"$state"/}"
  done < <(find "$state" -type f -newer "$since" ! -name ci-deployed-revision -print0)
}

# apply ARGS... / nightly: the deploy command with the environment's inventory, the CI's secret
# inventory (ci/secrets-inventory.yml reads the secrets from the environment) and the options.
deploy() {
  local verb="$1" state started rc=0 extra=()
  shift
  state="$(state_dir)"
  read -ra extra <<<"${VPSFLEET_DEPLOY_OPTIONS:-}"
  start_ssh_agent
  started="$(mktemp)"
  "$vpsfleet" deploy "$verb" "$env" "$@" --state-dir "$state" \
    --inventory "$PWD/inventories/$env/vpsfleet.yml" --inventory "$PWD/ci/secrets-inventory.yml" \
    "${now_flags[@]}" "${extra[@]}" || rc=$?
  keep_state_changes "$state" "$started"
  rm -f "$started"
  return "$rc"
}

case "$step" in
  install)
    bash scripts/setup.d/20-venv.sh
    bash scripts/setup.d/25-collection-link.sh
    ;;
  validate)
    against="$(target_rev "${2:-}")"
    "$vpsfleet" validate "$env" --against "$against" "${today_flags[@]}"
    ;;
  plan)
    from="$(target_rev "${2:-}")"
    rc=0
    "$vpsfleet" deploy plan "$env" --from "$from" --to HEAD "${now_flags[@]}" \
      >"$out/plan.txt" 2>"$out/plan-refused.txt" || rc=$?
    cat "$out/plan.txt"
    cat "$out/plan-refused.txt" >&2
    {
      echo "### vpsfleet deploy plan $env (from $from to $(git rev-parse --short HEAD))"
      echo
      if ((rc == 0)); then
        echo '```'
        cat "$out/plan.txt"
      else
        echo "**Refused** (exit $rc): nothing will be applied."
        echo
        echo '```'
        cat "$out/plan-refused.txt"
      fi
      echo '```'
    } >"$out/plan.md"
    exit "$rc"
    ;;
  apply)
    state="$(state_dir)"
    from="$(deployed_rev "$state")"
    deploy apply --from "$from" --to HEAD
    git rev-parse HEAD >"$state/ci-deployed-revision"
    ;;
  nightly)
    deploy nightly
    ;;
  *)
    echo "ci/fleet.sh: unknown step '$step'" >&2
    exit 2
    ;;
esac
