#!/usr/bin/env bash
# The GPU proof in one run (see benchmarks/gpu_check.py for the steps and the output folder).
#
#   bash benchmarks/gpu_check.sh [OUTDIR] [--dry-run]    # OUTDIR: $OUT, else ./gpu-check-out
#
# Runs with the first of $PYTHON, the checkout's .venv/bin/python, python3.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -n "${PYTHON:-}" ]]; then
    py="$PYTHON"
elif [[ -x "$root/.venv/bin/python" ]]; then
    py="$root/.venv/bin/python"
else
    py=python3
fi
exec "$py" "$root/benchmarks/gpu_check.py" "$@"
