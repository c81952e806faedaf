"""Word .docx files: paragraphs and table text in document order, and the core properties
(title, author, created, language, keywords).

python-docx reads them. Text is stored in logical order in a .docx, so Arabic needs no repair.
Headers, footers, footnotes, comments and text boxes are not read: they are page furniture or
asides far more often than article text.
"""

from __future__ import annotations

import io
import re
import zipfile

from qa.errors import DocumentError
from qa.formats import Extracted, lenient_metadata
from qa.metadata import Metadata
from qa.textnorm import clean_text

_BLANK_LINES = re.compile(r"\n{3,}")
# Real documents unpack to a few times their size; 20 MiB of ZIP at most, as every document.
MAX_UNPACKED_BYTES = 256 * 2**20
_NOT_WORD = "not a Word .docx file (the archive has no Word document in it)"
_WORD_DOCUMENT_TYPE = b"wordprocessingml.document.main+xml"


def extract_docx(data: bytes) -> Extracted:
    """Every paragraph and table cell (a blank line between paragraphs), title and metadata."""
    from docx import Document as open_docx
    from docx.opc.exceptions import PackageNotFoundError

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise DocumentError(
            "not a Word .docx file (a .docx is a ZIP archive; an old .doc must be saved as .docx)"
        )
    if not _is_word_package(data):
        raise DocumentError(_NOT_WORD)
    unpacked = sum(info.file_size for info in zipfile.ZipFile(io.BytesIO(data)).infolist())
    if unpacked > MAX_UNPACKED_BYTES:  # a "zip bomb" would fill the memory when parsed
        raise DocumentError(
            f"the .docx unpacks to {unpacked // 2**20} MiB, more than the {MAX_UNPACKED_BYTES // 2**20} MiB "
            "a Word document may hold"
        )
    try:
        document = open_docx(io.BytesIO(data))
        blocks = list(_blocks(document))
    except PackageNotFoundError:
        raise DocumentError(_NOT_WORD) from None
    except (zipfile.BadZipFile, KeyError, ValueError, AttributeError, TypeError, IndexError, OSError) as exc:
        raise DocumentError(f"not a readable Word .docx file (damaged: {_reason(exc)})") from None
    except Exception as exc:  # lxml's XMLSyntaxError and the like, from a damaged part
        raise DocumentError(f"not a readable Word .docx file (damaged: {_reason(exc)})") from None
    text = _BLANK_LINES.sub("\n\n", "\n\n".join(block for block in blocks if clean_text(block))).strip()
    if not text:
        raise DocumentError("empty document (no text)")
    title, meta = _properties(document)
    return Extracted(text, title, meta)


def _is_word_package(data: bytes) -> bool:
    """Whether the ZIP declares a Word main document: an .xlsx, .odt or plain ZIP renamed .docx
    does not, and python-docx's own errors for them name internals."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _WORD_DOCUMENT_TYPE in archive.read("[Content_Types].xml")
    except (KeyError, zipfile.BadZipFile, OSError, RuntimeError):  # no such part, damaged, encrypted
        return False


def _blocks(document):
    """The body's paragraphs and tables in document order: a table row becomes one line, its
    cells separated by " | "; a cell merged across columns is read once."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            yield item.text
        elif isinstance(item, Table):
            yield _table_text(item)


def _table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell repeats in every column it spans
                continue
            seen.add(id(cell._tc))
            value = " ".join(paragraph.text for paragraph in cell.paragraphs).strip()
            if value:
                cells.append(" ".join(value.split()))
        if cells:
            rows.append(" | ".join(cells))
    return "\n".join(rows)


def _reason(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:120]
    return message or type(exc).__name__


def _properties(document) -> tuple[str | None, Metadata]:
    """(title, Metadata) from the core properties; a value that cannot be read is left out."""
    try:
        core = document.core_properties
        title, author, created = core.title, core.author, core.created
        language, keywords = core.language, core.keywords
    except Exception:  # a damaged docProps/core.xml costs the metadata, not the text
        return None, Metadata()
    meta = lenient_metadata(
        published=created,
        lang=language or None,
        author=author or None,
        tags=[keywords] if keywords else [],
    )
    return clean_text(title or "") or None, meta
