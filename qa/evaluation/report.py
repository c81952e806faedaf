"""The evaluation report: JSON for machines, a table for people, a chart for the docs."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from qa.chunking import ChunkingSettings
from qa.evaluation.runner import SetResult
from qa.search import MODES, SearchSettings

METRICS = ("recall@1", "recall@5", "mrr@10")


@dataclass
class Report:
    results: list[SetResult]
    settings: SearchSettings
    chunking: ChunkingSettings
    model: dict
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "sets": {r.name: r.to_dict() for r in self.results},
            "info": {r.name: r.info() for r in self.results},
            "settings": {"search": asdict(self.settings), "chunking": self.chunking.to_dict()},
            "model": self.model,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def table(self) -> str:
        """A plain-text table, one row per set and mode."""
        header = f"{'set':<13} {'mode':<8} {'R@1':>6} {'R@5':>6} {'MRR@10':>7} {'ms/q':>7}  questions"
        lines = [header, "-" * len(header)]
        for result in self.results:
            for mode, mode_result in result.modes.items():
                m = mode_result.metrics()
                extra = f"  evidence@1 {m['evidence@1']:.3f}" if "evidence@1" in m else ""
                lines.append(
                    f"{result.name:<13} {mode:<8} {m['recall@1']:>6.3f} {m['recall@5']:>6.3f} "
                    f"{m['mrr@10']:>7.3f} {m['ms_per_question']:>7.2f}  {result.questions}{extra}"
                )
        t = self.timings
        lines.append(
            f"total {t.get('total', 0):.1f} s; cache {t.get('cache_hits', 0):.0f} hits, "
            f"{t.get('cache_misses', 0):.0f} texts encoded"
        )
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as Markdown, for docs/evaluation.md."""
        lines = [
            "| set | questions | mode | recall@1 | recall@5 | MRR@10 | ranking ms/question |",
            "|---|---:|---|---:|---:|---:|---:|",
        ]
        for result in self.results:
            for mode, mode_result in result.modes.items():
                m = mode_result.metrics()
                lines.append(
                    f"| {result.name} | {result.questions} | {mode} | {m['recall@1']:.3f} | "
                    f"{m['recall@5']:.3f} | {m['mrr@10']:.3f} | {m['ms_per_question']:.1f} |"
                )
        return "\n".join(lines)

    def save_chart(self, path: Path) -> None:
        """Grouped bars: recall@1 (solid) and recall@5 (pale) of each mode, per set."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("the chart needs matplotlib: pip install -e '.[dev]'") from exc

        modes = [m for m in MODES if any(m in r.modes for r in self.results)]
        colors = {"hybrid": "#1b6ca8", "dense": "#e07b00", "lexical": "#3a9d5d"}
        width = 0.8 / len(modes)
        figure, axes = plt.subplots(figsize=(1.9 * len(self.results) + 2, 4.2), dpi=120)
        for offset, mode in enumerate(modes):
            xs = [i + (offset - (len(modes) - 1) / 2) * width for i in range(len(self.results))]
            at1 = [r.modes[mode].metrics()["recall@1"] if mode in r.modes else 0 for r in self.results]
            at5 = [r.modes[mode].metrics()["recall@5"] if mode in r.modes else 0 for r in self.results]
            axes.bar(xs, at5, width * 0.92, color=colors.get(mode), alpha=0.3)
            bars = axes.bar(xs, at1, width * 0.92, color=colors.get(mode), label=mode)
            axes.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
        axes.set_xticks(range(len(self.results)), [r.name for r in self.results])
        axes.set_ylim(0, 1.15)
        axes.set_ylabel("recall@1 (solid), recall@5 (pale)")
        axes.set_title("Retrieval quality by set and ranking mode")
        axes.legend(loc="upper center", ncol=len(modes), fontsize=8, frameon=False)
        axes.grid(axis="y", alpha=0.3)
        figure.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path)
        plt.close(figure)
