#!/usr/bin/env python3
"""Peers in the same run: paracache beside the caches a gateway author would otherwise use.

Not run by CI (it needs PyPI packages and minutes). From the repository root:

    pip install numpy hnswlib gptcache==0.1.44 faiss-cpu
    python3 tools/peers.py --entries 10000 --queries 1000

1. the stress tool (`tools/src/bin/stress.rs`) with `--dump` writes the workload: the stored
   vectors (clustered 384-d, see tools/src/workload.rs) and paraphrase and novel query vectors. The prompts are
   `prompt(i)` below, the same ~200-byte strings the Rust runner stores.
2. Each peer indexes exactly those vectors and prompts, and answers the same queries:
   - the twenty lines of Python: a dict keyed by MD5 of the whitespace-normalized prompt (stored
     prompt compared on a hit) plus an hnswlib index (M=16, ef_construction=200, ef=64, inner
     product on unit vectors), hit at cosine >= 0.90;
   - GPTCache 0.1.44 with its sqlite + faiss data manager and an embedding function that returns
     the precomputed vector; its threshold is set to the same cosine 0.90 (see `gptcache_peer`).
     GPTCache has no exact tier: a repeat goes through embedding and vector search too.
3. paracache answers the same kinds of lookups in the stress tool at one thread, one kind
   at a time as the peers are timed (mixes 100,0,0,0 then 0,100,0,0 then 0,0,100,0; no
   inserts, no TTL), on the same stored vectors, in this same run.

Latencies are per lookup, in microseconds, measured in-process with perf_counter_ns; the embedding
function is a table lookup in every system, so no model runs.
"""

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

DIM = 384
THRESHOLD = 0.90


def prompt(i):
    """The ~200-byte prompt the Rust workload stores under index i (tools/src/workload.rs `prompt`)."""
    p = f"Question {i}: please explain, with examples, "
    while len(p) < 200:
        p += "how the cache answers repeated and paraphrased prompts quickly; "
    return p[:200]


def rows(path):
    return np.fromfile(path, dtype="<f4").reshape(-1, DIM)


def pct(samples_ns, p):
    s = sorted(samples_ns)
    return s[min(int(len(s) * p), len(s) - 1)] / 1e3


def summary(name, samples_ns, hits):
    return {
        "name": name,
        "n": len(samples_ns),
        "p50": pct(samples_ns, 0.5),
        "p99": pct(samples_ns, 0.99),
        "hit_rate": hits / max(len(samples_ns), 1),
    }


class DictHnswlibCache:
    """What a gateway author writes instead: MD5 dict for repeats, hnswlib for paraphrases."""

    def __init__(self, dim, capacity):
        import hnswlib

        self.exact = {}
        self.values = []
        self.index = hnswlib.Index(space="ip", dim=dim)
        self.index.init_index(max_elements=capacity, M=16, ef_construction=200)
        self.index.set_ef(64)

    @staticmethod
    def key(text):
        return hashlib.md5(" ".join(text.split()).encode()).hexdigest()

    def bulk_insert(self, prompts, vectors, values):
        for i, (p, v) in enumerate(zip(prompts, values)):
            self.exact[self.key(p)] = (p, v)
        self.values.extend(values)
        self.index.add_items(vectors, np.arange(len(vectors)))

    def get(self, text, embed):
        found = self.exact.get(self.key(text))
        if found is not None and found[0] == text:
            return found[1], "exact"
        labels, dists = self.index.knn_query(embed(text), k=1)
        if 1.0 - dists[0][0] >= THRESHOLD:
            return self.values[labels[0][0]], "semantic"
        return None, "miss"


def measure_dict_hnswlib(data, paraphrases, novel, queries, rng):
    cache = DictHnswlibCache(DIM, len(data))
    prompts = [prompt(i) for i in range(len(data))]
    t = time.time()
    cache.index.set_num_threads(os.cpu_count())
    cache.bulk_insert(prompts, data, list(range(len(data))))
    cache.index.set_num_threads(1)
    build_s = time.time() - t
    out = []
    for name, texts, table in [
        ("exact repeat", [prompts[i] for i in rng.integers(0, len(data), queries)], None),
        ("paraphrase", [f"para {k}" for k in range(queries)], paraphrases),
        ("novel", [f"novel {k}" for k in range(queries)], novel),
    ]:
        lat, hits = [], 0
        for k, text in enumerate(texts):
            embed = (lambda _t, k=k: table[k]) if table is not None else None
            t0 = time.perf_counter_ns()
            value, tier = cache.get(text, embed)
            lat.append(time.perf_counter_ns() - t0)
            hits += value is not None
        out.append(summary(name, lat, hits))
    return build_s, out


def gptcache_peer(data, paraphrases, novel, queries, rng):
    """GPTCache with sqlite + faiss. faiss returns squared L2, which for unit vectors is
    2 - 2cos; GPTCache's SearchDistanceEvaluation scores max_distance - distance over the range
    [0, max_distance] and compares with similarity_threshold * max_distance, so cosine >= 0.90
    (L2^2 <= 0.2) is similarity_threshold = 1 - 0.2 / 4 = 0.95."""
    from gptcache import Cache, Config
    from gptcache.adapter.api import get as gget
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    prompts = [prompt(i) for i in range(len(data))]
    vectors = {p: data[i] for i, p in enumerate(prompts)}
    for k in range(queries):
        vectors[f"para {k}"] = paraphrases[k]
        vectors[f"novel {k}"] = novel[k]
    tmp = tempfile.mkdtemp(prefix="gptcache-peer-")
    dm = get_data_manager(
        CacheBase("sqlite", sql_url=f"sqlite:///{tmp}/cache.db"),
        VectorBase("faiss", dimension=DIM, index_path=f"{tmp}/faiss.index", top_k=1),
        # The default max_size of 1000 would evict most of what is imported.
        max_size=len(data) + 2 * queries,
    )
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: vectors[text],
        data_manager=dm,
        similarity_evaluation=SearchDistanceEvaluation(max_distance=4.0),
        config=Config(similarity_threshold=1.0 - (2.0 - 2.0 * THRESHOLD) / 4.0),
    )
    t = time.time()
    cache.import_data(questions=prompts, answers=[str(i) for i in range(len(data))])
    build_s = time.time() - t
    out = []
    for name, texts in [
        ("exact repeat", [prompts[i] for i in rng.integers(0, len(data), queries)]),
        ("paraphrase", [f"para {k}" for k in range(queries)]),
        ("novel", [f"novel {k}" for k in range(queries)]),
    ]:
        lat, hits = [], 0
        for text in texts:
            t0 = time.perf_counter_ns()
            answer = gget(text, cache_obj=cache)
            lat.append(time.perf_counter_ns() - t0)
            hits += answer is not None
        out.append(summary(name, lat, hits))
    return build_s, out


# The stress tool of the workspace's tools crate; cargo builds it on first use and finds the
# target directory (CARGO_TARGET_DIR included). Run from the repository root.
STRESS = ["cargo", "run", "--release", "--quiet", "-p", "paracache-tools", "--bin", "stress", "--"]


def paracache(entries, queries, seconds):
    cmd = STRESS + [
        "--entries", str(entries), "--threads", "1", "--seconds", str(seconds),
        "--mix", "100,0,0,0/0,100,0,0/0,0,100,0", "--ttl-secs", "0", "--check", str(queries),
    ]
    # Results come on stdout; the tool's progress lines go to stderr and pass through.
    text = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    sys.stderr.write(text)
    got = {}
    for label, name in [("exact hit", "exact repeat"), ("semantic hit", "paraphrase"), ("miss", "novel")]:
        # One table per lookup kind; the kind's own table is the one where it has the most ops.
        found = re.findall(rf"^\s*1\s+{label}\s+(\d+)\s+\S+\s+(\S+)\s+(\S+)", text, re.M)
        n, p50, p99 = max(found, key=lambda r: int(r[0]))
        got[name] = {"name": name, "n": int(n), "p50": float(p50), "p99": float(p99)}
    # The paraphrase-only table: its semantic hits and misses give the paraphrase hit rate.
    para = text.split("= [0, 100, 0, 0]")[1]
    hits = int(re.search(r"^\s*1\s+semantic hit\s+(\d+)", para, re.M).group(1))
    misses = int(re.search(r"^\s*1\s+miss\s+(\d+)", para, re.M).group(1))
    got["paraphrase"]["hit_rate"] = hits / max(hits + misses, 1)
    scan = re.search(r"exact scan p50 (\S+) us p99 (\S+) us", text)
    prefill = re.search(r"prefill: .*?([\d.]+) s on", text)
    return float(prefill.group(1)), got, (float(scan.group(1)), float(scan.group(2)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--skip-gptcache", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(9)
    dump = tempfile.mkdtemp(prefix="paracache-peers-")
    subprocess.run(
        STRESS + ["--entries", str(args.entries), "--check", str(args.queries), "--dump", dump],
        check=True,
    )
    data, paraphrases, novel = (rows(f"{dump}/{f}.f32") for f in ("data", "paraphrase", "novel"))

    results = {}
    build, results["Python dict(MD5) + hnswlib"] = measure_dict_hnswlib(data, paraphrases, novel, args.queries, rng)
    print(f"dict+hnswlib build {build:.1f} s", file=sys.stderr)
    if not args.skip_gptcache:
        few = min(args.queries, 300)
        build, results["GPTCache 0.1.44 (sqlite + faiss)"] = gptcache_peer(data, paraphrases, novel, few, rng)
        print(f"GPTCache import {build:.1f} s", file=sys.stderr)
    build, ours, (scan50, scan99) = paracache(args.entries, args.queries, args.seconds)
    print(f"paracache prefill {build:.1f} s", file=sys.stderr)

    print(f"\n{args.entries} entries, {DIM}-d clustered, threshold {THRESHOLD}, one thread; "
          f"exact scan of all entries (paracache run): p50 {scan50:.0f} us, p99 {scan99:.0f} us\n")
    print("| system | exact repeat p50 / p99 µs | paraphrase p50 / p99 µs | novel (miss) p50 / p99 µs | paraphrase hit rate |")
    print("| --- | --- | --- | --- | --- |")
    fmt = lambda r: f"{r['p50']:.1f} / {r['p99']:.1f}"
    print(f"| paracache | {fmt(ours['exact repeat'])} | {fmt(ours['paraphrase'])} | {fmt(ours['novel'])} | {ours['paraphrase']['hit_rate']:.3f} |")
    for name, rs in results.items():
        by = {r["name"]: r for r in rs}
        print(f"| {name} | {fmt(by['exact repeat'])} | {fmt(by['paraphrase'])} | {fmt(by['novel'])} | {by['paraphrase']['hit_rate']:.3f} |")
    print("\nRatio peer p50 / paracache p50 (higher is better for paracache):\n")
    print("| system | exact repeat | paraphrase | novel |")
    print("| --- | --- | --- | --- |")
    for name, rs in results.items():
        by = {r["name"]: r for r in rs}
        ratios = " | ".join(f"{by[k]['p50'] / ours[k]['p50']:.1f}x" for k in ("exact repeat", "paraphrase", "novel"))
        print(f"| {name} | {ratios} |")


if __name__ == "__main__":
    main()
