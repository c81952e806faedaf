"""Where a question's time goes: cProfile over in-process questions, summed by stage.

cProfile adds overhead to every Python call, so Python-heavy stages look a little slower than
they are; the shares, not the absolute times, are the point.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable, Sequence

# stage -> (file suffix, function name) whose cumulative time is that stage
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "encode": (("embeddings/encoder.py", "encode_queries"),),
    "vector_search": (("qa/index/local/vectors.py", "search"),),
    "sentence_rescoring": (("qa/index/local/store.py", "sentences"), ("qa/search.py", "_candidate")),
    "lexical_search": (("qa/index/local/store.py", "lexical_search"),),
    "passage_fetch": (("qa/index/local/store.py", "passages"), ("qa/index/local/store.py", "documents")),
}
TOTAL = ("qa/search.py", "ask_many")


def _cumulative(stats: pstats.Stats, targets: Sequence[tuple[str, str]]) -> float:
    seconds = 0.0
    for (filename, _, name), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if any(filename.endswith(suffix) and name == function for suffix, function in targets):
            seconds += cumulative
    return seconds


def profile_questions(
    ask: Callable[[str], object], questions: Sequence[str], top: int = 15
) -> tuple[dict[str, float], str]:
    """(milliseconds per question by stage, text of the top functions by own time)."""
    for question in questions[:3]:
        ask(question)  # warm caches outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    for question in questions:
        ask(question)
    profiler.disable()
    stats = pstats.Stats(profiler)
    per_question = 1000 / max(len(questions), 1)
    total = _cumulative(stats, (TOTAL,))
    stages = {name: _cumulative(stats, targets) for name, targets in STAGES.items()}
    stages["other"] = max(total - sum(stages.values()), 0.0)
    figures = {f"profile_{name}_ms": round(seconds * per_question, 2) for name, seconds in stages.items()}
    figures["profile_total_ms"] = round(total * per_question, 2)
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return figures, _trim(text.getvalue())


def _trim(report: str) -> str:
    """The table of pstats output without its preamble, paths shortened to the package."""
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(line.replace("site-packages/", "") for line in lines[start:] if line.strip())
