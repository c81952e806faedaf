"""Symbolic links in what is ingested: loops and broken links are reported as what they are, in a
folder (a Skipped entry, the rest still read) and passed directly (an error naming the loop), and
a folder that links back to its parent does not make the walk endless. Real links in tmp_path."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from qa.cli import main
from qa.documents import Document, Skipped, iter_documents
from qa.errors import DocumentError
from qa.service import open_service


def loop(folder: Path) -> tuple[Path, Path]:
    """Two links to each other: a.txt -> b.txt -> a.txt."""
    a, b = folder / "a.txt", folder / "b.txt"
    a.symlink_to("b.txt")
    b.symlink_to("a.txt")
    return a, b


def test_a_loop_between_two_files_in_a_folder_is_skipped_as_a_loop(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Mustafa met Jeffrey in Brussels.")
    a, b = loop(tmp_path)
    results = list(iter_documents([tmp_path]))
    assert [r.id for r in results if isinstance(r, Document)] == ["good"]
    assert [r for r in results if isinstance(r, Skipped)] == [
        Skipped(str(a), f"symbolic link loop ({a} -> {b} -> {a})"),
        Skipped(str(b), f"symbolic link loop ({b} -> {a} -> {b})"),
    ]


def test_a_link_to_itself_is_a_loop(tmp_path: Path) -> None:
    (tmp_path / "self.md").symlink_to("self.md")
    [skipped] = iter_documents([tmp_path])
    assert skipped == Skipped(
        str(tmp_path / "self.md"), f"symbolic link loop ({tmp_path / 'self.md'} -> {tmp_path / 'self.md'})"
    )


def test_a_broken_link_in_a_folder_is_skipped_naming_its_target(tmp_path: Path) -> None:
    (tmp_path / "gone.txt").symlink_to("deleted/story.txt")
    [skipped] = iter_documents([tmp_path])
    assert skipped == Skipped(
        str(tmp_path / "gone.txt"),
        f"broken symbolic link to {tmp_path / 'deleted' / 'story.txt'} (no such file or folder)",
    )


def test_a_link_to_a_file_is_read_as_that_file(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("Mustafa met Jeffrey in Brussels.")
    (tmp_path / "alias.txt").symlink_to("real.txt")
    results = list(iter_documents([tmp_path]))
    assert [r.id for r in results] == ["alias", "real"]
    assert all(isinstance(r, Document) and "Brussels" in r.text for r in results)


@pytest.mark.parametrize("how", ["relative", "absolute"])
def test_a_loop_passed_directly_is_an_error_naming_the_loop(tmp_path: Path, how: str) -> None:
    a, _ = loop(tmp_path)
    given = a if how == "absolute" else Path(os.path.relpath(a))
    shown = os.path.normpath(given)
    other = os.path.join(os.path.dirname(shown), "b.txt")
    with pytest.raises(DocumentError) as raised:
        iter_documents([given])
    assert str(raised.value) == f"{given}: symbolic link loop ({shown} -> {other} -> {shown})"


def test_a_broken_link_passed_directly_is_an_error_naming_its_target(tmp_path: Path) -> None:
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(DocumentError) as raised:
        iter_documents([link])
    assert str(raised.value) == (
        f"{link}: broken symbolic link to {tmp_path / 'nowhere.txt'} (no such file or folder)"
    )


def test_a_missing_path_is_still_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=f"^no such file or folder: {re.escape(str(tmp_path / 'x'))}$"):
        iter_documents([tmp_path / "x"])


def test_a_folder_linking_to_its_parent_is_skipped_as_a_loop_and_the_walk_ends(tmp_path: Path) -> None:
    news = tmp_path / "news"
    (news / "2019").mkdir(parents=True)
    (news / "2019" / "brussels.txt").write_text("Mustafa met Jeffrey in Brussels.")
    (news / "2019" / "up").symlink_to("..")
    (news / "here").symlink_to(".")
    results = list(iter_documents([news]))
    assert [r.id for r in results if isinstance(r, Document)] == ["brussels"]
    assert [r for r in results if isinstance(r, Skipped)] == [
        Skipped(str(news / "2019" / "up"), f"symbolic link loop (leads back to the folder {news})"),
        Skipped(str(news / "here"), f"symbolic link loop (leads back to the folder {news})"),
    ]


def test_two_folders_linking_to_each_other_are_walked_once_each(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "first.txt").write_text("first story")
    (two / "second.txt").write_text("second story")
    (one / "to-two").symlink_to(two)
    (two / "to-one").symlink_to(one)
    results = list(iter_documents([one]))
    assert [r.id for r in results if isinstance(r, Document)] == ["first", "second"]
    [skipped] = [r for r in results if isinstance(r, Skipped)]
    assert skipped == Skipped(
        str(one / "to-two" / "to-one"), f"symbolic link loop (leads back to the folder {one})"
    )


def test_a_linked_folder_is_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "story.txt").write_text("Mustafa met Jeffrey in Brussels.")
    collection = tmp_path / "collection"
    collection.mkdir()
    (collection / "linked").symlink_to(elsewhere)
    [document] = iter_documents([collection])
    assert isinstance(document, Document) and document.source == str(collection / "linked" / "story.txt")


def test_qa_ingest_reports_the_loop_and_ingests_the_rest(tmp_path: Path, fake_encoder, monkeypatch) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    (folder / "good.txt").write_text("Mustafa met Jeffrey in Brussels.")
    a, b = loop(folder)
    (folder / "gone.txt").symlink_to("deleted.txt")
    service = open_service(tmp_path / "index", encoder=fake_encoder)
    monkeypatch.setattr("qa.service.open_service", lambda *args, **kwargs: service)
    result = CliRunner().invoke(main, ["ingest", str(folder)])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"skipped {a}: symbolic link loop ({a} -> {b} -> {a})",
        f"skipped {b}: symbolic link loop ({b} -> {a} -> {b})",
        f"skipped {folder / 'gone.txt'}: broken symbolic link to {folder / 'deleted.txt'} "
        "(no such file or folder)",
    ]
    assert result.stdout.startswith("1 added, 0 replaced, 0 unchanged, 3 failed;"), result.stdout


def test_qa_ingest_of_a_loop_names_it_before_loading_the_model(tmp_path: Path) -> None:
    a, b = loop(tmp_path)
    result = CliRunner().invoke(main, ["ingest", str(a)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {a}: symbolic link loop ({a} -> {b} -> {a})"
