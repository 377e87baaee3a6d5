#!/usr/bin/env bash
# Set up, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# torch for the learned backend's tests, pinned and first: 2.13.0 installs as a CPU build
# where CI runs (left to choose, pip takes a CUDA build of several GB); the demo and the
# default path need none
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[test,learned]"
.venv/bin/python -m pytest -q "$@"
