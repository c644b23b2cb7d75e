#!/usr/bin/env bash
# The CUDA checks of one lent-GPU session, in one go: GPU tests, the StyleGAN2 throughput
# grid (issue 4), the all-model benchmark and a GPU comparison. Writes logs/JSON to $OUT
# (or ./gpu_out). Usage: bash experiments/gpu_checks.sh
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 WANDB_MODE=offline GENFACE_CACHE=/tmp/genface_cache
[ -d .gpu_site ] && export PYTHONPATH="$PWD/.gpu_site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi -L; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
echo "== GPU tests"; timeout 200 python3 -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider -x 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
echo "== StyleGAN2 throughput"
for cl in "" "--channels-last"; do
  timeout 120 python3 experiments/bench_stylegan2.py --device cuda --resolutions 64 128 256 --precision fp32 bf16 \
    $cl --batch-size 32 --steps 32 --warmup 8 --out "$OUT/sg2${cl:+_cl}.json" 2>&1 | tail -12
done
timeout 150 python3 experiments/bench_stylegan2.py --device cuda --resolutions 64 128 256 --precision bf16 \
  --compile --batch-size 32 --steps 32 --warmup 16 --out "$OUT/sg2_compile.json" 2>&1 | tail -8
echo "== all models"
timeout 120 python3 experiments/benchmark.py --device cuda --resolutions 64 --batch-size 64 --steps 20 --warmup 5 \
  --in-process --out "$OUT/bench_models.json" 2>&1 | tail -15
echo "== compare on GPU"
timeout 200 python3 -m genface.cli.compare trainer=gpu resolution=64 budget_images=64000 out_dir="$OUT/compare" \
  "overrides=['~callbacks.rich_progress_bar','trainer.enable_progress_bar=false']" 2>&1 | tail -30
rm -rf "$OUT/compare/runs"/*/checkpoints "$OUT/compare/runs"/*/pretrained
