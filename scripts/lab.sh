#!/usr/bin/env bash
# The main job. Until the container lab exists (issue 4) it validates the lab fleet and shows it.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/vpsfleet validate lab
.venv/bin/vpsfleet show lab
