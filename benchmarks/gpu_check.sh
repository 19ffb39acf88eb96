#!/usr/bin/env bash
# The GPU figures of BENCHMARKS.md in one run (about 8 minutes on one H100):
#   1. the CIFAR-10 speedrun at airbench94's own settings (10 epochs at batch 1024, lr 1.5):
#      time and test top-1 on the JPEG copy;
#   2. images/s of the streaming loader, JPEGs decoded in the workers and with nvJPEG;
#   3. the training-step time of ResNet-50 at batch 256 in bf16 with channels_last.
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--data DIR] [--out FOLDER]
#
# DIR holds cifar10-jpeg.tar.gz (default: $CNNZOO_DATA, else ../shared/data). --dry-run runs
# every step on the CPU at toy sizes (a few seconds each): what the tests run, so the script
# stays working until a GPU is at hand. Each step's report is also written under FOLDER.
set -euo pipefail

dry_run=0
data="${CNNZOO_DATA:-../shared/data}"
out="${TMPDIR:-/tmp}/cnnzoo-gpu-check"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --data) data="$2"; shift ;;
        --out) out="$2"; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
archive="$data/cifar10-jpeg.tar.gz"
if [[ ! -f "$archive" && ! -d "$data/cifar10-jpeg" ]]; then
    echo "gpu_check.sh: no $archive and no $data/cifar10-jpeg/; pass --data DIR" >&2
    exit 2
fi
mkdir -p "$out"
if [[ ! -d "$data/cifar10-jpeg" ]]; then  # extract once, beside the reports
    if [[ ! -d "$out/data/cifar10-jpeg" ]]; then
        mkdir -p "$out/data"
        tar xzf "$archive" -C "$out/data"
    fi
    data="$out/data"
fi

if (( dry_run )); then
    device=cpu
    speedrun_options=(train_cfg.max_epochs=1 data.train_subset=256 data.test.batch_size=200
                      device=cpu amp.enabled=False)
    stream_options=(--images 40 --workers 1 --batch-size 8 --repeats 1 --device cpu)
    step_options=(--device cpu --batch-size 2 --size 64 --steps 2 --warmup 1)
else
    device=cuda
    python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
        echo "gpu_check.sh: no CUDA GPU is visible; run with --dry-run to check the script on a CPU" >&2
        exit 2
    }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    speedrun_options=(train_cfg.max_epochs=10 data.train.batch_size=1024 optimizer.lr=1.5
                      param_scheduler.max_lr=1.5 device=cuda)
    stream_options=(--images 20000 --workers 12 --batch-size 256 --repeats 2 --device cuda)
    step_options=(--device cuda --batch-size 256 --steps 30 --warmup 10)
fi

echo "== 1/3 CIFAR-10 speedrun at airbench94's settings ($device)"
python "$here/speedrun.py" configs/speedrun/cifar10_94.py --data "$data" --seeds 1 \
    --target 94 --cfg-options "${speedrun_options[@]}" --output "$out/speedrun_cifar10.md"

echo "== 2/3 streaming loader: worker decoding and nvJPEG ($device)"
python "$here/stream_loader.py" --cifar "$archive" --folder "$out/stream-jpegs" \
    "${stream_options[@]}" --output "$out/stream_loader.md"

echo "== 3/3 ResNet-50 training step, batch 256, bf16 + channels_last ($device)"
python "$here/resnet50_step.py" "${step_options[@]}" | tee "$out/resnet50_step.txt"

echo "reports: $out"
