#!/usr/bin/env bash
# Makes the embedding anchor's venv (target/venv-anchor) from PyPI with pinned versions, and the
# f32 ONNX export of the model that .ci/fetch-model fetched. Run once, outside CI (torch is a
# ~540 MB wheel). From the repository root:
#   bash .ci/fetch-model && bash tools/anchor/setup.sh
# then
#   cargo run --release -p paracache-tools --features bert --bin embed_bench -- \
#       --anchor-python target/venv-anchor/bin/python
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
venv=target/venv-anchor
if ! "$venv/bin/python" -c 'import torch, transformers, onnx, onnxscript, onnxruntime, tokenizers' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        torch==2.15.0 transformers==5.24.0 onnx==1.23.2 onnxscript==0.7.2 onnxruntime==1.32.0 \
        tokenizers==0.23.3 numpy
fi
"$venv/bin/python" tools/anchor/embed_anchor.py --export
