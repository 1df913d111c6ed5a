#!/usr/bin/env bash
# Posts FILE (the plan, or the refusal, of ci/fleet.sh plan) as a note on the merge request, through
# GitLab's API with the project access token of the CI variable VPSFLEET_GITLAB_TOKEN (scope api,
# role Reporter). Without the token the plan stays in the job's artifacts only. The token goes to
# curl on its standard input, never on its command line.
set -euo pipefail
file="${1:?usage: ci/gitlab-mr-note.sh FILE}"
if [[ -z "${VPSFLEET_GITLAB_TOKEN:-}" ]]; then
  echo "no VPSFLEET_GITLAB_TOKEN: the plan is not posted (it is in the job's artifacts)"
  exit 0
fi
if [[ ! -s "$file" ]]; then
  echo "no $file: nothing to post"
  exit 0
fi
url="${CI_API_V4_URL:?}/projects/${CI_PROJECT_ID:?}/merge_requests/${CI_MERGE_REQUEST_IID:?}/notes"
curl --silent --show-error --fail --output /dev/null --request POST --header @- \
  --data-urlencode "body@$file" "$url" <<<"PRIVATE-TOKEN: $VPSFLEET_GITLAB_TOKEN"
echo "plan posted on merge request !$CI_MERGE_REQUEST_IID"
