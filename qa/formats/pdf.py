"""PDF files: the text layer page by page, and the document info (title, author, dates, keywords).

pypdf (BSD) reads them; PyMuPDF extracts better but its AGPL licence does not fit this project.
There is no OCR: a scanned PDF without a text layer is refused with a reason, not indexed empty.

Right-to-left text: PDF writers place shaped Arabic glyphs in visual order (left to right on the
page); pypdf turns each run of Arabic letters back into logical order, so Arabic words and their
order within a run come out right. Where an Arabic line also holds digits or Latin words, pypdf
can put those runs at the wrong end of the line (docs/formats.md, tests/test_formats_pdf.py).
"""

from __future__ import annotations

import io
import logging
import re

from qa.errors import DocumentError
from qa.formats import Extracted, lenient_metadata
from qa.metadata import Metadata
from qa.textnorm import clean_text

# pypdf reports each repaired defect of a damaged file at WARNING; the file is read anyway, and
# an ingest run should not print pages of them.
logging.getLogger("pypdf").setLevel(logging.ERROR)

NO_TEXT_LAYER = "PDF has no text layer (a scanned document?); OCR is not supported"
# C0 controls other than tab and newline: some fonts map glyphs to them; no text needs them.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_BLANK_LINES = re.compile(r"\n{3,}")
# Titles some writers put in the document info that only name the file it was made from.
_FILE_TITLE = re.compile(
    r"^(?:microsoft (?:word|powerpoint) - .*|untitled.*|.*\.(?:docx?|pdf|tex|odt|rtf))$", re.I
)


def extract_pdf(data: bytes) -> Extracted:
    """The text of every page (a blank line between pages), the title and the metadata."""
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    if b"%PDF-" not in data[:1024]:  # readers accept junk before the header, as pypdf does
        raise DocumentError("not a PDF file (no %PDF- header at its start)")
    try:
        reader = PdfReader(io.BytesIO(data))
        _decrypt(reader)
        pages = [_page_text(page.extract_text()) for page in reader.pages]
    except DocumentError:
        raise
    except DependencyError:
        raise DocumentError(
            "the PDF is encrypted with AES, which needs the 'cryptography' package: "
            "pip install cryptography, or save an unencrypted copy"
        ) from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as exc:
        # pypdf raises its own errors for most damage and plain Python ones for the rest.
        raise DocumentError(f"not a readable PDF file (damaged or not a PDF: {_reason(exc)})") from None
    text = "\n\n".join(page for page in pages if clean_text(page))
    if not text:
        raise DocumentError(NO_TEXT_LAYER)
    title, meta = _properties(reader)
    return Extracted(text, title, meta)


def _decrypt(reader) -> None:
    """Open a PDF that is encrypted without a user password (allowed to open, restricted to
    print or copy, common for official documents); refuse one that needs a password."""
    if not reader.is_encrypted:
        return
    from pypdf import PasswordType

    if reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise DocumentError(
            "the PDF is protected by a password; save a copy without the password and add that"
        )


def _page_text(raw: str) -> str:
    text = _CONTROLS.sub("", raw.replace("\r\n", "\n").replace("\r", "\n"))
    lines = (line.rstrip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


def _reason(exc: BaseException) -> str:
    message = " ".join(str(exc).split())[:120]
    return message or type(exc).__name__


def _properties(reader) -> tuple[str | None, Metadata]:
    """(title, Metadata) from the document info and the catalog's /Lang; any unreadable value is
    left out rather than refusing a readable text."""
    info = _safe(lambda: reader.metadata)
    title = author = created = keywords = None
    if info is not None:
        title = _safe(lambda: info.title)
        author = _safe(lambda: info.author)
        created = _safe(lambda: info.creation_date)
        keywords = _safe(lambda: info.keywords)
    lang = _safe(lambda: reader.trailer["/Root"].get("/Lang"))
    title = clean_text(str(title)) if title else None
    if title and _FILE_TITLE.match(title):
        title = None
    meta = lenient_metadata(
        published=created,
        lang=str(lang) if lang else None,
        author=str(author) if author else None,
        tags=[str(keywords)] if keywords else [],
    )
    return title or None, meta


def _safe(read):
    """The value, or None when reading it fails: document info is often malformed (bad dates,
    broken references) in files whose text is fine."""
    try:
        return read()
    except Exception:
        return None
