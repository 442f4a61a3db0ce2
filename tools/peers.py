#!/usr/bin/env python3
"""Peers in the same run: paracache beside the caches a gateway author would otherwise use.

Not run by CI (it needs PyPI packages and minutes). From the repository root, in a venv of its own:

    python3 -m venv target/venv-peers
    target/venv-peers/bin/pip install numpy hnswlib gptcache==0.1.44 faiss-cpu sqlalchemy
    # real vectors: the dev-large replay, paracache and the Python dict + hnswlib on the same steps
    target/venv-peers/bin/python tools/peers.py --data ../shared/data/dev-large [--steps N] [--prefill K]
    # synthetic clustered vectors (for sizes beyond the real sets, up to 1M)
    target/venv-peers/bin/python tools/peers.py --entries 10000 --queries 1000

Both modes replay a stream of steps through every system in the same run (`replay_peers`): each
step looks up its text with its vector as the embedding, and a miss inserts the text, after the
same untimed prefill (hnswlib's and GPTCache's bulk import; paracache's `replay --prefill`, which
waits for its graph with `Cache::compact`). Every lookup of every system is timed, so the systems
answer the same queries, equally many, after the same warm-up.

- `--data DIR`: a directory in the dev format (`../shared/data/dev-large`: 93k real
  all-MiniLM-L6-v2 questions); `--steps N` replays the first N steps, `--prefill K` first stores K
  texts no step uses (a huge K: all of them, so dev-large ends at its full size).
- synthetic (no `--data`): the stress tool (`tools/src/bin/stress.rs`) `--dump`s its clustered 384-d
  workload, written here as a replay directory: the `--entries` stored vectors are the prefill, then
  `--queries` novel prompts, as many paraphrases of stored ones, and as many exact repeats.

The systems:
- paracache's `replay` tool (guards, pair check and aliases off, so all do the same work), and the same with
  `--brute-force`: its exact scan, the reference each system's hit/miss decisions are compared with;
- the twenty lines of Python: a dict keyed by MD5 of the whitespace-normalized prompt (stored
  prompt compared on a hit) plus an hnswlib index (M=16, ef_construction=200, ef=64, inner product on
  unit vectors), hit at cosine >= 0.90;
- GPTCache 0.1.44 with its sqlite + faiss data manager and an embedding function that returns the
  precomputed vector, at the same cosine 0.90 (see `gptcache_replay`); `--skip-gptcache` leaves it out.

Each round also prints both caches' build time (the prefill, graph included) and the resident memory
each cache added to its process, per entry (Linux; data loading excluded, both hold the prompts).

Temporary files (the dump, GPTCache's sqlite and faiss files, the step logs) are removed on exit.
Latencies are per lookup, in microseconds, measured in-process with perf_counter_ns; the embedding
function is a table lookup in every system, so no model runs.
"""

import argparse
import hashlib
import json
import os
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
    if not samples_ns:
        return float("nan")
    s = sorted(samples_ns)
    return s[min(int(len(s) * p), len(s) - 1)] / 1e3


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

    def insert(self, text, vector, value):
        self.exact[self.key(text)] = (text, value)
        self.values.append(value)
        self.index.add_items(vector.reshape(1, -1), np.array([len(self.values) - 1]))

    def get(self, text, embed):
        found = self.exact.get(self.key(text))
        if found is not None and found[0] == text:
            return found[1], "exact"
        if self.index.get_current_count() == 0:
            return None, "miss"
        labels, dists = self.index.knn_query(embed(text), k=1)
        if 1.0 - dists[0][0] >= THRESHOLD:
            return self.values[labels[0][0]], "semantic"
        return None, "miss"


def gptcache_replay(texts, emb, steps, prefill):
    """GPTCache 0.1.44 with sqlite + faiss through the same steps: get, and on a miss put. faiss
    returns squared L2, which for unit vectors is 2 - 2cos; GPTCache's SearchDistanceEvaluation
    scores max_distance - distance over [0, max_distance] and compares with
    similarity_threshold * max_distance, so cosine >= 0.90 (L2^2 <= 0.2) is
    similarity_threshold = 1 - 0.2 / 4 = 0.95. GPTCache has no exact tier: a repeat goes through
    embedding and vector search too."""
    from gptcache import Cache, Config
    from gptcache.adapter.api import get as gget, put as gput
    from gptcache.manager import CacheBase, VectorBase, get_data_manager
    from gptcache.processor.pre import get_prompt
    from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

    by_text = {texts[i]: emb[i] for i in list(prefill) + [st["text_id"] for st in steps]}
    id_of = {texts[i]: i for i in list(prefill) + [st["text_id"] for st in steps]}
    with tempfile.TemporaryDirectory(prefix="gptcache-peer-") as tmp:
        dm = get_data_manager(
            CacheBase("sqlite", sql_url=f"sqlite:///{tmp}/cache.db"),
            VectorBase("faiss", dimension=DIM, index_path=f"{tmp}/faiss.index", top_k=1),
            # The default max_size of 1000 would evict most of what is stored.
            max_size=len(prefill) + len(steps) + 1,
        )
        cache = Cache()
        cache.init(
            pre_embedding_func=get_prompt,
            embedding_func=lambda text, **_: by_text[text],
            data_manager=dm,
            similarity_evaluation=SearchDistanceEvaluation(max_distance=4.0),
            config=Config(similarity_threshold=1.0 - (2.0 - 2.0 * THRESHOLD) / 4.0),
        )
        t = time.time()
        if prefill:
            cache.import_data(questions=[texts[i] for i in prefill], answers=[str(i) for i in prefill])
        prefill_s = time.time() - t
        out = []
        t = time.time()
        for st in steps:
            text = texts[st["text_id"]]
            t0 = time.perf_counter_ns()
            answer = gget(text, cache_obj=cache)
            ns = time.perf_counter_ns() - t0
            if answer is None:
                gput(text, str(st["text_id"]), cache_obj=cache)
                kind = "miss"
            else:
                # No exact tier: a hit on the same text is the repeat the others answer exactly.
                kind = "exact" if int(answer) == id_of[text] else "semantic"
            out.append({"result": kind, "matched_id": answer, "latency_ns": ns})
        wall = time.time() - t
        dm.close() if hasattr(dm, "close") else None
    return prefill_s, wall, out


def write_synthetic_data(dump, d, queries):
    """The stress tool's dumped workload as a replay directory: the stored vectors are texts no
    step uses (so `--prefill` inserts them), then `queries` novel prompts, `queries` paraphrases of
    stored ones, and `queries` exact repeats of the novel prompts (stored on their miss)."""
    data, paraphrases, novel = (rows(f"{dump}/{f}.f32") for f in ("data", "paraphrase", "novel"))
    n = len(data)
    q = min(queries, len(paraphrases), len(novel))
    texts = [prompt(i) for i in range(n)] + [f"para {k}" for k in range(q)] + [f"novel {k}" for k in range(q)]
    np.concatenate([data, paraphrases[:q], novel[:q]]).astype("<f4").tofile(f"{d}/embeddings.f32")
    with open(f"{d}/texts.jsonl", "w") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": i, "text": t}) + "\n")
    with open(f"{d}/replay.jsonl", "w") as f:
        steps = [(n + q + k, "new") for k in range(q)]
        steps += [(n + k, "paraphrase_of:0") for k in range(q)]
        steps += [(n + q + k, "exact") for k in range(q)]
        for tid, expect in steps:
            f.write(json.dumps({"text_id": tid, "expect": expect}) + "\n")
    return n


# --- real vectors: the data set's replay through every system --------------------------------

REPLAY = ["cargo", "run", "--release", "--quiet", "-p", "paracache-tools", "--bin", "replay", "--"]


def load_replay_data(d):
    """texts by id, the embedding rows (f32, or f16 widened and renormalised as the Rust reader
    does) and the steps of `replay.jsonl`."""
    texts = {}
    with open(f"{d}/texts.jsonl") as f:
        for line in f:
            o = json.loads(line)
            texts[o["id"]] = o["text"]
    if os.path.exists(f"{d}/embeddings.f32"):
        emb = np.fromfile(f"{d}/embeddings.f32", dtype="<f4").reshape(-1, DIM)
    else:
        emb = np.fromfile(f"{d}/embeddings.f16", dtype="<f2").astype(np.float32).reshape(-1, DIM)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    with open(f"{d}/replay.jsonl") as f:
        steps = [json.loads(line) for line in f]
    return texts, np.ascontiguousarray(emb), steps


def prefill_ids(texts, emb, steps, k):
    """The texts the Rust replay's `--prefill K` inserts: the first K ids no step uses."""
    used = {s["text_id"] for s in steps}
    return sorted(i for i in texts if i not in used and i < len(emb))[:k]


def rss_bytes():
    """Resident memory of this process (VmRSS), None where /proc is missing."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def python_replay(texts, emb, steps, prefill):
    """The twenty lines of Python through the same steps: lookup, and on a miss insert. Also the
    resident memory the cache added: (RSS before it existed, RSS at the end, its entries)."""
    rss_before = rss_bytes()
    cache = DictHnswlibCache(DIM, len(prefill) + len(steps) + 1)
    t = time.time()
    cache.index.set_num_threads(os.cpu_count())
    if prefill:
        cache.bulk_insert([texts[i] for i in prefill], emb[prefill], list(prefill))
    cache.index.set_num_threads(1)
    prefill_s = time.time() - t
    out, inserts = [], []
    t = time.time()
    for st in steps:
        tid = st["text_id"]
        text, v = texts[tid], emb[tid]
        t0 = time.perf_counter_ns()
        value, kind = cache.get(text, lambda _t: v)
        ns = time.perf_counter_ns() - t0
        if value is None:
            t0 = time.perf_counter_ns()
            cache.insert(text, v, tid)
            inserts.append(time.perf_counter_ns() - t0)
        out.append({"result": kind, "matched_id": value, "latency_ns": ns})
    wall = time.time() - t
    rss_after = rss_bytes()
    return prefill_s, wall, out, inserts, (rss_before, rss_after, len(cache.values))


def paracache_replay(data, steps, prefill, extra):
    """The Rust replay tool on the same steps; its per-step lines and its summary."""
    with tempfile.TemporaryDirectory(prefix="paracache-peers-") as tmp:
        out = f"{tmp}/steps.jsonl"
        cmd = REPLAY + ["--data", data, "--guards", "none", "--pair-check", "none", "--no-alias", "--steps", str(steps),
                        "--prefill", str(prefill), "--out", out] + extra
        t = time.time()
        summary = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout)
        wall = time.time() - t
        with open(out) as f:
            rows = [json.loads(line) for line in f]
    return wall, summary, rows


def by_kind(rows):
    kinds = {}
    for r in rows:
        kinds.setdefault(r["result"], []).append(r["latency_ns"])
    return kinds


def agreement(rows, reference):
    """Share of steps whose hit/miss decision equals the exact scan's."""
    same = sum((a["result"] == "miss") == (b["result"] == "miss") for a, b in zip(rows, reference))
    return same / max(len(reference), 1)


def replay_peers(args):
    texts, emb, steps = load_replay_data(args.data)
    steps = steps[: args.steps]
    prefill = prefill_ids(texts, emb, steps, args.prefill)
    # Build first, so cargo's compile time is never counted.
    subprocess.run(REPLAY[:-1] + ["--help"], check=True, stdout=subprocess.DEVNULL)
    systems = {}
    for rnd in range(args.rounds):
        # Interleaved, so that load on the machine falls on every system alike.
        wall, summary, rows = paracache_replay(args.data, len(steps), len(prefill), [])
        systems.setdefault("paracache", []).append((wall, rows))
        ref = args.reference_cache
        if ref and os.path.exists(ref):
            # An exact scan's decisions depend only on the data: a saved run of the same steps.
            with open(ref) as f:
                wall, rows = json.load(f)
        else:
            wall, _, rows = paracache_replay(args.data, len(steps), len(prefill), ["--brute-force"])
            if ref:
                with open(ref, "w") as f:
                    json.dump([wall, rows], f)
        systems.setdefault("paracache --brute-force (exact scan)", []).append((wall, rows))
        pre, wall, rows, inserts, py_rss = python_replay(texts, emb, steps, prefill)
        systems.setdefault("Python dict(MD5) + hnswlib", []).append((wall, rows))
        if not args.skip_gptcache:
            pre, wall, rows = gptcache_replay(texts, emb, steps, prefill)
            systems.setdefault("GPTCache 0.1.44 (sqlite + faiss)", []).append((wall, rows))
        ins = summary["results"]["insert"]
        print(f"round {rnd + 1}: inserts after a miss: Python p50 {pct(inserts, 0.5):.0f} us p99 "
              f"{pct(inserts, 0.99):.0f} us; paracache p50 {ins['p50_ns'] / 1e3:.0f} us p99 "
              f"{ins['p99_ns'] / 1e3:.0f} us; prefill (graph built): Python {pre:.1f} s, paracache "
              f"{summary.get('prefill_seconds', float('nan')):.1f} s; paracache entries at end "
              f"{summary['entries_at_end']}")
        # What each cache added to its process's resident memory (data loading excluded; both
        # hold the prompts), per entry at the end.
        py_before, py_after, py_entries = py_rss
        pc_before, pc_after = summary.get("rss_before_cache_bytes"), summary.get("rss_at_end_bytes")
        if None not in (py_before, py_after, pc_before, pc_after):
            pc_entries = max(summary["entries_at_end"], 1)
            print(f"round {rnd + 1}: resident memory the cache added: Python "
                  f"{(py_after - py_before) / 2**20:.0f} MB ({(py_after - py_before) / max(py_entries, 1):.0f} B/entry), "
                  f"paracache {(pc_after - pc_before) / 2**20:.0f} MB ({(pc_after - pc_before) / pc_entries:.0f} B/entry)")
    reference = systems["paracache --brute-force (exact scan)"][-1][1]
    print(f"\n{args.data}: {len(steps)} steps after a prefill of {len(prefill)} texts "
          f"({summary['entries_at_end']} entries at the end), threshold {THRESHOLD}, guards and "
          f"aliases off, one thread, {args.rounds} round(s) interleaved; each cell is p50 / p99 in µs "
          f"(one range per round where rounds > 1), n = lookups of that kind\n")
    print("| system | semantic hit | miss | exact hit | replay wall s | hit/miss decisions equal to exact scan |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, runs in systems.items():
        cells = []
        for kind in ("semantic", "miss", "exact"):
            parts = []
            for _, rows in runs:
                lat = by_kind(rows).get(kind, [])
                parts.append(f"{pct(lat, 0.5):.0f} / {pct(lat, 0.99):.0f}" if lat else "-")
            n = len(by_kind(runs[-1][1]).get(kind, []))
            cells.append(f"{' ; '.join(parts)} (n {n})")
        walls = " ; ".join(f"{w:.1f}" for w, _ in runs)
        agree = " ; ".join(f"{100 * agreement(rows, reference):.2f}%" for _, rows in runs)
        print(f"| {name} | {' | '.join(cells)} | {walls} | {agree} |")
    # Over the run, not only at its end: the cache grows and inserts keep arriving throughout.
    window = max(len(steps) // 6, 1)
    print(f"\nSemantic hits and misses together, p50 / p99 µs per window of {window} steps (last round):\n")
    print("| steps | " + " | ".join(systems) + " |")
    print("| --- |" + " --- |" * len(systems))
    for start in range(0, len(steps), window):
        cells = []
        for name, runs in systems.items():
            rows = runs[-1][1][start:start + window]
            lat = [r["latency_ns"] for r in rows if r["result"] in ("semantic", "miss")]
            cells.append(f"{pct(lat, 0.5):.0f} / {pct(lat, 0.99):.0f}" if lat else "-")
        print(f"| {start}..{min(start + window, len(steps))} | " + " | ".join(cells) + " |")
    print("\nRatio paracache / Python (last round; the target is at most 0.5):\n")
    print("| | semantic p50 | semantic p99 | miss p50 | miss p99 |")
    print("| --- | --- | --- | --- | --- |")
    ours = by_kind(systems["paracache"][-1][1])
    py = by_kind(systems["Python dict(MD5) + hnswlib"][-1][1])
    cells = []
    for kind in ("semantic", "miss"):
        for p in (0.5, 0.99):
            a, b = ours.get(kind, []), py.get(kind, [])
            cells.append(f"{pct(a, p) / pct(b, p):.2f}" if a and b else "-")
    print(f"| paracache | {' | '.join(cells)} |")


# The stress tool of the workspace's tools crate; cargo builds it on first use and finds the
# target directory (CARGO_TARGET_DIR included). Run from the repository root.
STRESS = ["cargo", "run", "--release", "--quiet", "-p", "paracache-tools", "--bin", "stress", "--"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--skip-gptcache", action="store_true")
    ap.add_argument("--data", help="a replay directory in the dev format: run the real-vector comparison")
    ap.add_argument("--steps", type=int, default=None, help="with --data: replay only the first N steps")
    ap.add_argument("--prefill", type=int, default=0, help="with --data: first insert K texts no step uses")
    ap.add_argument("--rounds", type=int, default=1, help="with --data: interleaved rounds")
    ap.add_argument("--reference-cache", help="with --data: reuse (or save) the exact scan's run in this file, "
                    "for the same data, steps and prefill")
    args = ap.parse_args()
    if args.data:
        return replay_peers(args)
    with tempfile.TemporaryDirectory(prefix="paracache-peers-") as dump:
        return synthetic_peers(args, dump)


def synthetic_peers(args, dump):
    subprocess.run(
        STRESS + ["--entries", str(args.entries), "--check", str(args.queries), "--dump", dump],
        check=True,
    )
    with tempfile.TemporaryDirectory(prefix="paracache-peers-data-") as d:
        args.data = d
        args.prefill = write_synthetic_data(dump, d, args.queries)
        args.steps = None
        return replay_peers(args)


if __name__ == "__main__":
    main()
