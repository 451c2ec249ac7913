#!/usr/bin/env bash
# One GPU check for bdmm, prepared to run on a CUDA machine in under 8 minutes:
#   1. pytest -m gpu (the CUDA tests: deformable conv vs torchvision in fp32/fp16/bf16, flows)
#   2. bench_generator: batch 1 (one video; the recurrence is sequential per video) with
#      fp32 / channels-last / fp16 / bf16 autocast / torch.compile, ratios vs the reference
#   3. bench_generator: batch 8 (batched videos), fp32 / bf16 / fp16
#   4. bench_flow (mesh flows), 5. bench_animate (end to end, by stage), 6. bench_train
#   7. bench_batch: 8 jobs as 8 animate processes / 1 batch process / torchrun, one process per GPU
# Every step has its own timeout; a failing or timed-out step is recorded and the next runs.
# Writes one markdown file: $OUT/gpu.md when OUT is set, else benchmarks/results/gpu.md,
# plus each step's full log beside it (logs/).
#
#   bash benchmarks/gpu_check.sh            # from the repository root, venv active
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
if [ -n "${OUT:-}" ]; then DEST="$OUT"; else DEST="$ROOT/benchmarks/results"; fi
mkdir -p "$DEST/logs"
REPORT="$DEST/gpu.md"
SUMMARY="$DEST/logs/summary.tmp"
: > "$SUMMARY"
START=$(date +%s)

{
  echo "# GPU check ($(date -u '+%Y-%m-%d %H:%M UTC'))"
  echo
  echo "- git: $(git rev-parse --short HEAD 2>/dev/null || echo '?') on $(git rev-parse --abbrev-ref HEAD 2>/dev/null || echo '?')"
  echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo 'nvidia-smi not found')"
  echo "- $("$PY" -c 'import torch, torchvision; print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA {torch.version.cuda}, available {torch.cuda.is_available()}")' 2>&1 | tail -1)"
  echo "- CPU: $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg)"
  echo
} > "$REPORT.head"

# step NAME TIMEOUT_S COMMAND...: runs it, logs to logs/NAME.log, records status and time
step() {
  local name="$1" limit="$2"; shift 2
  local log="$DEST/logs/$name.log" t0 rc status
  t0=$(date +%s)
  echo ">>> $name (timeout ${limit}s): $*" >&2
  timeout -k 10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  case $rc in
    0) status="ok" ;;
    124|137) status="timed out after ${limit}s" ;;
    *) status="failed (exit $rc)" ;;
  esac
  echo "| $name | $status | $(( $(date +%s) - t0 )) | \`$*\` |" >> "$SUMMARY"
  echo "<<< $name: $status" >&2
  return 0
}

step pytest_gpu 75 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/
step generator_b1 150 "$PY" benchmarks/bench_generator.py --device cuda --batch 1 --rounds 3 --windows 2 \
  --markdown "$DEST/logs/generator_b1.md"
step generator_b8 75 "$PY" benchmarks/bench_generator.py --device cuda --batch 8 --rounds 2 --no-profile \
  --paths reference fast fast+cl fast+bf16 fast+fp16 --markdown "$DEST/logs/generator_b8.md"
step flow 40 "$PY" benchmarks/bench_flow.py --quick
step animate 70 "$PY" benchmarks/bench_animate.py --device cuda --quick --speed-only
step train 60 "$PY" benchmarks/bench_train.py --device cuda --repeats 2 --parts window G
step pose_detectors 60 "$PY" benchmarks/bench_pose.py --detectors --device cuda --frames 16 --batch 8 --clip-frames 16
NGPU=$(nvidia-smi -L 2>/dev/null | wc -l); [ "$NGPU" -ge 1 ] || NGPU=1
step batch 150 "$PY" benchmarks/bench_batch.py --device cuda --nproc "$NGPU" --frames 24 --markdown "$DEST/logs/batch.md"

{
  cat "$REPORT.head"
  echo "Total: $(( $(date +%s) - START )) s."
  echo
  echo "| step | status | seconds | command |"
  echo "|---|---|---|---|"
  cat "$SUMMARY"
  for f in generator_b1 generator_b8 batch; do
    if [ -s "$DEST/logs/$f.md" ]; then
      echo; echo "## $f"; echo; cat "$DEST/logs/$f.md"
    fi
  done
  for f in pytest_gpu flow animate train; do
    echo; echo "## $f (last lines of logs/$f.log)"; echo; echo '```'
    tail -n 25 "$DEST/logs/$f.log" 2>/dev/null
    echo '```'
  done
} > "$REPORT"
rm -f "$REPORT.head" "$SUMMARY"
echo "wrote $REPORT" >&2
