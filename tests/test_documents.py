"""Reading documents: file types, folders, bad files, JSONL, uploads and API text."""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from qa import documents
from qa.documents import (
    Document,
    Skipped,
    document_from_text,
    document_from_upload,
    iter_documents,
)
from qa.errors import DocumentError
from qa.language import detect_language
from qa.metadata import Metadata
from tests.helpers import SEEDS


def without_meta(doc: Document) -> Document:
    """The document with its metadata (here only a detected language) left out of comparisons."""
    return dataclasses.replace(doc, meta=Metadata())


def read(*paths) -> list[Document | Skipped]:
    return list(iter_documents(paths))


def by_kind(results) -> tuple[list[Document], list[Skipped]]:
    return (
        [r for r in results if isinstance(r, Document)],
        [r for r in results if isinstance(r, Skipped)],
    )


@pytest.mark.parametrize(
    ("name", "content", "title", "text"),
    [
        ("a.txt", "\n\n  First line  \nsecond", "First line", "\n\n  First line  \nsecond"),
        ("b.md", "## Heading one\n\nbody", "Heading one", "## Heading one\n\nbody"),
        ("c.txt", "\ufeffwith BOM", "with BOM", "with BOM"),
        (
            "d.html",
            "<html><head><title>T &amp; U</title></head><body><p>Hello</p></body></html>",
            "T & U",
            "Hello",
        ),
        ("e.htm", "<p>First para</p>\n<p>Second</p>", "First para", "First para\n\nSecond"),
        ("f.TXT", "upper-case suffix", "upper-case suffix", "upper-case suffix"),
    ],
)
def test_each_file_type_gives_title_and_text(tmp_path, name, content, title, text):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    [doc] = read(path)
    assert without_meta(doc) == Document(id=Path(name).stem, title=title, text=text, source=str(path))


def test_html_drops_scripts_and_page_chrome_and_keeps_the_article(tmp_path):
    page = tmp_path / "page.html"
    page.write_text(
        """<html><head><title>Story</title><style>p { color: red }</style>
        <script>var SECRET = "<p>injected</p>";</script></head>
        <body><header>SITE HEADER</header><nav><ul><li>MENU</li></ul></nav>
        <article><header><h1>Headline</h1></header>
        <p>First   paragraph
        continues.</p><noscript>NOSCRIPT</noscript><ul><li>one</li><li>two</li></ul>
        <form><button>SUBMIT</button></form><svg><title>ICON</title></svg></article>
        <aside>ASIDE</aside><footer>FOOTER</footer><script>alert("SCRIPT2")</script></body></html>""",
        encoding="utf-8",
    )
    [doc] = read(page)
    assert doc.title == "Story"
    assert doc.text == "Headline\n\nFirst paragraph continues.\n\none\ntwo"
    for hidden in ("SECRET", "injected", "SCRIPT2", "<script", "color", "MENU", "SITE HEADER", "ICON"):
        assert hidden not in doc.text


def test_html_entities_are_unescaped(tmp_path):
    page = tmp_path / "e.html"
    page.write_text("<p>&lt;b&gt; caf&eacute; &#1605;&#x0635;&#x0631; &amp; co</p>", encoding="utf-8")
    [doc] = read(page)
    assert doc.text == "<b> café مصر & co"


def test_html_with_no_visible_text_is_skipped(tmp_path):
    page = tmp_path / "empty.html"
    page.write_text("<html><head><title>x</title></head><body><script>1</script></body></html>")
    [skipped] = read(page)
    assert skipped == Skipped(str(page), "no text left after removing the HTML markup")


def test_a_folder_is_walked_recursively_in_sorted_order_ignoring_other_files(tmp_path):
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    files = {
        "b.txt": "bee",
        "a.md": "# ay",
        "sub/c.html": "<p>see</p>",
        "sub/deeper/d.txt": "dee",
        "notes.odt": "not a supported type",
        "image.png": "\x89PNG",
        ".secret.txt": "hidden file",
        ".hidden/e.txt": "hidden folder",
    }
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    results = read(tmp_path)
    assert all(isinstance(r, Document) for r in results)
    assert [r.id for r in results] == ["a", "b", "c", "d"]
    assert results[2].source == str(tmp_path / "sub" / "c.html")


def test_an_unsupported_file_named_explicitly_is_skipped(tmp_path):
    path = tmp_path / "report.odt"
    path.write_bytes(b"PK\x03\x04")
    [skipped] = read(path)
    assert isinstance(skipped, Skipped)
    assert skipped.path == str(path)
    assert "unsupported file type '.odt'" in skipped.reason
    assert ".pdf, .docx" in skipped.reason


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("binary.txt", b"GIF89a\x00\x01\x02", r"^binary file"),
        (
            "latin1.txt",
            "caf\u00e9 ok".encode("latin-1"),
            r"^not UTF-8 text \(invalid byte 0xE9 at offset 3\)$",
        ),
        ("utf16.txt", "hello".encode("utf-16"), r"^UTF-16 text, which is not supported"),
        ("empty.md", b"  \n\t\n", r"^empty document"),
        ("invisible.txt", "\u200b\u200f\n".encode(), r"^empty document"),
    ],
)
def test_bad_files_are_skipped_with_a_reason_and_good_files_still_come_back(tmp_path, name, data, reason):
    good_before, good_after = tmp_path / "a_good.txt", tmp_path / "z_good.txt"
    good_before.write_text("نص جيد")
    good_after.write_text("another good one")
    bad = tmp_path / name
    bad.write_bytes(data)
    docs, skipped = by_kind(read(good_before, bad, good_after))
    assert [d.id for d in docs] == ["a_good", "z_good"]
    [entry] = skipped
    assert entry.path == str(bad)
    assert re.search(reason, entry.reason), entry.reason


def test_a_file_over_the_size_limit_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(documents, "MAX_DOCUMENT_BYTES", 10)
    big = tmp_path / "big.txt"
    big.write_text("x" * 11)
    [skipped] = read(big)
    assert skipped.reason.startswith("larger than the ")


def test_a_missing_path_raises_before_anything_is_read(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("fine")
    missing = tmp_path / "nope"
    with pytest.raises(DocumentError, match=f"^no such file or folder: {re.escape(str(missing))}$"):
        iter_documents([good, missing])


def jsonl(tmp_path: Path, *lines: str | dict) -> Path:
    path = tmp_path / "docs.jsonl"
    text = "\n".join(
        line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path


def test_jsonl_reads_good_lines_and_skips_bad_ones(tmp_path):
    path = jsonl(
        tmp_path,
        {"id": "n1", "title": "عنوان", "text": "نص الخبر", "source": "https://example.org/1"},
        "{not json",
        {"id": "n2", "text": "\nfirst line\nmore", "url": "https://example.org/2"},
        "",
        {"title": "no id", "text": "x"},
        {"id": "n3", "text": "plain"},
        {"id": "a/b", "text": "slash in id"},
        {"id": "", "text": "empty id"},
        {"id": "x" * 201, "text": "long id"},
        {"id": "bad\x07id", "text": "control character"},
        {"id": 7, "text": "number id"},
        {"id": "n4"},
        {"id": "n5", "text": "   "},
        '["a list"]',
    )
    docs, skipped = by_kind(read(path))
    assert [without_meta(doc) for doc in docs] == [
        Document("n1", "عنوان", "نص الخبر", "https://example.org/1"),
        Document("n2", "first line", "\nfirst line\nmore", "https://example.org/2"),
        Document("n3", "plain", "plain", f"{path}#6"),
    ]
    assert docs[1].meta.url == "https://example.org/2"  # the url is also the source when none is given
    reasons = {entry.path: entry.reason for entry in skipped}
    assert list(reasons) == [f"{path}:{n}" for n in (2, 5, 7, 8, 9, 10, 11, 12, 13, 14)]
    assert reasons[f"{path}:2"].startswith("not valid JSON")
    assert reasons[f"{path}:5"] == 'missing "id"'
    assert '"/"' in reasons[f"{path}:7"]
    assert "empty" in reasons[f"{path}:8"]
    assert "longer than 200" in reasons[f"{path}:9"]
    assert "control character" in reasons[f"{path}:10"]
    assert reasons[f"{path}:11"] == '"id" must be a string'
    assert reasons[f"{path}:12"] == 'missing "text"'
    assert reasons[f"{path}:13"].startswith("empty document")
    assert reasons[f"{path}:14"] == "not a JSON object"


def test_jsonl_line_with_bad_utf8_costs_only_that_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"id": "ok", "text": "fine"}\n{"id": "bad", "text": "caf\xe9"}\n')
    docs, skipped = by_kind(read(path))
    assert [d.id for d in docs] == ["ok"]
    assert skipped == [Skipped(f"{path}:2", "not UTF-8 text (invalid byte 0xE9 at offset 26)")]


def test_upload_uses_only_the_base_name_and_never_touches_the_filesystem(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("document_from_upload touched the filesystem")

    detect_language("the language model loads once, from the package")  # not per upload
    for owner, name in [(builtins, "open"), (os, "open"), (os, "stat"), (Path, "open"), (Path, "stat")]:
        monkeypatch.setattr(owner, name, forbidden)
    doc = document_from_upload("../../etc/passwd.txt", b"root:x:0:0\nsecond")
    assert without_meta(doc) == Document("passwd", "root:x:0:0", "root:x:0:0\nsecond", "passwd.txt")


@pytest.mark.parametrize(
    ("filename", "expected_id"),
    [
        ("C:\\Users\\me\\خبر عاجل.md", "خبر_عاجل"),
        ("weird name;rm -rf.txt", "weird_name_rm_-rf"),
        ("page.HTML", "page"),
    ],
)
def test_upload_file_names_become_safe_ids(filename, expected_id):
    assert document_from_upload(filename, b"<p>text</p>").id == expected_id


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("docs.jsonl", b'{"id": "a", "text": "b"}', "JSONL"),
        ("photo.jpg", b"\xff\xd8", "unsupported file type '.jpg'"),
        ("noext", b"text", "unsupported file type"),
        ("bin.txt", b"ab\x00cd", "binary file"),
        ("latin.txt", "é".encode("latin-1"), r"not UTF-8 text \(invalid byte 0xE9 at offset 0\)"),
        ("blank.md", b"\n  \n", "empty document"),
    ],
)
def test_bad_uploads_raise_document_error(filename, data, message):
    with pytest.raises(DocumentError, match=message):
        document_from_upload(filename, data)


def test_document_from_text_default_id_is_stable_and_content_derived():
    text = "التقى رئيس الائتلاف المبعوث الأمريكي"
    first, again = document_from_text(text), document_from_text(text, title="another title")
    assert first.id == again.id == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert document_from_text(text + ".").id != first.id
    assert first.title == text
    assert first.source == "api"


def test_document_from_text_keeps_given_id_title_and_source():
    doc = document_from_text("body", id="my-id", title="  My\ttitle ", source="web")
    assert without_meta(doc) == Document("my-id", "My title", "body", "web")


@pytest.mark.parametrize(
    ("text", "doc_id", "message"),
    [
        ("   \n ", None, "empty document"),
        ("ok", "", "id is empty"),
        ("ok", "a/b", '"/"'),
        ("ok", "..", "not allowed"),
        ("ok", "tab\there", "control character"),
        ("ok", "x" * 201, "longer than 200"),
        ("bad \ud800 surrogate", None, "not valid Unicode text"),
    ],
)
def test_document_from_text_rejects_bad_input(text, doc_id, message):
    with pytest.raises(DocumentError, match=message):
        document_from_text(text, id=doc_id)


def test_content_hash_is_sha256_of_title_nul_text():
    doc = Document(id="x", title="t", text="body", source="s")
    assert doc.content_hash == hashlib.sha256(b"t\x00body").hexdigest()
    assert Document(id="y", title="t", text="body", source="other").content_hash == doc.content_hash


def test_a_long_first_line_is_cut_to_a_short_title():
    doc = document_from_text("word " * 100)
    assert len(doc.title) <= documents.MAX_TITLE_CHARS + 1
    assert doc.title.endswith("word…")


def test_all_seed_articles_read_as_documents():
    seeds = sorted(SEEDS.glob("*.txt"))
    assert seeds
    results = read(*seeds)
    assert all(isinstance(r, Document) for r in results), results
    assert [r.id for r in results] == [p.stem for p in seeds]
    assert all(r.title and r.text.strip() for r in results)


def test_the_title_skips_page_furniture_at_the_top(tmp_path):
    page = tmp_path / "scraped.txt"
    page.write_text("تخطى إلى المحتوى\n\nنتائج اجتماع بين دبلوماسيين\n\nنص المقال.", encoding="utf-8")
    (document,) = iter_documents([page])
    assert document.title == "نتائج اجتماع بين دبلوماسيين"


def test_a_nul_far_into_a_file_or_escaped_in_json_is_refused(tmp_path):
    """Past the bytes a file is sniffed on, or as \\u0000 in JSON: no index stores NUL (PostgreSQL
    text refuses it), so the document is refused with a reason instead of failing the write."""
    late = tmp_path / "late.txt"
    late.write_bytes(b"Title\n" + b"a" * 100_000 + b"\x00tail")
    record = tmp_path / "records.jsonl"
    record.write_text(json.dumps({"id": "r1", "text": "Title\nbody \u0000 more"}) + "\n", encoding="utf-8")
    found = list(iter_documents([late, record]))
    assert [type(item).__name__ for item in found] == ["Skipped", "Skipped"]
    assert all("NUL" in item.reason for item in found)
