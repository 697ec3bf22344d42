#!/usr/bin/env bash
# One call of the paper-scale benchmark on a remote GPU machine (docs/gpu.md says how the calls go).
#
#   bash benchmarks/gpu_session.sh check             # the CUDA tests of the device path (no CIFAR-10 needed)
#   bash benchmarks/gpu_session.sh measure [SECONDS]  # unpack CIFAR-10 from .gpu-data/part*, then speed and
#                                                     # recipe (seed 0) within SECONDS (default 420), eager
#   bash benchmarks/gpu_session.sh more [SECONDS]     # compiled speed, labels, more seeds, then the grid
#
# The runs are eager (bf16, no torch.compile): compiling each net costs tens of seconds, more than it
# saves in a 30-epoch run of ResNet-18; `more` measures what compiling does to a step.
#
# Runs from the repository root with the machine's own python3 and torch (taskspace from the working
# tree, not installed); everything it measures goes under $OUT, a log included.
set -euo pipefail
step=${1:?usage: gpu_session.sh check|measure|more [seconds]}
budget=${2:-420}
out=${OUT:-/tmp/paper-scale}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec > >(tee -a "$out/$step.log") 2>&1

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || echo "no nvidia-smi here"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

case "$step" in
  check)
    python3 -m pytest -q -p no:cacheprovider tests/test_training_compute.py tests/test_data_augment.py
    ;;
  measure)
    python3 benchmarks/data_parts.py unpack --parts .gpu-data --to .gpu-data/data
    export TASKSPACE_DATA=.gpu-data/data
    python3 benchmarks/paper_scale.py speed recipe --device cuda --precision bf16 \
      --epochs 30 --seeds 0 --recipes e2e,paper_lr0.5,supcon,paper --modules 2 --budget-seconds "$budget" \
      --out-dir "$out"
    ;;
  more)
    export TASKSPACE_DATA=.gpu-data/data
    python3 benchmarks/paper_scale.py speed --device cuda --precision bf16 --compile --tag cuda-compiled \
      --budget-seconds "$budget" --out-dir "$out"
    python3 benchmarks/paper_scale.py labels recipe grid --device cuda --precision bf16 \
      --epochs 30 --seeds 0,1,2 --recipes e2e,paper_lr0.5,supcon,paper --modules 2,3 --budget-seconds "$budget" \
      --out-dir "$out"
    ;;
  *)
    echo "unknown step '$step': use check, measure or more" >&2
    exit 2
    ;;
esac
