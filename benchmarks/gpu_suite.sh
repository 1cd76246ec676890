#!/usr/bin/env bash
# The GPU suite (benchmarks/gpu_suite.py): on a CUDA machine with ganforge installed, run as is;
# anywhere, --dry-run lists what it would run. Installs nothing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
if [ -x "$here/../.venv/bin/python" ] && [ -z "${PYTHON:-}" ]; then python="$here/../.venv/bin/python"; fi
exec "$python" "$here/gpu_suite.py" "$@"
