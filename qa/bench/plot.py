"""The latency-against-corpus-size chart of docs/benchmarks.md (needs matplotlib, a dev extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qa.bench.ann import AnnResult


def latency_chart(figures: dict[str, Any], ann_results: list[AnnResult], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right, curve) = plt.subplots(1, 3, figsize=(16, 4.4))
    sizes = [figures.get("seeds_passages"), figures.get("eval_passages")]
    for label, keys, style in (
        ("qa, HTTP", ("http_p50_ms", "eval_http_p50_ms"), "o-"),
        ("qa, in-process", ("seeds_inproc_p50_ms", "eval_inproc_p50_ms"), "o--"),
        ("txtai, HTTP", ("txtai_http_p50_ms", "txtai_eval_http_p50_ms"), "s-"),
        ("txtai, in-process", ("txtai_seeds_inproc_p50_ms", "txtai_eval_inproc_p50_ms"), "s--"),
    ):
        values = [figures.get(key) for key in keys]
        points = [(s, v) for s, v in zip(sizes, values, strict=True) if s and v]
        if points:
            left.plot(*zip(*points, strict=True), style, label=label)
    left.set_xscale("log")
    left.set_xlabel("passages in the index")
    left.set_ylabel("p50 latency per question (ms)")
    left.set_title("End to end (encode + search + answer)")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    left.legend()

    for kind, style in (("flat", "o-"), ("hnsw", "s-"), ("ivf", "^-")):
        points = sorted((r.count, r.latency.p50) for r in ann_results if r.kind == kind)
        if points:
            recall = min(r.recall_at_10 for r in ann_results if r.kind == kind)
            right.plot(*zip(*points, strict=True), style, label=f"{kind} (recall@10 >= {recall:.2f})")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("vectors (synthetic, 384-d)")
    right.set_ylabel("p50 per single query (ms)")
    right.set_title("Vector search alone")
    right.grid(alpha=0.3, which="both")
    right.legend()

    largest = max((r.count for r in ann_results), default=0)
    for kind, style in (("hnsw", "s-"), ("ivf", "^-")):
        points = sorted(
            (r.latency.p50, r.recall_at_10)
            for r in ann_results
            if r.count == largest and r.kind.startswith(f"{kind}_")
        )
        if points:
            curve.plot(*zip(*points, strict=True), style, label=kind)
    curve.axhline(0.95, color="grey", linestyle=":", label="recall@10 = 0.95")
    curve.axvline(5, color="grey", linestyle="--", label="5 ms")
    curve.set_xscale("log")
    curve.set_xlabel("p50 per single query (ms)")
    curve.set_ylabel("recall@10 against exact search")
    curve.set_title(f"Search effort at {largest:,} vectors")
    curve.grid(alpha=0.3, which="both")
    curve.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
