#!/usr/bin/env bash
# Set up, then dub a synthetic talking face with a different speech track (nothing downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lipdub demo -o lipdub-demo.mp4 --work-dir lipdub-work
