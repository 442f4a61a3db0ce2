#!/usr/bin/env python3
"""The embedding anchor: onnxruntime (PyPI) running an f32 ONNX export of the same
all-MiniLM-L6-v2 weights that paracache's BertEmbedder loads, timed the way `embed_bench` times
paracache. `embed_bench --anchor-python target/venv-anchor/bin/python` runs it in the same run.

Not run by CI (PyPI's torch is ~540 MB plus its dependencies). Once, from the repository root:

    bash .ci/fetch-model && bash tools/anchor/setup.sh

(setup.sh makes target/venv-anchor with pinned torch, transformers, onnx, onnxscript,
onnxruntime and tokenizers, then runs this script with --export.)

`--export` writes model.onnx beside model.safetensors (torch.onnx.export of transformers'
BertModel through the dynamo exporter, dynamic batch and sequence axes; the TorchScript exporter
mis-traced transformers 5's mask code), then checks it against torch on a few
texts. Without it, the script reads prompts (one JSON string per line) from `--texts`, and prints
one JSON object: batch-1 latencies (tokenize + run + mean-pool + normalise, per call, ns), the
batch throughput, and the vectors of the first texts so the caller can check both engines compute
the same function.
"""

import argparse
import json
import os
import sys
import time


def model_dir():
    return os.environ.get("PARACACHE_MODEL_DIR", "target/models/all-MiniLM-L6-v2")


def export():
    import torch
    from transformers import BertModel

    d = model_dir()
    model = BertModel.from_pretrained(d, local_files_only=True, attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        # transformers 5 takes these by keyword; the exporter passes positionally.
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 102], [101, 2129, 2079, 102]])
    mask = torch.ones_like(ids)
    types = torch.zeros_like(ids)
    out = os.path.join(d, "model.onnx")
    torch.onnx.export(
        Encoder(model).eval(),
        (ids, mask, types),
        out,
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_shapes={n: {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence", max=512)} for n in ["input_ids", "attention_mask", "token_type_ids"]},
        opset_version=18,
        dynamo=True,
    )
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(out, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state.numpy()
    got = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy()})[0]
    err = float(np.abs(got - want).max())
    print(f"wrote {out}; largest difference from torch {err:.2e}")
    if err > 1e-4:
        sys.exit("the export does not match torch")


class Anchor:
    def __init__(self):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        d = model_dir()
        self.session = ort.InferenceSession(os.path.join(d, "model.onnx"), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        self.tokenizer.enable_truncation(256)

    def embed(self, texts):
        import numpy as np

        if len(texts) > 1:
            self.tokenizer.enable_padding()
        else:
            self.tokenizer.no_padding()
        enc = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        types = np.array([e.type_ids for e in enc], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]
        m = mask[:, :, None].astype(np.float32)
        mean = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)


def measure(args):
    texts = [json.loads(line) for line in open(args.texts) if line.strip()]
    a = Anchor()
    for t in texts[:8]:
        a.embed([t])  # warm-up
    single = []
    deadline = time.perf_counter() + args.seconds
    i = 0
    while time.perf_counter() < deadline or i < 50:
        t = texts[i % len(texts)]
        start = time.perf_counter_ns()
        a.embed([t])
        single.append(time.perf_counter_ns() - start)
        i += 1
    batch = texts[: args.batch]
    a.embed(batch)
    rounds, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds or rounds < 3:
        a.embed(batch)
        rounds += 1
    per_second = rounds * len(batch) / (time.perf_counter() - start)
    vectors = a.embed(texts[: args.check]).tolist()
    import onnxruntime

    print(json.dumps({
        "engine": f"onnxruntime {onnxruntime.__version__} (CPU, default threads), f32 ONNX",
        "batch1_ns": single,
        "batch_texts_per_s": per_second,
        "batch": len(batch),
        "vectors": vectors,
    }))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", action="store_true")
    p.add_argument("--texts")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--check", type=int, default=32)
    args = p.parse_args()
    if args.export:
        export()
    elif args.texts:
        measure(args)
    else:
        p.error("--export or --texts FILE")


if __name__ == "__main__":
    main()
