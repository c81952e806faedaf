"""Retrieval-quality evaluation: public QA sets and the seed questions through the production pipeline."""

from embeddings.cache import CachedEncoder
from qa.evaluation.datasets import SETS, EvalQuestion, EvalSet, load_set
from qa.evaluation.report import Report
from qa.evaluation.runner import SetResult, evaluate_set
from qa.evaluation.suite import DEFAULT_SETS, load_sets, run_suite

__all__ = [
    "DEFAULT_SETS",
    "SETS",
    "CachedEncoder",
    "EvalQuestion",
    "EvalSet",
    "Report",
    "SetResult",
    "evaluate_set",
    "load_set",
    "load_sets",
    "run_suite",
]
