#!/usr/bin/env bash
# Fill .whl/ with the wheels the GPU image lacks (Python 3.12, Linux x86_64), for benchmarks/gpu_command.sh.
# Run here (registry access), from the repository root: bash benchmarks/download_wheels.sh
# --no-deps with an explicit list keeps torch, triton and the CUDA wheels (in the image; far over the
# 64 MiB a device call carries) out (without numba the set is ~32 MB; nilearn + nibabel: the MRI presets' MNI152 anatomy); numpy/scipy/matplotlib/h5py/PyYAML/packaging/tqdm are assumed present.
set -euo pipefail
PKGS=(neuraloperator tensorly tensorly-torch opt-einsum configmypy ruamel.yaml ruamel.yaml.clib zencfg
      sigpy PyWavelets optuna alembic Mako sqlalchemy greenlet colorlog nilearn nibabel)
# numba + llvmlite (sigpy imports numba) add 62 MB: 80 MB in all, over the 64 MiB carry limit, so only
# with WITH_NUMBA=1 (for an image that already has numba, or a carry split another way).
[ "${WITH_NUMBA:-0}" = 1 ] && PKGS+=(numba llvmlite)
mkdir -p .whl
python -m pip download --python-version 3.12 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --only-binary=:all: --no-deps -d .whl "${PKGS[@]}"
du -sh .whl
