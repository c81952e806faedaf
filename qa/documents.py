"""Reading documents from files, folders, JSONL collections, uploads and API text.

Every entry point goes through the same byte checks (`_decode`), parsing (`_parse`) and id rules
(`_check_id`), so a file, an upload and a JSONL line are refused for the same reasons, in the same
words. A bad file never stops a batch: `iter_documents` yields a `Skipped` for it and goes on.
HTML, PDF and DOCX are read by the modules of `qa.formats`.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from qa.chunking import is_boilerplate
from qa.errors import DocumentError, UnsupportedTypeError
from qa.folders import link_problem, walk
from qa.language import detect_language
from qa.metadata import Metadata, is_web_url, parse_metadata
from qa.textnorm import clean_text

SUPPORTED_SUFFIXES = (".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".jsonl")
# Formats that are not text: the UTF-8 and binary checks do not apply, the size limit does.
BINARY_SUFFIXES = (".pdf", ".docx")
# One upload is one document; a .jsonl collection is many, which is `qa ingest`'s job.
UPLOAD_SUFFIXES = tuple(suffix for suffix in SUPPORTED_SUFFIXES if suffix != ".jsonl")
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_ID_CHARS = 200
# Titles derived from a first line are often a whole paragraph; a result list needs a line.
MAX_TITLE_CHARS = 200
_SNIFF_BYTES = 8 * 1024
_UNSAFE_NAME_CHARS = re.compile(r"[^\w.-]")


@dataclass(frozen=True)
class Document:
    """One document: `text` is kept exactly as read, because passages point into it by offset."""

    id: str
    title: str
    text: str
    source: str
    meta: Metadata = field(default_factory=Metadata)

    @cached_property
    def content_hash(self) -> str:
        """sha256 hex of title + NUL + text (+ NUL + the metadata as JSON, when there is any):
        tells whether a re-ingested document changed. A document without metadata keeps the
        hash that versions before metadata recorded, so upgrading re-embeds nothing."""
        return content_hash(self.title, self.text, self.meta)


def content_hash(title: str, text: str, meta: Metadata) -> str:
    """The content hash of a document (see `Document.content_hash`)."""
    described = meta.given()
    tail = "\0" + json.dumps(described, ensure_ascii=False, sort_keys=True) if described else ""
    return hashlib.sha256(f"{title}\0{text}{tail}".encode()).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """A file (or a JSONL line, path "file:line") that was not read, and why, in one sentence."""

    path: str
    reason: str


# ---------------------------------------------------------------------------------------------
# Shared checks


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def _check_size(size: int) -> None:
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"larger than the {_mib(MAX_DOCUMENT_BYTES)} limit ({_mib(size)})")


def _check_bytes(data: bytes) -> None:
    """Refuse data that is too large or is not text at all (binary, UTF-16)."""
    _check_size(len(data))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DocumentError("UTF-16 text, which is not supported (save it as UTF-8)")
    if b"\0" in data[:_SNIFF_BYTES]:
        raise DocumentError("binary file (it contains NUL bytes)")


def _utf8(data: bytes) -> str:
    """Strict UTF-8 (a leading BOM removed); the error names the first bad byte and its offset."""
    skipped = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skipped + exc.start
        raise DocumentError(
            f"not UTF-8 text (invalid byte 0x{data[offset]:02X} at offset {offset})"
        ) from None


def _decode(data: bytes) -> str:
    """The text of a file's bytes, or DocumentError naming the problem."""
    _check_bytes(data)
    return _utf8(data)


def _check_id(doc_id: str) -> str:
    """The id itself when it can be used in URLs and files of the index, else DocumentError."""
    if not doc_id:
        raise DocumentError("the document id is empty")
    if len(doc_id) > MAX_ID_CHARS:
        raise DocumentError(f"the document id is longer than {MAX_ID_CHARS} characters")
    if "/" in doc_id:
        raise DocumentError(f'the document id {doc_id!r} contains "/"')
    if doc_id in (".", ".."):
        raise DocumentError(f"the document id {doc_id!r} is not allowed")
    if any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in doc_id):
        raise DocumentError(f"the document id {doc_id!r} contains a control character")
    return doc_id


def _first_line(text: str, *, markdown: bool = False) -> str | None:
    """The first line with visible text, cleaned (and for Markdown without its heading #s).

    Page furniture such as "Skip to content" is passed over: scraped pages often start with it.
    """
    fallback = None
    for line in text.splitlines():
        if markdown:
            line = line.lstrip("# \t")
        cleaned = clean_text(line)
        if not cleaned:
            continue
        if not is_boilerplate(cleaned):
            return cleaned
        fallback = fallback or cleaned
    return fallback


_SITE_SEPARATOR = re.compile(r"\s+(?:[-|–—·•:]|::)\s+")
_SITE_NAME_MAX_WORDS = 4
_HEADLINE_MIN_WORDS = 3


def without_site_name(title: str) -> str:
    """A page title without the site name that pages append ("Headline - Site", "Headline | Site").

    Only a short tail after the last separator goes, and only after a headline of a few words:
    a headline that itself holds a dash keeps its longer second half.
    """
    parts = _SITE_SEPARATOR.split(title)
    if len(parts) < 2:
        return title
    head = title[: title.rfind(parts[-1])]
    head = _SITE_SEPARATOR.sub(" - ", head).rstrip(" -|–—·•:")
    if len(parts[-1].split()) <= _SITE_NAME_MAX_WORDS and len(head.split()) >= _HEADLINE_MIN_WORDS:
        return head.strip()
    return title


def _shorten(title: str) -> str:
    """Cut an over-long (cleaned) title at a word boundary, so result lists stay one line."""
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[:MAX_TITLE_CHARS].rsplit(" ", 1)[0] or title[:MAX_TITLE_CHARS]
    return cut.rstrip() + "…"


def _make(
    text: str,
    *,
    doc_id: str,
    title: str | None,
    source: str,
    markdown: bool = False,
    meta: Metadata | None = None,
) -> Document:
    """A validated Document; the title defaults to the first visible line of the text, the
    language to the one detected in the text."""
    if "\x00" in text or (title and "\x00" in title):
        # Past the first bytes a file was sniffed on, or escaped in JSON: no store keeps it
        # (PostgreSQL text refuses it), and no news text needs it.
        raise DocumentError("the text contains NUL characters, which are not text")
    first = _first_line(text, markdown=markdown)
    if first is None:
        raise DocumentError("empty document (no text)")
    explicit = clean_text(title) if title else ""
    title = explicit or without_site_name(first)
    meta = meta or Metadata()
    if meta.lang is None:
        meta = replace(meta, lang=detect_language(text), lang_detected=True)
    return Document(id=_check_id(doc_id), title=_shorten(title), text=text, source=source, meta=meta)


def _parse(data: bytes, suffix: str, *, doc_id: str, source: str) -> Document:
    """A Document from the bytes of a .txt, .md, .html, .htm, .pdf or .docx file.

    The extractors wrap the errors they know; anything else a third-party parser raises on a
    strange file becomes a DocumentError too, so that one file never stops a batch (or gives
    an upload a 500)."""
    try:
        return _extract(data, suffix, doc_id=doc_id, source=source)
    except (DocumentError, MemoryError):
        raise
    except Exception as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise DocumentError(
            f"could not be read ({type(exc).__name__}{': ' + detail if detail else ''})"
        ) from exc


def _extract(data: bytes, suffix: str, *, doc_id: str, source: str) -> Document:
    if suffix in BINARY_SUFFIXES:
        _check_size(len(data))
        if suffix == ".pdf":
            from qa.formats.pdf import extract_pdf as extract
        else:
            from qa.formats.docx import extract_docx as extract
        found = extract(data)
        return _make(found.text, doc_id=doc_id, title=found.title, source=source, meta=found.meta)
    text = _decode(data)
    if suffix in (".html", ".htm"):
        from qa.formats.html import extract_html  # trafilatura takes ~0.4 s to import: only when needed

        page = extract_html(text)
        page_title = without_site_name(page.title) if page.title else None
        return _make(page.text, doc_id=doc_id, title=page_title, source=source, meta=page.meta)
    return _make(text, doc_id=doc_id, title=None, source=source, markdown=suffix == ".md")


# ---------------------------------------------------------------------------------------------
# JSONL


def _jsonl_field(record: dict, name: str) -> str | None:
    """An optional string field; null counts as absent."""
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise DocumentError(f'"{name}" must be a string')
    return value


# JSONL fields read as metadata; "date" is the name many news dumps use for "published".
JSONL_METADATA_FIELDS = ("published", "date", "lang", "url", "author", "tags")


def _jsonl_record(line: bytes, *, path: str, lineno: int) -> Document:
    """The Document of one JSONL line: {"id", "text", optional "title", "source", "url",
    "published" (or "date"), "lang", "author", "tags"}; other fields are ignored."""
    try:
        record = json.loads(_utf8(line))
    except json.JSONDecodeError as exc:
        raise DocumentError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise DocumentError("not a JSON object")
    for required in ("id", "text"):
        if record.get(required) is None:
            raise DocumentError(f'missing "{required}"')
    doc_id, text, title = (_jsonl_field(record, name) for name in ("id", "text", "title"))
    source = _jsonl_field(record, "source") or _jsonl_field(record, "url") or f"{path}#{lineno}"
    assert doc_id is not None and text is not None  # checked above; for the type checker
    published = record.get("published")
    url = record.get("url")
    meta = parse_metadata(
        published=record.get("date") if published is None else published,
        lang=record.get("lang"),
        # Still the source when no source is given; a citation link only when it is a web address.
        url=url if is_web_url(url) else None,
        author=record.get("author"),
        tags=record.get("tags"),
    )
    return _make(text, doc_id=doc_id, title=title, source=source, meta=meta)


def _jsonl_documents(data: bytes, path: str) -> Iterator[Document | Skipped]:
    """One Document per good line; a bad line is Skipped as "path:line" and the rest still read."""
    try:
        _check_bytes(data)
    except DocumentError as exc:
        yield Skipped(path, str(exc))
        return
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    # Lines are decoded one by one so that one bad byte costs one line, not the whole collection.
    lines = [(lineno, line) for lineno, line in enumerate(data.split(b"\n"), start=1) if line.strip()]
    if not lines:
        yield Skipped(path, "empty file (no JSON lines)")
    for lineno, line in lines:
        try:
            yield _jsonl_record(line, path=path, lineno=lineno)
        except DocumentError as exc:
            yield Skipped(f"{path}:{lineno}", str(exc))


# ---------------------------------------------------------------------------------------------
# Files and folders


def _is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; an over-large file is refused from its size, before it is read."""
    try:
        _check_size(path.stat().st_size)
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)  # a file that grew since stat() is still caught
    except OSError as exc:
        raise DocumentError(f"cannot be read ({exc.strerror or exc})") from None
    _check_size(len(data))
    return data


def _read_file(path: Path, shown: str) -> Iterator[Document | Skipped]:
    """The document(s) of one file, or Skipped entries: a bad file never raises."""
    suffix = path.suffix.lower()
    if not _is_supported(path):
        supported = ", ".join(SUPPORTED_SUFFIXES)
        yield Skipped(shown, f"unsupported file type {suffix or '(no suffix)'!r} (supported: {supported})")
        return
    if not path.is_file():
        yield Skipped(shown, "not a regular file")
        return
    try:
        data = _read_bytes(path)
    except DocumentError as exc:
        yield Skipped(shown, str(exc))
        return
    if suffix == ".jsonl":
        yield from _jsonl_documents(data, shown)
        return
    try:
        yield _parse(data, suffix, doc_id=path.stem, source=shown)
    except DocumentError as exc:
        yield Skipped(shown, str(exc))


def iter_documents(paths: Iterable[str | Path]) -> Iterator[Document | Skipped]:
    """Documents (and Skipped entries) from files and folders, in the order given.

    All paths are checked before anything is read, so a typo (or a link that leads nowhere) fails
    at once with DocumentError instead of after half a collection has been ingested.
    """
    given = [str(path) for path in paths]
    for shown in given:
        problem = link_problem(Path(shown)) if shown else None
        if problem:
            raise DocumentError(f"{shown}: {problem}")
        if not shown or not os.path.exists(shown):
            raise DocumentError(f"no such file or folder: {shown}")
    return _iter_existing(given)


def _iter_existing(given: list[str]) -> Iterator[Document | Skipped]:
    for shown in given:
        path = Path(shown)
        if path.is_dir():
            for file, problem in walk(path, _is_supported):
                if problem:
                    yield Skipped(str(file), problem)
                else:
                    yield from _read_file(file, str(file))
        else:
            yield from _read_file(path, shown)


# ---------------------------------------------------------------------------------------------
# HTTP API


def document_from_text(
    text: str,
    *,
    id: str | None = None,
    title: str | None = None,
    source: str = "api",
    meta: Metadata | None = None,
) -> Document:
    """A Document from text sent to the API; the default id is the first 16 hex of sha256(text)."""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DocumentError(f"not valid Unicode text (lone surrogate at position {exc.start})") from None
    text = _decode(data)  # same size/binary checks as files; drops a leading BOM
    doc_id = hashlib.sha256(text.encode()).hexdigest()[:16] if id is None else id
    return _make(text, doc_id=doc_id, title=title, source=source, meta=meta)


def document_from_upload(filename: str, data: bytes) -> Document:
    """A Document from an uploaded file.

    The file name only picks the type and the default id: only its base name is kept, with
    anything outside [\\w.-] replaced by "_", and it is never opened as a path.
    """
    base = re.split(r"[/\\]", filename)[-1]
    safe_name = _UNSAFE_NAME_CHARS.sub("_", base)
    suffix = Path(safe_name).suffix.lower()
    supported = ", ".join(UPLOAD_SUFFIXES)
    if suffix == ".jsonl":
        raise UnsupportedTypeError(
            f"JSONL collections cannot be uploaded as one document (upload one of {supported}); "
            "ingest them from a file: qa ingest FILE"
        )
    if suffix not in UPLOAD_SUFFIXES:
        raise UnsupportedTypeError(
            f"unsupported file type {suffix or '(no suffix)'!r} (supported: {supported}; "
            "JSONL collections: qa ingest FILE)"
        )
    doc_id = Path(safe_name).stem[:MAX_ID_CHARS]
    return _parse(data, suffix, doc_id=doc_id, source=safe_name)
