"""Word .docx files (qa/formats/docx.py): paragraphs, tables, core properties, broken files."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime

import pytest

from qa.documents import Document, Skipped, document_from_upload, iter_documents
from qa.errors import DocumentError
from qa.formats.docx import extract_docx
from tests.format_files import ARABIC_PAGES, build_docx

ENGLISH = [
    "City council approves tram budget",
    "The city council approved a 412 million euro budget for the eastern tram line late on Tuesday.",
    "The line will run for nine kilometres from the central station to the university hospital.",
]
ARABIC = [paragraph for page in ARABIC_PAGES for paragraph in page]


def test_english_docx_paragraphs_table_and_core_properties(tmp_path):
    path = tmp_path / "tram.docx"
    path.write_bytes(
        build_docx(
            ENGLISH,
            table=[["Stop", "Opens"], ["Central station", "2027"], ["University hospital", "2028"]],
            title="Tram budget approved",
            author="David Mensah",
            keywords="transport, city council",
            language="en-GB",
            created=datetime(2023, 11, 7, 18, 5),
        )
    )
    [doc] = iter_documents([path])
    assert isinstance(doc, Document)
    # A blank line between paragraphs (chunking splits there); a table row per line.
    assert doc.text == "\n\n".join(
        [*ENGLISH, "Stop | Opens\nCentral station | 2027\nUniversity hospital | 2028"]
    )
    assert doc.title == "Tram budget approved"
    assert doc.meta.author == "David Mensah"
    assert doc.meta.published == "2023-11-07T18:05:00Z"  # docx times are UTC
    assert doc.meta.tags == ("transport", "city council")
    assert doc.meta.lang == "en-gb" and not doc.meta.lang_detected


def test_arabic_docx_keeps_logical_order_and_its_properties():
    data = build_docx(
        ARABIC,
        title="مهرجان الميناء",
        author="سلمى الحسن",
        keywords="مهرجان، ميناء",
        language="ar-SA",
        rtl=True,
    )
    doc = document_from_upload("مهرجان.docx", data)
    assert doc.text == "\n\n".join(ARABIC)  # a .docx stores text in reading order: nothing to repair
    assert doc.title == "مهرجان الميناء"
    assert doc.meta.author == "سلمى الحسن"
    assert doc.meta.tags == ("مهرجان", "ميناء")
    assert doc.meta.lang == "ar-sa"


def test_a_docx_without_properties_gets_the_first_line_and_a_detected_language():
    doc = document_from_upload("brief.docx", build_docx(ARABIC))
    assert doc.title == ARABIC[0]
    assert doc.meta.lang == "ar" and doc.meta.lang_detected
    assert doc.meta.author is None and doc.meta.tags == ()


def test_merged_table_cells_are_read_once():
    from docx import Document as new_docx

    document = new_docx()
    document.add_paragraph("Results")
    table = document.add_table(rows=2, cols=3)
    merged = table.cell(0, 0).merge(table.cell(0, 2))
    merged.text = "Whole row heading"
    for cell, value in zip(table.rows[1].cells, ["a", "b", "c"], strict=True):
        cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    assert extract_docx(buffer.getvalue()).text == "Results\n\nWhole row heading\na | b | c"


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _damaged_document_xml() -> bytes:
    source = zipfile.ZipFile(io.BytesIO(build_docx(ENGLISH)))
    files = {name: source.read(name) for name in source.namelist()}
    files["word/document.xml"] = files["word/document.xml"][:200]  # cut mid-element
    return _zip(files)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: b"",
            r"^not a Word \.docx file \(a \.docx is a ZIP archive; an old \.doc must be saved as \.docx\)$",
        ),
        (lambda: b"\xd0\xcf\x11\xe0 an old binary .doc", r"^not a Word \.docx file"),
        (
            lambda: _zip({"hello.txt": b"not a word document"}),
            r"^not a Word \.docx file \(the archive has no Word",
        ),
        (lambda: build_docx(ENGLISH)[:-100], r"^not a Word \.docx file"),
        (_damaged_document_xml, r"^not a readable Word \.docx file \(damaged: "),
        (lambda: build_docx(["", "  "]), r"^empty document \(no text\)$"),
    ],
)
def test_malformed_docx_files_give_one_line_reasons(make, message):
    with pytest.raises(DocumentError, match=message) as caught:
        extract_docx(make())
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_a_broken_docx_is_skipped_and_the_rest_of_the_folder_is_read(tmp_path):
    (tmp_path / "a_broken.docx").write_bytes(b"PK\x03\x04 truncated")
    (tmp_path / "b_good.docx").write_bytes(build_docx(ENGLISH))
    first, second = iter_documents([tmp_path])
    assert isinstance(first, Skipped) and first.reason.startswith("not a Word .docx file")
    assert isinstance(second, Document) and second.id == "b_good"


def test_a_docx_that_unpacks_to_too_much_is_refused_before_it_is_parsed(monkeypatch):
    from qa.formats import docx

    monkeypatch.setattr(docx, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(DocumentError, match=r"^the \.docx unpacks to 0 MiB, more than the 0 MiB"):
        extract_docx(build_docx(ENGLISH))
