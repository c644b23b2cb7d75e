#!/usr/bin/env bash
# The CUDA checks of one lent-GPU session, in one go (about 8 minutes): GPU tests, the
# StyleGAN2 throughput grid (issue 4) and a short comparison on the GPU. Writes logs and
# JSON to $OUT (or ./gpu_out). Usage: bash experiments/gpu_checks.sh
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 WANDB_MODE=offline GENFACE_CACHE=/tmp/genface_cache
# pure-Python dependencies carried to a machine that lacks them (see the device notes)
[ -d .gpu_site ] && export PYTHONPATH="$PWD/.gpu_site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L; python3 -c "import torch, lightning; print('torch', torch.__version__, 'lightning', lightning.__version__, torch.cuda.get_device_name(0))"
echo "== GPU tests"
timeout 120 python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider 2>&1 | tail -12 | tee "$OUT/gpu_tests.txt"
echo "== StyleGAN2 throughput (config-F widths, batch 32)"
for cl in "" "--channels-last"; do
  timeout 70 python3 experiments/bench_stylegan2.py --device cuda --resolutions 64 128 256 --precision fp32 bf16 \
    $cl --batch-size 32 --steps 16 --warmup 4 --out "$OUT/sg2${cl:+_cl}.json" 2>&1 | tail -9
done
timeout 100 python3 experiments/bench_stylegan2.py --device cuda --resolutions 64 128 --precision bf16 \
  --compile --batch-size 32 --steps 16 --warmup 8 --out "$OUT/sg2_compile.json" 2>&1 | tail -6
echo "== compare on GPU (64 px, 32k images per model)"
timeout 90 python3 -m genface.cli.compare trainer_config=gpu resolution=64 budget_images=32000 out_dir="$OUT/compare" \
  "overrides=['~callbacks.rich_progress_bar','trainer.enable_progress_bar=false']" 2>&1 | grep -v "^\s*$" | tail -14
rm -rf "$OUT/compare/runs"/*/checkpoints "$OUT/compare/runs"/*/pretrained
