"""PDF and DOCX files built in the tests (fpdf2, python-docx), with known text and properties."""

from __future__ import annotations

import io
from datetime import datetime

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

ENGLISH_PAGES = [
    [
        "Quokka marmalade festival draws record crowds to Port Elliot",
        "Port Elliot's harbour was packed on Saturday as the annual quokka marmalade festival opened "
        "with more than forty growers selling jars of bitter orange and lime preserves.",
        "The jury gave the first prize to a family farm from the valley for a bitter orange recipe "
        "that has not changed in four generations.",
    ],
    [
        "The council has promised a shuttle bus from the railway station for next year's edition, "
        "after traders complained about parking near the pier.",
    ],
]

# Two Arabic paragraphs with no digits or Latin words: pypdf gets their order right. A line that
# mixes Arabic with digits is tested apart (see tests/test_formats_pdf.py).
ARABIC_PAGES = [
    [
        "مهرجان المربى في الميناء",
        "افتتح مهرجان مربى البرتقال المر في الميناء القديم يوم السبت بمشاركة أكثر من أربعين مزارعا "
        "من الوادي، وامتلأت الأرصفة بالزوار منذ ساعات الصباح الأولى.",
    ],
    [
        "ومنحت لجنة التحكيم الجائزة الأولى لمزرعة عائلية حافظت على وصفة جدتها دون تغيير طوال أربعة أجيال.",
    ],
]


def has_shaping() -> bool:
    """Whether fpdf2 can shape Arabic (it needs uharfbuzz, a dev extra)."""
    try:
        import uharfbuzz  # noqa: F401
    except ImportError:
        return False
    return True


def build_pdf(
    pages: list[list[str]],
    *,
    title: str | None = None,
    author: str | None = None,
    keywords: str | None = None,
    subject: str | None = None,
    lang: str | None = None,
    created: datetime | None = None,
    rtl: bool = False,
) -> bytes:
    """A PDF with one page per list of paragraphs. Arabic (`rtl`) is shaped by HarfBuzz and laid
    out right to left, as a word processor writes it."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("dejavu", fname=DEJAVU)
    pdf.set_font("dejavu", size=12)
    if rtl:
        pdf.set_text_shaping(use_shaping_engine=True, direction="rtl", script="arab", language="ar")
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 8, paragraph, align="R" if rtl else "L")
            pdf.ln(4)
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    if keywords:
        pdf.set_keywords(keywords)
    if subject:
        pdf.set_subject(subject)
    if lang:
        pdf.set_lang(lang)
    if created:
        pdf.set_creation_date(created)
    return bytes(pdf.output())


def image_only_pdf() -> bytes:
    """A 'scanned' page: one picture of text, no text layer."""
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 120), "white")
    ImageDraw.Draw(image).text((10, 50), "A scanned page of text", fill="black")
    pdf = FPDF()
    pdf.add_page()
    pdf.image(image, x=10, y=10, w=150)
    pdf.set_title("Scanned letter")
    return bytes(pdf.output())


def build_docx(
    paragraphs: list[str],
    *,
    table: list[list[str]] | None = None,
    title: str | None = None,
    author: str | None = None,
    keywords: str | None = None,
    language: str | None = None,
    created: datetime | None = None,
    rtl: bool = False,
) -> bytes:
    """A .docx with the paragraphs (the first as a heading), then the table, if any."""
    from docx import Document

    document = Document()
    for i, text in enumerate(paragraphs):
        paragraph = document.add_heading(text, level=1) if i == 0 else document.add_paragraph(text)
        if rtl:
            paragraph.paragraph_format.right_to_left = True  # python-docx ≥ 1.2
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
    core = document.core_properties
    # python-docx's template says author "python-docx" and a 2013 date: cleared unless given.
    core.author = author or ""
    core.title = title or ""
    core.keywords = keywords or ""
    core.language = language or ""
    core.created = created or datetime(2000, 1, 1)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()
