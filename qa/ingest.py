"""Adding, replacing and removing documents: chunk → embed → one atomic index write.

Everything is embedded before the index is touched, and the whole batch is one write, so an
interrupted or failed ingest leaves the previous index as it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from embeddings.encoder import TextEncoder
from qa.chunking import ChunkingSettings, Span, chunk_text
from qa.documents import Document, Skipped
from qa.errors import NotFoundError
from qa.index import DocumentUpsert, IndexBackend, PassageUpsert, SentenceVector, StoredDocument
from qa.lexical import lexical_text, written_words
from qa.metadata import Metadata
from qa.textnorm import clean_text


@dataclass
class PreparedDocument:
    document: Document
    passages: list[Span]
    passage_vectors: np.ndarray
    sentences: list[SentenceVector]


@dataclass
class ChunkedDocument:
    """A document cut into passages, with the texts to embed: passages, then their sentences."""

    document: Document
    passages: list[Span]
    sentences: list[Span]
    texts: list[str]


# Texts embedded together across documents: enough for batches of similar length to form
# (one short document alone gives a few texts of very different lengths).
_EMBED_GROUP_TEXTS = 256


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[Skipped] = field(default_factory=list)
    passages: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.replaced)} replaced, {len(self.unchanged)} unchanged, "
            f"{len(self.failed)} failed; {self.passages} passages in {self.seconds:.1f} s"
        )

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "failed": [{"path": s.path, "reason": s.reason} for s in self.failed],
            "passages": self.passages,
            "seconds": round(self.seconds, 3),
        }


def chunk_document(document: Document, encoder: TextEncoder, chunking: ChunkingSettings) -> ChunkedDocument:
    passages = chunk_text(document.text, encoder.count_tokens, chunking)
    sentences = list(dict.fromkeys(s for p in passages for s in p.sentences))
    texts = [clean_text(document.text[p.start : p.end]) for p in passages]
    texts += [clean_text(document.text[s.start : s.end]) for s in sentences]
    return ChunkedDocument(document, [Span(p.start, p.end) for p in passages], sentences, texts)


def embed_documents(chunked: list[ChunkedDocument], encoder: TextEncoder) -> list[PreparedDocument]:
    """Embed the passages and sentences of several documents in one encoder call."""
    vectors = encoder.encode_documents([text for item in chunked for text in item.texts], show_progress=False)
    prepared, start = [], 0
    for item in chunked:
        mine = vectors[start : start + len(item.texts)]
        start += len(item.texts)
        passages = len(item.passages)
        prepared.append(
            PreparedDocument(
                document=item.document,
                passages=item.passages,
                passage_vectors=mine[:passages],
                sentences=[
                    SentenceVector(span.start, span.end, vector)
                    for span, vector in zip(item.sentences, mine[passages:], strict=True)
                ],
            )
        )
    return prepared


def prepare_document(
    document: Document, encoder: TextEncoder, chunking: ChunkingSettings
) -> PreparedDocument:
    """Chunk one document and embed its passages and their sentences."""
    return embed_documents([chunk_document(document, encoder, chunking)], encoder)[0]


def _progress(items: Iterable, enabled: bool, total: int | None):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, unit="doc", desc="Indexing", dynamic_ncols=True)


def ingest_documents(
    index: IndexBackend,
    encoder: TextEncoder,
    items: Iterable[Document | Skipped],
    *,
    progress: bool = False,
    total: int | None = None,
) -> IngestReport:
    """Add new documents, replace changed ones (by content hash), skip unchanged ones."""
    started = time.perf_counter()
    report = IngestReport()
    with index.view() as view:
        known = view.content_hashes()
    prepared: dict[str, PreparedDocument] = {}
    waiting: list[ChunkedDocument] = []
    taken: set[str] = set()  # ids chunked in this call: a later copy of one replaces it

    def embed_waiting() -> None:
        for done in embed_documents(waiting, encoder):
            prepared[done.document.id] = done
        waiting.clear()

    same_content: list[Document] = []  # same text and title: unchanged unless source or metadata moved

    def prepare(item: Document) -> None:
        taken.add(item.id)
        # A later copy of a document still waiting replaces it before it costs an embedding.
        waiting[:] = [chunked for chunked in waiting if chunked.document.id != item.id]
        waiting.append(chunk_document(item, encoder, index.chunking))
        if sum(len(chunked.texts) for chunked in waiting) >= _EMBED_GROUP_TEXTS:
            embed_waiting()

    for item in _progress(items, progress, total):
        if isinstance(item, Skipped):
            report.failed.append(item)
            continue
        if known.get(item.id) == item.content_hash and item.id not in taken:
            same_content.append(item)
            continue
        prepare(item)
    for item in _described_anew(index, [d for d in same_content if d.id not in taken]):
        prepare(item)
    report.unchanged = [d.id for d in same_content if d.id not in taken]
    if waiting:
        embed_waiting()

    if prepared:
        # Added or replaced as found by the write itself: another process may have written since.
        written = index.write([_upsert(p) for p in prepared.values()])
        report.added, report.replaced = written.added, written.replaced
    report.passages = sum(len(p.passages) for p in prepared.values())
    report.seconds = time.perf_counter() - started
    return report


def _described_anew(index: IndexBackend, documents: list[Document]) -> list[Document]:
    """Those of `documents` (same text and title as stored) whose source or metadata differ from
    the stored ones: a filter must see the new values, so they are written again. A language
    detected now is no difference: the stored one was detected from the same text, or is missing
    (an index written before metadata, whose filters then cannot see it either way)."""
    changed: list[Document] = []
    with index.view() as view:
        for first in range(0, len(documents), 500):
            chunk = documents[first : first + 500]
            stored = view.documents(d.id for d in chunk)
            for document in chunk:
                before = stored.get(document.id)
                if before is not None and _described(before.source, before.meta, document.meta) != _described(
                    document.source, document.meta, document.meta
                ):
                    changed.append(document)
    return changed


def _described(source: str, meta: Metadata, new: Metadata) -> tuple[str, dict[str, object]]:
    fields = meta.to_dict()
    if new.lang_detected:
        fields.pop("lang", None)
    return source, fields


def _upsert(prepared: PreparedDocument) -> DocumentUpsert:
    doc = prepared.document
    passages = [
        PassageUpsert(span.start, span.end, vector, lexical_text(doc.text[span.start : span.end]))
        for span, vector in zip(prepared.passages, prepared.passage_vectors, strict=True)
    ]
    words = written_words(f"{doc.title}\n{doc.text}")
    return DocumentUpsert(
        doc.id,
        doc.title,
        doc.source,
        doc.text,
        doc.content_hash,
        passages,
        prepared.sentences,
        words,
        doc.meta,
    )


def add_document(index: IndexBackend, encoder: TextEncoder, document: Document) -> tuple[str, StoredDocument]:
    """Index one document (the API's and MCP's writes): "added", "replaced" or "unchanged", and
    the document as stored, which later answers cite. When a concurrent request has removed it
    again, it is described as it was sent."""
    report = ingest_documents(index, encoder, [document])
    status = "added" if report.added else "replaced" if report.replaced else "unchanged"
    with index.view() as view:
        stored = view.document(document.id)
    if stored is None:
        stored = StoredDocument(
            document.id,
            document.title,
            document.source,
            "",
            document.content_hash,
            report.passages,
            document.meta,
        )
    return status, stored


def remove_document(index: IndexBackend, document_id: str) -> None:
    """Delete a document's passages from the store, the lexical index and the vectors."""
    if index.write(deletes=[document_id]).missing:
        raise NotFoundError(f"no document with id {document_id!r} in the index")
