#!/usr/bin/env bash
# The checkout's ansible/ folder as the collection vpsfleet.platform: Ansible finds a collection
# only at <collections path>/ansible_collections/<namespace>/<name>, so this makes
# .cache/collections/ansible_collections/vpsfleet/platform, a relative link to ansible/ (git
# ignores .cache/). ansible/ansible.cfg puts .cache/collections first in collections_path, so
# vpsfleet.platform.* (the inventory plugin above all) resolves to the files being edited.
# Idempotent; tests/ansible/conftest.py runs it too, so the tests need no prior setup.
set -euo pipefail
root="${VPSFLEET_ROOT:?}"
parent="$root/.cache/collections/ansible_collections/vpsfleet"
link="$parent/platform"
want="../../../../ansible"
if [[ -L "$link" && "$(readlink "$link")" == "$want" ]]; then
  echo "  collection link present"
  exit 0
fi
mkdir -p "$parent"
# Two pytest workers may make it at once: the other one's link is as good.
ln -sfn "$want" "$link" 2>/dev/null || [[ "$(readlink "$link")" == "$want" ]]
echo "  linked $link -> ansible/"
