"""PDF and DOCX files, English and Arabic, through ingest and search with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.documents import Document, iter_documents
from qa.ingest import ingest_documents
from qa.service import open_service
from tests.format_files import ARABIC_PAGES, ENGLISH_PAGES, build_docx, build_pdf, has_shaping
from tests.helpers import SEEDS

ARABIC_DOCX = [
    "اجتماع مجلس البلدية",
    "وافق مجلس البلدية مساء الثلاثاء على ميزانية خط الترام الشرقي بعد نقاش استمر إحدى عشرة ساعة.",
    "وسيمتد الخط تسعة كيلومترات من المحطة المركزية إلى مستشفى الجامعة، ويبدأ البناء في الربيع المقبل.",
]
ENGLISH_DOCX = [
    "Library reopens",
    "The central library reopened on Monday after eighteen months of renovation, with a new reading "
    "room for children and a rooftop garden.",
    "Librarians said about three thousand people visited on the first day.",
]


@pytest.mark.model
@pytest.mark.skipif(not has_shaping(), reason="fpdf2 shapes Arabic only with uharfbuzz (dev extra)")
def test_questions_find_the_passages_of_pdf_and_docx_files(tmp_path: Path, real_encoder) -> None:
    files = tmp_path / "files"
    files.mkdir()
    (files / "festival.pdf").write_bytes(build_pdf(ENGLISH_PAGES, title="Festival report"))
    (files / "mahrajan.pdf").write_bytes(build_pdf(ARABIC_PAGES, lang="ar", rtl=True))
    (files / "library.docx").write_bytes(build_docx(ENGLISH_DOCX, title="Library reopens"))
    (files / "baladiya.docx").write_bytes(build_docx(ARABIC_DOCX, language="ar"))
    found = list(iter_documents([files, SEEDS]))  # the seed articles as other documents to beat
    assert all(isinstance(item, Document) for item in found), found
    service = open_service(tmp_path / "index", encoder=real_encoder)
    ingest_documents(service.index, real_encoder, found)

    questions = {
        "who won the first prize at the marmalade festival": ("festival", "family farm"),
        "من فاز بالجائزة الأولى في مهرجان مربى البرتقال": ("mahrajan", "لمزرعة عائلية"),
        "what is new in the library after the renovation": ("library", "rooftop garden"),
        "كم يبلغ طول خط الترام الشرقي": ("baladiya", "تسعة كيلومترات"),
    }
    for question, (doc_id, phrase) in questions.items():
        first = service.ask(question, k=3).passages[0]
        assert first.document.id == doc_id, (question, first.document.id)
        assert phrase in first.text, (question, first.text)
    service.index.close()
