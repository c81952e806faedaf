"""How close, fast and small the ONNX engine is next to the torch one, measured side by side.

    .venv/bin/python scripts/onnx_fidelity.py [MODEL_DIR] [--seeds DIR] [--repeats 200]

Prints: cosine of ONNX fp32/int8 vectors against the torch `Encoder` in float32 (mean/min over
a varied set, in three batchings); single-question latency medians, all engines interleaved in
one loop so a noisy neighbour slows them alike; passages per second; CPU time per question with
thread spinning on and off; peak RSS and start-to-first-vector time of a fresh process per engine.
The model must have been exported first (embeddings.onnx_export.export_onnx).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # this checkout's `embeddings`, not an installed one

QUERIES = [
    "ما هي عاصمة سوريا؟",
    "من التقى المبعوث الأميركي الخاص لسوريا؟",
    "ماذا قال رئيس الائتلاف عن الهجمات في ريف إدلب؟",
    "إدلب",
    "Who met the US special envoy for Syria?",
    "What did the coalition say about the attacks?",
    "Qui a rencontré l'envoyé spécial américain pour la Syrie ?",
    "Quelles mesures économiques le gouvernement a-t-il annoncées ?",
    "a",
]
LATENCY_QUERY = "ما هي نتائج الاجتماع بين رئيس الائتلاف والمبعوث الأميركي؟"


def sentences(articles: list[str]) -> list[str]:
    return [s.strip() for a in articles for s in re.split(r"[.!؟?\n]+", a) if len(s.strip()) > 10]


def word_windows(articles: list[str], words: int, stride: int) -> list[str]:
    """Overlapping passages of `words` words (about 160 tokens for Arabic news at 100 words)."""
    out = []
    for article in articles:
        tokens = article.split()
        out += [" ".join(tokens[i : i + words]) for i in range(0, max(1, len(tokens) - words + 1), stride)]
    return out


def varied_texts(articles: list[str]) -> list[str]:
    """Whole articles (longer than 512 tokens: truncated), sentences, passages, questions in three
    languages, and a few odd ones (one letter, blank, one repeated character)."""
    english = "The quick brown fox jumps over the lazy dog while the committee debates the budget. "
    french = "Le gouvernement a annoncé de nouvelles mesures économiques pour soutenir les entreprises. "
    return (
        articles
        + sentences(articles)
        + word_windows(articles, 100, 90)
        + QUERIES
        + [english * 40, french * 30, english, french, "", "  ", "x" * 3000]
    )


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def fidelity(torch_encoder, onnx_encoder, texts: list[str]) -> dict[str, tuple[float, float, int]]:
    """Cosine against torch per batching: the encoders' own length buckets, one text per call,
    and shuffled batches of 7 (rows of very different lengths padded together)."""
    results = {}
    for kind, method in (("documents", "encode_documents"), ("queries", "encode_queries")):
        reference = getattr(torch_encoder, method)(texts)
        got = getattr(onnx_encoder, method)(texts)
        results[f"{kind}, length buckets"] = cosines(reference, got)
        if kind == "documents":
            single = np.vstack([onnx_encoder.encode_documents([t]) for t in texts])
            results[f"{kind}, batch of 1"] = cosines(reference, single)
            order = list(range(len(texts)))
            random.Random(0).shuffle(order)
            mixed = np.empty_like(reference)
            prompt = onnx_encoder._document_prompt or ""
            for start in range(0, len(order), 7):
                rows = order[start : start + 7]
                mixed[rows] = onnx_encoder._forward([prompt + texts[i] for i in rows])
            results[f"{kind}, mixed batches of 7"] = cosines(reference, mixed)
    results["all"] = np.concatenate(list(results.values()))
    return {name: (float(c.mean()), float(c.min()), len(c)) for name, c in results.items()}


_WORKER = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
engine, model = sys.argv[1], sys.argv[2]
if engine.startswith("onnx"):
    from embeddings.onnx_encoder import OnnxEncoder
    _, variant, *spin = engine.split("-")
    encoder = OnnxEncoder(model, variant=variant, spinning=bool(spin))
else:
    from embeddings.encoder import Encoder
    encoder = Encoder(model, precision=engine.split("-")[1], progress=False)
passages = json.loads(sys.stdin.readline())
query = passages.pop()
for _ in range(5):
    encoder.encode_query(query)
print("ready", flush=True)
for line in sys.stdin:
    command, count = line.split()
    cpu = os.times()
    if command == "query":
        walls = []
        for _ in range(int(count)):
            start = time.perf_counter()
            encoder.encode_query(query)
            walls.append(time.perf_counter() - start)
    else:
        start = time.perf_counter()
        encoder.encode_documents(passages)
        walls = [time.perf_counter() - start]
    time.sleep(0.05)  # a spinning pool burns CPU after the last call too: count it
    after = os.times()
    used = after.user - cpu.user + after.system - cpu.system
    print(json.dumps({{"walls": walls, "cpu": used}}), flush=True)
"""


class Worker:
    """An engine in its own process, idle between commands: its thread pool (spinning or not)
    cannot slow another engine's measurement, as it would inside one process."""

    def __init__(self, engine: str, model_dir: Path, passages: list[str], query: str) -> None:
        self.engine = engine
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER.format(repo=str(REPO)), engine, str(model_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.process.stdin.write(json.dumps([*passages, query]) + "\n")
        self.process.stdin.flush()
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the {engine} worker did not start")

    def run(self, command: str, count: int = 1) -> dict:
        self.process.stdin.write(f"{command} {count}\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def side_by_side(workers: list[Worker], queries: int, block: int = 20, rounds: int = 3) -> dict[str, dict]:
    """Query latency in blocks of back-to-back questions and passages/s, engines taking turns
    (round-robin) so that a noisy neighbour hits them all alike; medians over all blocks."""
    walls: dict[str, list[float]] = {w.engine: [] for w in workers}
    cpu: dict[str, float] = {w.engine: 0.0 for w in workers}
    for _ in range(max(1, queries // block)):
        for worker in workers:
            result = worker.run("query", block)
            walls[worker.engine] += result["walls"]
            cpu[worker.engine] += result["cpu"]
    docs: dict[str, list[float]] = {w.engine: [] for w in workers}
    for _ in range(rounds):
        for worker in workers:
            docs[worker.engine] += worker.run("docs")["walls"]
    return {
        name: {
            "median_ms": 1000 * statistics.median(times),
            "p90_ms": 1000 * sorted(times)[int(0.9 * len(times))],
            "cpu_ms_per_query": 1000 * cpu[name] / len(times),
            "docs_seconds": statistics.median(docs[name]),
        }
        for name, times in walls.items()
    }


_CHILD = """
import sys, time
started = float(sys.argv[1])
sys.path.insert(0, {repo!r})
engine, model = sys.argv[2], sys.argv[3]
if engine.startswith("onnx"):
    from embeddings.onnx_encoder import OnnxEncoder
    encoder = OnnxEncoder(model, variant=engine.split("-")[1])
else:
    from embeddings.encoder import Encoder
    encoder = Encoder(model, precision=engine.split("-")[1], progress=False)
encoder.encode_query("ما هي عاصمة سوريا؟")
first = time.time() - started
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]
print(first, int(hwm) // 1024, "torch" in sys.modules)
"""


def fresh_process(engine: str, model_dir: Path) -> tuple[float, int, bool]:
    """(seconds from spawning python to the first vector, peak RSS in MiB, torch imported)."""
    started = time.time()
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(repo=str(REPO)), str(started), engine, str(model_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), int(out[1]), out[2] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dir", nargs="?", type=Path, default=None, help="default: the built-in model")
    parser.add_argument("--seeds", type=Path, default=REPO.parent / "shared" / "seeds")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if args.model_dir is None:
        from qa.settings import default_model_dir

        args.model_dir = default_model_dir()

    from embeddings.encoder import Encoder
    from embeddings.onnx_encoder import OnnxEncoder

    articles = [p.read_text(encoding="utf-8") for p in sorted(args.seeds.glob("*.txt"))]
    model = args.model_dir
    torch32 = Encoder(model, precision="float32", progress=False)
    torch_auto = Encoder(model, progress=False)  # what QA_MODEL_PRECISION=auto picks on this CPU
    onnx32 = OnnxEncoder(model, variant="fp32")
    onnx8 = OnnxEncoder(model, variant="int8")
    report: dict[str, object] = {"threads": onnx32.threads}

    texts = varied_texts(articles)
    lengths = [torch32.count_tokens(t) for t in texts]
    print(
        f"texts: {len(texts)}, tokens min/median/max {min(lengths)}/{int(np.median(lengths))}/{max(lengths)}"
    )
    print(f"(over {torch32.max_tokens}, truncated: {sum(n + 4 > torch32.max_tokens for n in lengths)})")
    report["fidelity"] = {}
    for label, encoder in (
        ("onnx-fp32", onnx32),
        ("onnx-int8", onnx8),
        (f"torch-{torch_auto.precision}", torch_auto),
    ):
        results = fidelity(torch32, encoder, texts) if label.startswith("onnx") else None
        if results is None:  # the torch engine at the other precision, for scale
            c = np.concatenate(
                [
                    cosines(torch32.encode_documents(texts), torch_auto.encode_documents(texts)),
                    cosines(torch32.encode_queries(texts), torch_auto.encode_queries(texts)),
                ]
            )
            results = {"all": (float(c.mean()), float(c.min()), len(c))}
        report["fidelity"][label] = results
        for name, (mean, low, n) in results.items():
            print(f"fidelity {label:16s} vs torch-float32  {name:32s} mean {mean:.6f}  min {low:.6f}  n={n}")

    passages = word_windows(articles, 100, 7)[:200]
    counts = [onnx32.count_tokens(p) for p in passages]
    tokens = onnx32.count_tokens(onnx32._query_prompt + LATENCY_QUERY) + 2
    auto = torch_auto.precision
    for encoder in (onnx32, onnx8):
        encoder.close()
    del torch32, torch_auto, onnx32, onnx8  # the workers measure; this process only holds memory

    names = ["torch-float32", f"torch-{auto}", "onnx-fp32", "onnx-int8", "onnx-fp32-spin", "onnx-int8-spin"]
    workers = [Worker(name, model, passages, LATENCY_QUERY) for name in dict.fromkeys(names)]
    try:
        report["side_by_side"] = side_by_side(workers, args.repeats)
    finally:
        for worker in workers:
            worker.close()
    for name, figures in report["side_by_side"].items():
        print(
            f"single query ({tokens} tokens, {args.repeats} runs) {name:16s} "
            f"median {figures['median_ms']:6.2f} ms  p90 {figures['p90_ms']:6.2f} ms  "
            f"CPU {figures['cpu_ms_per_query']:6.2f} ms/query"
        )
    for name, figures in report["side_by_side"].items():
        print(
            f"documents ({len(passages)} passages, {int(np.mean(counts))} tokens mean) "
            f"{name:16s} {len(passages) / figures['docs_seconds']:6.1f} passages/s"
        )

    report["process"] = {}
    for engine in ("torch-float32", "torch-bfloat16", "onnx-fp32", "onnx-int8"):
        runs = [fresh_process(engine, model) for _ in range(3)]
        first = statistics.median(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        report["process"][engine] = {
            "first_vector_s": first,
            "peak_rss_mib": rss,
            "torch_imported": runs[0][2],
        }
        print(
            f"fresh process {engine:15s} start to first vector {first:5.2f} s (median of 3)  "
            f"peak RSS {rss} MiB  torch imported: {runs[0][2]}"
        )
    sizes = {p.name: p.stat().st_size for p in sorted((model / "onnx").glob("*.onnx*"))}
    sizes["model.safetensors"] = (model / "model.safetensors").stat().st_size
    report["file_bytes"] = sizes
    print("files: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in sizes.items()))
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
