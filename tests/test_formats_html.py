"""News pages (qa/formats/html.py): main text with trafilatura, the metadata a page declares, the
fallback for fragments, and the comparison with the hand-written converter (docs/formats.md)."""

from __future__ import annotations

import pytest

from qa.documents import Document, document_from_upload, iter_documents
from qa.errors import DocumentError
from qa.formats.html import extract_html
from qa.formats.html_plain import html_to_text
from tests.news_pages import ENGLISH, LAYOUTS, Article, all_articles, compare, semantic_page

ARTICLES = all_articles()
SEED_ARTICLES = [article for article in ARTICLES if article.key.startswith("seed")]


@pytest.fixture(scope="module")
def comparison():
    return compare({"old": lambda page: html_to_text(page)[1], "new": lambda page: extract_html(page).text})


def test_trafilatura_keeps_the_story_and_drops_the_page_furniture(comparison):
    for layout in LAYOUTS:
        old, new = comparison["old"][layout], comparison["new"][layout]
        mean = lambda scores, name: sum(getattr(s, name) for s in scores) / len(scores)  # noqa: E731
        assert mean(new, "recall") >= 0.98, layout
        assert mean(new, "precision") >= 0.9, layout
        assert mean(new, "f1") > mean(old, "f1") + 0.1, layout
        # The old converter keeps every word of the story but lets menus and sidebars in.
        assert mean(old, "recall") == 1.0 and mean(old, "precision") < 0.8


@pytest.mark.parametrize("layout", ["html5", "divs", "br"])
def test_paragraphs_come_out_whole_and_separated_by_blank_lines(layout):
    for article in ARTICLES:
        text = extract_html(LAYOUTS[layout](article)).text
        blocks = text.split("\n\n")
        for paragraph in article.paragraphs:
            assert paragraph in blocks, (layout, article.key, paragraph[:40])


@pytest.mark.parametrize("article", SEED_ARTICLES, ids=lambda a: a.key)
def test_arabic_stays_in_logical_order(article: Article):
    """The text is the page's characters in source order: no reordering, no bidi marks added."""
    page = semantic_page(article).replace('<html lang="ar" dir="rtl">', '<html lang="ar" dir="rtl">\u200f')
    text = extract_html(page).text
    assert text == article.text
    assert not any(
        mark in text for mark in "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    )


def test_mixed_arabic_english_and_digits_keep_their_source_order():
    first = "قال جيمس جيفري (James Jeffrey) إن القرار 2254 ما زال أساس الحل، وإن 5 مدنيين قتلوا يوم 12 أيلول."
    second = "وأضاف أن اجتماع «جنيف 3» سيعقد في 2020/01/15 بحضور وفد الـUN والمبعوث غير بيدرسن."
    page = f'<html lang="ar" dir="rtl"><body><article><p>{first}</p><p>{second}</p></article></body></html>'
    assert extract_html(page).text == f"{first}\n\n{second}"


def test_a_news_page_gives_its_metadata(tmp_path):
    article = ARTICLES[0]
    path = tmp_path / "elaph.html"
    path.write_text(semantic_page(article), encoding="utf-8")
    [doc] = iter_documents([path])
    assert isinstance(doc, Document)
    assert doc.title == article.headline  # og:title; a <title> would lose " - إيلاف" the same way
    assert doc.meta.published == "2019-09-21T11:05:00Z"  # +03:00 in the page, kept to the minute
    assert doc.meta.author == "نصر المجالي"
    assert doc.meta.url == article.url
    assert doc.meta.tags == article.tags  # article:tag and the keywords, split and deduplicated
    assert doc.meta.lang == "ar" and not doc.meta.lang_detected


def test_the_title_is_the_page_title_without_the_site_name_when_there_is_no_og_title():
    page = (
        "<html><head><title>Tram budget approved after marathon session | Metro Daily</title></head><body>"
        "<h1>Metro Daily</h1><article><p>The city council approved the budget for the new tram line on "
        "Tuesday after a debate of eleven hours.</p></article></body></html>"
    )
    assert (
        document_from_upload("tram.html", page.encode()).title
        == "Tram budget approved after marathon session"
    )


def test_a_template_lang_that_the_text_contradicts_is_replaced_by_the_detected_one():
    article = ARTICLES[1]
    page = semantic_page(article).replace('<html lang="ar" dir="rtl">', '<html lang="en-US">')
    doc = document_from_upload("page.html", page.encode())
    assert doc.meta.lang == "ar" and doc.meta.lang_detected


def test_dates_come_from_meta_tags_json_ld_or_the_articles_time_and_are_never_guessed_from_text():
    story = (
        "<p>" + "The harbour festival opened on Saturday with forty growers selling preserves. " * 5 + "</p>"
    )
    json_ld = (
        '<script type="application/ld+json">{"@graph": [{"@type": "NewsArticle", '
        '"datePublished": "2024-05-18T08:45:00+09:30"}]}</script>'
    )
    dated = f"<html><head>{json_ld}</head><body><article>{story}</article></body></html>"
    assert extract_html(dated).meta.published == "2024-05-17T23:15:00Z"
    footer = "<footer>© 2021 Coastal Herald, 3 March 2021</footer>"
    undated = f"<html><body><article>{story}</article>{footer}</body></html>"
    assert extract_html(undated).meta.published is None
    time = '<p>By Jane <time datetime="2024-05-18">Saturday</time></p>'
    byline = f"<html><body><article>{time}{story}</article></body></html>"
    assert extract_html(byline).meta.published == "2024-05-18"


def test_bad_metadata_values_are_dropped_not_the_page():
    page = semantic_page(ENGLISH[0]).replace("2024-05-18T08:45:00+09:30", "last Saturday")
    page = page.replace(
        "https://coastalherald.example/news/2024/05/18/quokka-marmalade-festival", "/relative/url"
    )
    found = extract_html(page)
    assert found.meta.published is None
    assert found.meta.url is None
    assert "quokka marmalade festival opened" in found.text


@pytest.mark.parametrize(
    ("page", "text"),
    [
        ("<p>Quokkas visited Aleppo.</p>", "Quokkas visited Aleppo."),
        ("<p>First para</p>\n<p>Second</p>", "First para\n\nSecond"),
        ("<div>خبر قصير<br><br>سطر ثان</div>", "خبر قصير\n\nسطر ثان"),
    ],
)
def test_fragments_that_trafilatura_finds_nothing_in_fall_back_to_every_visible_text(page, text):
    assert extract_html(page).text == text


def test_a_page_without_text_is_refused():
    with pytest.raises(DocumentError, match=r"^no text left after removing the HTML markup$"):
        extract_html("<html><head><title>x</title></head><body><script>1</script></body></html>")


def test_a_large_page_is_not_refused_by_trafilaturas_own_size_limit():
    paragraph = "<p>" + "The council approved the tram budget after a long debate. " * 20 + "</p>"
    page = "<html><body><article>" + paragraph * (21_000_000 // len(paragraph)) + "</article></body></html>"
    assert len(page) > 20_000_000  # trafilatura's default MAX_FILE_SIZE
    assert extract_html(page).text.startswith("The council approved")
