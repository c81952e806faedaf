"""PDF files (qa/formats/pdf.py): text page by page, document info, scanned and broken files."""

from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from qa import documents
from qa.documents import Document, Skipped, document_from_upload, iter_documents
from qa.errors import DocumentError
from qa.formats.pdf import NO_TEXT_LAYER, extract_pdf
from tests.format_files import ARABIC_PAGES, ENGLISH_PAGES, build_pdf, has_shaping, image_only_pdf

needs_shaping = pytest.mark.skipif(
    not has_shaping(), reason="fpdf2 shapes Arabic only with uharfbuzz (dev extra)"
)


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", text))


def encrypted(data: bytes, *, user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    # RC4 needs no crypto library; AES would need the optional 'cryptography' package.
    writer.encrypt(user_password, "owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_english_pdf_text_pages_and_properties(tmp_path):
    created = datetime(2024, 5, 18, 9, 30, tzinfo=UTC)
    path = tmp_path / "festival.pdf"
    path.write_bytes(
        build_pdf(
            ENGLISH_PAGES,
            title="Festival report",
            author="Jane Whitfield",
            keywords="festivals; food, Port Elliot",
            subject="ignored",
            lang="en-GB",
            created=created,
        )
    )
    [doc] = iter_documents([path])
    assert isinstance(doc, Document)
    assert doc.id == "festival" and doc.source == str(path)
    assert doc.title == "Festival report"
    # Pages are separated by a blank line; lines within a page by a line break.
    first, second = doc.text.split("\n\n")
    assert " ".join(first.split()) == " ".join(" ".join(ENGLISH_PAGES[0]).split())
    assert " ".join(second.split()) == " ".join(ENGLISH_PAGES[1])
    assert doc.meta.published == "2024-05-18T09:30:00Z"
    assert doc.meta.author == "Jane Whitfield"
    assert doc.meta.tags == ("festivals", "food", "Port Elliot")
    assert doc.meta.lang == "en-gb" and not doc.meta.lang_detected


def test_a_pdf_without_properties_gets_the_first_line_and_a_detected_language():
    data = build_pdf([["Tram budget approved", "The city council approved the budget for the tram line."]])
    doc = document_from_upload("tram.pdf", data)
    assert doc.title == "Tram budget approved"
    assert doc.meta.lang == "en" and doc.meta.lang_detected
    assert doc.meta.author is None and doc.meta.tags == ()


def test_a_title_that_only_names_the_source_file_is_not_used():
    data = build_pdf([["Tram budget approved", "More text."]], title="Microsoft Word - tram.docx")
    assert extract_pdf(data).title is None


@needs_shaping
def test_arabic_pdf_comes_out_in_logical_order():
    data = build_pdf(
        ARABIC_PAGES,
        title="مهرجان الميناء",
        author="سلمى الحسن",
        keywords="مهرجان، ميناء",
        lang="ar",
        rtl=True,
    )
    found = extract_pdf(data)
    # The writer stored the shaped glyphs in visual order; pypdf gives the letters and words back in
    # reading order (not reversed), which is what search and the passages need.
    for phrase in [
        "مهرجان المربى في الميناء",
        "افتتح مهرجان مربى البرتقال المر في الميناء القديم",
        "لمزرعة عائلية حافظت على وصفة جدتها",
    ]:
        assert phrase in found.text
    assert "ءانيملا" not in found.text  # "الميناء" reversed letter by letter
    assert words(found.text) == words(" ".join(p for page in ARABIC_PAGES for p in page))
    assert found.title == "مهرجان الميناء"
    assert found.meta.lang == "ar" and found.meta.author == "سلمى الحسن"
    assert found.meta.tags == ("مهرجان", "ميناء")


@needs_shaping
def test_arabic_lines_with_digits_keep_every_word_but_not_always_their_place():
    """The documented limitation: in an Arabic line that also holds digits or Latin words, pypdf
    can put those runs (and the final full stop) at the wrong end of the line, and lose the space
    between a number and a word. Every word and number is still there, and the Arabic runs between
    them read right, so search finds the passage."""
    sentence = (
        "التقى رئيس الائتلاف الوطني عبد الرحمن مصطفى المبعوث جيمس جيفري في بروكسل عام 2019 لبحث القرار 2254."
    )
    found = extract_pdf(build_pdf([[sentence]], rtl=True))

    def letters_and_numbers(text: str) -> Counter[str]:
        return Counter(re.findall(r"[^\W\d]+|\d+", text))

    assert letters_and_numbers(found.text) == letters_and_numbers(sentence)
    assert "التقى رئيس الائتلاف الوطني عبد الرحمن مصطفى المبعوث جيمس جيفري" in found.text


def test_a_scanned_pdf_is_skipped_with_the_reason_and_the_rest_is_read(tmp_path):
    scanned = tmp_path / "a_scan.pdf"
    scanned.write_bytes(image_only_pdf())
    good = tmp_path / "b_good.pdf"
    good.write_bytes(build_pdf(ENGLISH_PAGES))
    results = list(iter_documents([tmp_path]))
    assert results[0] == Skipped(str(scanned), NO_TEXT_LAYER)
    assert isinstance(results[1], Document) and results[1].id == "b_good"
    assert NO_TEXT_LAYER == "PDF has no text layer (a scanned document?); OCR is not supported"


def test_a_password_protected_pdf_is_refused_and_a_restricted_one_is_read():
    data = build_pdf(ENGLISH_PAGES, title="Festival report")
    with pytest.raises(DocumentError, match=r"^the PDF is protected by a password; save a copy without"):
        extract_pdf(encrypted(data, user_password="secret"))
    # No user password: anyone may open it (printing or copying restricted): it is read.
    assert "Port Elliot" in extract_pdf(encrypted(data, user_password="")).text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"^not a PDF file \(no %PDF- header at its start\)$"),
        (b"just some text, named .pdf", r"^not a PDF file"),
        (b"%PDF-1.4", r"^not a readable PDF file \(damaged or not a PDF: "),
        ("half", r"^not a readable PDF file \(damaged or not a PDF: "),
        ("no-tail", r"^not a readable PDF file \(damaged or not a PDF: "),
    ],
)
def test_malformed_pdfs_give_one_line_reasons(data, message):
    whole = build_pdf(ENGLISH_PAGES)
    data = {"half": whole[: len(whole) // 2], "no-tail": whole[:-300]}.get(data, data)
    with pytest.raises(DocumentError, match=message) as caught:
        extract_pdf(data)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200


def test_binary_checks_do_not_apply_to_pdfs_but_the_size_limit_does(tmp_path, monkeypatch):
    data = build_pdf(ENGLISH_PAGES)
    assert b"\0" in data[:8192] or not data.isascii()  # a PDF is not text: it must not be refused as such
    assert document_from_upload("ok.pdf", data).id == "ok"
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", len(data) - 1)
    path = tmp_path / "big.pdf"
    path.write_bytes(data)
    [skipped] = iter_documents([path])
    assert isinstance(skipped, Skipped) and skipped.reason.startswith("larger than the")
    with pytest.raises(DocumentError, match="larger than the"):
        document_from_upload("big.pdf", data)


def test_a_pdf_upload_through_the_api_is_indexed(tmp_path, fake_encoder):
    from litestar.testing import TestClient

    from qa.api import ApiSettings, create_app
    from qa.service import open_service

    service = open_service(tmp_path / "index", encoder=fake_encoder)
    auth = {"Authorization": "Bearer test-token"}
    with TestClient(create_app(service, settings=ApiSettings(api_token="test-token"))) as client:
        pdf = build_pdf(ENGLISH_PAGES, title="Festival report")
        response = client.post(
            "/api/documents", files={"file": ("festival.pdf", pdf, "application/pdf")}, headers=auth
        )
        assert response.status_code == 201, response.text
        assert response.json()["document"]["title"] == "Festival report"
        scan = image_only_pdf()
        scanned = client.post(
            "/api/documents", files={"file": ("scan.pdf", scan, "application/pdf")}, headers=auth
        )
        assert scanned.status_code == 400 and scanned.json()["detail"] == NO_TEXT_LAYER
