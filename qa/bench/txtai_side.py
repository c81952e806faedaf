"""txtai over the same corpus with the same model: the side-by-side comparison.

Configured as a user of txtai would for this job: `Embeddings` with our model directory (txtai
reads its query/passage prompts from the sentence-transformers config), content storage and
hybrid search (BM25 + dense) on, FAISS behind it. txtai is an optional extra (`pip install -e
'.[bench]'`); without it the comparison is reported as missing.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.bench.corpus import Corpus

MISSING = "txtai is not installed; install the bench extra for the side-by-side: pip install -e '.[bench]'"
API_MISSING = "txtai's API extra is not installed (pip install 'txtai[api]'); txtai measured in-process only"
# txtai rows hold this many paragraphs of a long article (the evaluation documents are one each).
PARAGRAPHS_PER_ROW = 2


def txtai_missing() -> str | None:
    """None when txtai can run, else what to install."""
    return None if importlib.util.find_spec("txtai") else MISSING


def txtai_api_missing() -> str | None:
    return None if importlib.util.find_spec("fastapi") else API_MISSING


def rows(corpus: Corpus) -> list[tuple[str, str, None]]:
    """(id, text, tags) rows: `doc#n` for every two non-empty lines of a document."""
    out = []
    for document in corpus.documents:
        paragraphs = [line for line in document.text.split("\n") if line.strip()]
        for start in range(0, len(paragraphs), PARAGRAPHS_PER_ROW):
            text = "\n".join(paragraphs[start : start + PARAGRAPHS_PER_ROW])
            out.append((f"{document.id}#{start // PARAGRAPHS_PER_ROW}", text, None))
    return out


def document_of(row_id: str) -> str:
    return row_id.rsplit("#", 1)[0]


@dataclass
class TxtaiIndex:
    path: Path
    rows: int
    build_seconds: float | None  # None when loaded from the cache


def build(corpus: Corpus, model_dir: Path, path: Path) -> TxtaiIndex:
    from txtai import Embeddings

    data = rows(corpus)
    started = time.perf_counter()
    embeddings = Embeddings(path=str(model_dir), content=True, hybrid=True)
    embeddings.index(data)
    seconds = time.perf_counter() - started
    embeddings.save(str(path))
    embeddings.close()
    return TxtaiIndex(path, len(data), seconds)


class TxtaiSearch:
    """A loaded txtai index answering questions in-process."""

    def __init__(self, path: Path) -> None:
        from txtai import Embeddings

        self._embeddings = Embeddings()
        self._embeddings.load(str(path))

    def search(self, question: str, k: int = 5) -> list[dict[str, Any]]:
        return self._embeddings.search(question, k)

    def top_documents(self, questions: Sequence[str], batch: int = 32) -> list[str | None]:
        """The document of the best row for each question (for recall@1)."""
        tops: list[str | None] = []
        for start in range(0, len(questions), batch):
            for results in self._embeddings.batchsearch(list(questions[start : start + batch]), 1):
                tops.append(document_of(str(results[0]["id"])) if results else None)
        return tops

    def close(self) -> None:
        self._embeddings.close()
