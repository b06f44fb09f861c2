#!/usr/bin/env bash
# The one command a session with a lent GPU runs as it is, from the repository root (carry .whl):
#   bash benchmarks/gpu_command.sh
# 1. installs the wheels in .whl/ (benchmarks/download_wheels.sh) the image lacks;
# 2. python run.py bench gpu: compute-sanitizer synccheck+memcheck on a small case of every kernel,
#    pytest -m gpu, then the benchmarks, each section in its own process, rows saved as they finish.
# All under $OUT (gpu_command.log, pip.log, bench-gpu/, gpu_check_sections.tar.gz). DRY_RUN=1: the same
# steps on the CPU at tiny sizes (Triton interpreter). BUDGET_S: bench seconds (420).
set -u
OUT="${OUT:-runs/gpu-command}"
mkdir -p "$OUT"
LOG="$OUT/gpu_command.log"
log() { echo "[gpu_command $(date -u +%T)] $*" | tee -a "$LOG"; }
log "start; python $(python -c 'import sys; print(sys.version.split()[0])')"
nvidia-smi >> "$LOG" 2>&1 || log "no nvidia-smi"
if ls .whl/*.whl > /dev/null 2>&1; then
  # --no-deps: neuraloperator lists wandb, which nothing here imports (a resolved install fails on it)
  python -m pip install --no-index --no-deps .whl/*.whl > "$OUT/pip.log" 2>&1 || log "pip failed: see pip.log"
fi
python -c "import neuralop, sigpy, pywt, optuna, nilearn" >> "$LOG" 2>&1 && log "libraries importable" \
  || log "some library is missing (its sections record the skip)"
if [ "${DRY_RUN:-0}" = 1 ]; then
  export TRITON_INTERPRET=1
  python run.py bench gpu --dry-run --out "$OUT/bench-gpu" --budget-s "${BUDGET_S:-420}" 2>&1 | tee -a "$LOG"
else
  python run.py bench gpu --out "$OUT/bench-gpu" --budget-s "${BUDGET_S:-420}" 2>&1 | tee -a "$LOG"
fi
log "bench gpu exit ${PIPESTATUS[0]}"
# A device call brings back 8 files at most: the sections' rows and logs go as one archive
S="$OUT/bench-gpu/gpu_check_sections"
[ -d "$S" ] && tar -czf "$OUT/gpu_check_sections.tar.gz" -C "$OUT/bench-gpu" gpu_check_sections && rm -rf "$S"
