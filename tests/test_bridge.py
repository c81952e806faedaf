"""The lexical bridge from Latin-script names to the Arabic terms of the index (`qa.bridge`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qa.bridge import Bridge
from qa.documents import iter_documents
from qa.ingest import ingest_documents
from qa.lexical import index_terms, written_words
from qa.search import SearchService, SearchSettings
from qa.service import open_service
from tests.helpers import REPO, SEEDS


@pytest.mark.parametrize(
    ("english", "arabic"),
    [
        ("Jeffrey", "جيفري"),
        ("Rayburn", "ريبورن"),
        ("Pedersen", "بيدرسن"),
        ("London", "لندن"),
        ("Mutasim", "المعتصم"),
        ("Mustafa", "مصطفى"),
        ("Idlib", "إدلب"),
        ("Geneva", "جنيف"),
        ("Erdogan", "أردوغان"),
    ],
)
def test_a_name_and_its_arabic_spelling_fold_to_one_skeleton(english, arabic):
    # Found among the words as written; returned as the lexical index stores them (stemmed).
    assert Bridge(written_words(arabic)).terms_for(f"Who is {english}?") == index_terms(arabic)


@pytest.mark.parametrize(
    ("english", "arabic"),
    [("Outzen", "أوتزن"), ("Numan", "النعمان"), ("Maarat", "معرات")],
)
def test_names_the_stemmer_cuts_short_are_found_as_written(english, arabic):
    assert len(index_terms(arabic)[0]) <= 4  # the stem no longer sounds like the name ...
    assert Bridge(index_terms(arabic), stemmed=True).terms_for(f"Who is {english}?") == []
    # ... the word as written does.
    assert Bridge(written_words(arabic)).terms_for(f"Who is {english}?") == index_terms(arabic)


def test_a_name_behind_a_conjunction_or_preposition_is_found_and_no_letter_is_left_out():
    bridge = Bridge(written_words("وبيدرسن ولجيفري"))
    assert bridge.terms_for("Did Pedersen meet Jeffrey?") == index_terms("وبيدرسن ولجيفري")
    # A word as written has every letter of the name: بيدرس (he teaches) is not Pedersen, though
    # a stem may be Pedersen with its last letter cut.
    assert Bridge(written_words("بيدرس")).terms_for("Who is Pedersen?") == []
    assert Bridge(["بيدرس"], stemmed=True).terms_for("Who is Pedersen?") == ["بيدرس"]


def test_a_bridge_over_stemmed_terms_returns_them_as_they_are():
    (term,) = index_terms("جيفري")
    assert Bridge([term], stemmed=True).terms_for("Who is Jeffrey?") == [term]


def test_words_added_later_are_found():
    bridge = Bridge(written_words("جيفري"))
    assert bridge.terms_for("Who is Pedersen?") == []
    bridge.add(written_words("بيدرسن"))
    assert bridge.terms_for("Who is Pedersen?") == index_terms("بيدرسن")


def test_the_bridge_finds_the_index_terms_of_the_names_and_numbers_of_a_question():
    text = "التقى عبد الرحمن مصطفى المبعوث جيمس جيفري في بروكسل وبحثا القرار 2254 مع بيدرسن"
    bridge = Bridge(written_words(text))
    found = bridge.terms_for("Did Mustafa meet Jeffrey and Pedersen about resolution 2254?")
    assert {*index_terms("مصطفى جيفري بيدرسن"), "2254"} <= set(found)
    # Lower-case words of a capitalized question are left out ("meet" would find مت by chance).
    assert bridge.terms_for("What did they discuss about the meeting?") == []
    # A question typed all in lower case sounds out every word.
    assert set(index_terms("جيفري")) <= set(bridge.terms_for("who met jeffrey"))


def test_an_arabic_question_finds_the_latin_terms_of_english_passages():
    bridge = Bridge(written_words("Mustafa met the envoy Jeffrey in London to discuss resolution 2254"))
    found = bridge.terms_for("ماذا بحث مصطفى مع جيفري في لندن حول القرار 2254؟")
    assert {"mustafa", "jeffrey", "london", "2254"} <= set(found)


def test_short_skeletons_find_nothing():
    bridge = Bridge(written_words("الأسد رأس رئيس"))
    assert bridge.terms_for("Where is Assad?") == []  # SD: too short to tell from other words


def test_an_english_question_over_arabic_passages_uses_the_bridge(tmp_path: Path, fake_encoder):
    service = open_service(tmp_path / "index", encoder=fake_encoder)
    ingest_documents(service.index, fake_encoder, list(iter_documents([SEEDS])))
    question = "What did Pedersen say about the Syrian file?"
    without = SearchService(service.index, fake_encoder, SearchSettings(bridge_weight=0))

    def first_rank(searcher: SearchService) -> int:
        hits = searcher.ask(question, k=50, raw=True).passages
        return next(hit.rank for hit in hits if "بيدرسن" in hit.text)

    # The fake encoder knows nothing of Arabic: only the bridge can lift the passages naming him.
    assert first_rank(service) < first_rank(without)


# Another process adding one document, embedded with the fake encoder like the service's.
WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from qa.documents import Document
    from qa.index import open_index
    from qa.ingest import ingest_documents
    from qa.service import model_identity
    from tests.fakes import FakeEncoder

    encoder = FakeEncoder()
    with open_index(Path(sys.argv[1]), model_identity(encoder)) as index:
        ingest_documents(index, encoder, [Document(sys.argv[2], sys.argv[2], sys.argv[3], "t")])
    """
)


def test_names_another_process_writes_reach_the_bridge_of_a_running_service(tmp_path: Path, fake_encoder):
    service = open_service(tmp_path / "index", encoder=fake_encoder)
    ingest_documents(service.index, fake_encoder, list(iter_documents([SEEDS])))
    question = "What did Halvorsen say about the fishing quotas?"
    service.ask(question)  # the bridge is built before the notes exist
    for document_id, envoy in (("lindqvist", "ليندكفيست"), ("halvorsen", "هالفورسن")):
        text = f"قال المبعوث {envoy} إن حصص صيد الأسماك في بحر الشمال ستخفض العام المقبل."
        command = [sys.executable, "-c", WRITER, str(tmp_path / "index"), document_id, text]
        subprocess.run(command, check=True, env={"PYTHONPATH": str(REPO)}, timeout=120)
    ranked = [hit.document.id for hit in service.ask(question, k=50, raw=True).passages]
    # Alike but for the name, which only the bridge reads (the fake encoder knows no Arabic).
    assert ranked.index("halvorsen") < ranked.index("lindqvist")
