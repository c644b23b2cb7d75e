#!/usr/bin/env bash
# Issue 15's checks for one lent GPU slot (15 minutes of device time, start included), in one go:
#   1. genface (fast_ops on) vs NVlabs stylegan2-ada-pytorch StyleGAN2, side by side in one process
#      (experiments/bench_reference.py), 64/128/256 px, config-F widths, batch 32, fp32
#      (TF32 off for both); NVlabs' custom ops compiled if its toolchain works (the JSON says);
#      genface with divergence.check_every=16 (its finiteness checks, the only host-device syncs
#      of its step, every 16 steps; NVlabs' loop makes none per step);
#   2. the same at 128/256 px in each one's mixed precision (genface bf16-mixed, NVlabs fp16 in
#      the top 4 resolutions with conv_clamp 256);
#   2b. both in NVlabs' scheme (fp16 in the top 4 resolutions, conv_clamp 256; genface num_fp16_res=4);
#   3. the CUDA test suite (pytest -m gpu);
#   4. experiments/benchmark.py images/s of every model (64 px, batch 32, fp32);
#   5. genface's compile mode (bf16 + compile_stylegan2) against NVlabs fp16 at 128 px.
# Every part has its own timeout (caps add up to 11 minutes; expected well under); after each
# part the JSON so far is merged, so a run cut short still returns what it measured. Everything lands in
# $OUT/gpu_check.json (all JSON merged) and $OUT/gpu_check.log (the full log).
#
# PREPARE (here, on the CPU machine, in the repository root; a few MB, nothing committed):
#   bash experiments/gpu_check.sh --prepare
# copies the reference checkouts named by GENFACE_REF_NVLABS / GENFACE_REF_ROSINALITY into
# .cache/ref/ (ignored by git) and downloads the wheels the device lacks (hydra-core, omegaconf,
# antlr4, kornia, kornia_rs: the device image has torch, lightning, torchmetrics, safetensors,
# rich, scipy, matplotlib; see /work/.library/device/KINDS.md) into .whl/ (ignored). Then run
# on the device with carry [".whl", ".cache/ref"], timeout_s 570, command:
#   bash experiments/gpu_check.sh
set -u
if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p .cache/ref .whl
  if [ -n "${GENFACE_REF_NVLABS:-}" ]; then
    rm -rf .cache/ref/nvlabs && mkdir -p .cache/ref/nvlabs
    cp -r "$GENFACE_REF_NVLABS"/{dnnlib,torch_utils,training} .cache/ref/nvlabs/
  else echo "GENFACE_REF_NVLABS unset: NVlabs will be skipped on the device"; fi
  if [ -n "${GENFACE_REF_ROSINALITY:-}" ]; then
    rm -rf .cache/ref/rosinality && mkdir -p .cache/ref/rosinality
    cp -r "$GENFACE_REF_ROSINALITY"/{model.py,train.py,op} .cache/ref/rosinality/
  fi
  plat="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $plat \
    -d .whl hydra-core==1.3.8 omegaconf==2.3.1 kornia==0.9.0 kornia_rs==0.2.0
  python3 -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==4.9.3  # sdist only on PyPI
  du -sh .whl .cache/ref
  exit 0
fi

OUT=${OUT:-gpu_out}; mkdir -p "$OUT"; W=/tmp/gpu_check; rm -rf "$W"; mkdir -p "$W"
LOG="$OUT/gpu_check.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1 WANDB_MODE=offline GENFACE_CACHE=/tmp/genface_cache PYTHONPATH="$PWD"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PWD:/tmp/site" || echo "wheel install failed: the test suite may not import"
fi
[ -d .cache/ref/nvlabs ] && export GENFACE_REF_NVLABS="$PWD/.cache/ref/nvlabs"
[ -d .cache/ref/rosinality ] && export GENFACE_REF_ROSINALITY="$PWD/.cache/ref/rosinality"
echo "== $(date -u) machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
which nvcc ninja; nvcc --version | tail -2
python3 -c "import torch, lightning; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', lightning.__version__, torch.cuda.get_device_name(0))"

merge() {  # all JSON so far into $OUT/gpu_check.json, with a one-line summary per contestant
python3 - "$W" "$OUT/gpu_check.json" <<'PYEOF'
import json, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
merged = {p.stem: json.loads(p.read_text()) for p in sorted(src.glob("*.json"))}
dst.write_text(json.dumps(merged, indent=1))
for name, data in merged.items():
    for who, r in (data.get("results") or {}).items() if name.startswith("sbs") else []:
        print(f"{name:>18} {who:>8}  {r.get('s_per_kimg') or float('nan'):8.2f} s/kimg  "
              f"genface/this {r.get('ratio_genface_over_this')}  notes {r.get('notes')}")
PYEOF
}

BR="python3 experiments/bench_reference.py --model stylegan2 --device cuda --batch-size 32 --channel-base 32768 --channel-max 512 --fast-ops true --check-every 16"
echo "== 1. side by side, fp32 (genface vs NVlabs)"
for res in 64 128 256; do  # the first run also compiles NVlabs' custom ops (cached for the others)
  timeout $([ $res = 64 ] && echo 200 || echo 90) $BR --resolution $res --cycles 2 --references nvlabs \
    --out "$W/sbs_fp32_$res.json"
  merge
done
echo "== 2. side by side, mixed precision (genface bf16-mixed vs NVlabs fp16 top-4 + clamp 256)"
for res in 128 256; do
  timeout 50 $BR --resolution $res --cycles 2 --references nvlabs --precision bf16 --nvlabs-fp16-res 4 \
    --out "$W/sbs_mixed_$res.json"
  merge
done
echo "== 2b. the same precision on both sides: fp16 in the top 4 resolutions, conv_clamp 256 (genface num_fp16_res)"
for res in 128 256; do
  timeout 50 $BR --resolution $res --cycles 2 --references nvlabs --num-fp16-res 4 --fp16-dtype float16 \
    --nvlabs-fp16-res 4 --out "$W/sbs_fp16top4_$res.json"
  merge
done
echo "== 3. CUDA test suite"
timeout 100 python3 -m pytest -q -m gpu tests -p no:cacheprovider -x 2>&1 | tail -15
echo "== 4. experiments/benchmark.py, every model, 64 px, batch 32"
timeout 90 python3 experiments/benchmark.py --device cuda --resolutions 64 --batch-size 32 --steps 8 --warmup 3 \
  --override divergence.check_every=16 --quiet --out "$W/benchmark_all.json"
merge
echo "== 5. genface compile mode (bf16 + compile_stylegan2) vs NVlabs fp16, 128 px"
timeout 80 $BR --resolution 128 --cycles 2 --references nvlabs --precision bf16 --nvlabs-fp16-res 4 --compile \
  --out "$W/sbs_compile_128.json"
echo "== $(date -u) done"
merge
