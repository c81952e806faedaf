"""The paired encoder: one inner product adds both models' cosines; Arabic questions skip the second."""

from __future__ import annotations

import pytest

from embeddings.paired import PairedEncoder
from tests.fakes import FakeEncoder


class CountingEncoder(FakeEncoder):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.queries: list[str] = []

    def encode_queries(self, texts):
        self.queries.extend(texts)
        return super().encode_queries(texts)


@pytest.fixture
def pair() -> PairedEncoder:
    first = FakeEncoder(dimension=16, fingerprint="one")
    second = CountingEncoder(dimension=8, fingerprint="two")
    return PairedEncoder(first, second, cross_lingual_weight=0.5)


def test_identity_covers_both_models(pair):
    assert pair.dimension == 24 and pair.name == "fake+fake"
    other = PairedEncoder(FakeEncoder(16, "one"), FakeEncoder(8, "three"))
    assert pair.fingerprint != other.fingerprint


def test_inner_product_is_the_weighted_sum_of_cosines(pair):
    doc = "Mustafa met Jeffrey in Brussels"
    question = "who met Jeffrey"
    score = float(pair.encode_queries([question])[0] @ pair.encode_documents([doc])[0])
    cos_first = float(pair.primary.encode_query(question) @ pair.primary.encode_query(doc))
    cos_second = float(pair.secondary.encode_query(question) @ pair.secondary.encode_query(doc))
    assert score == pytest.approx(cos_first + 0.5 * cos_second, abs=1e-6)


def test_an_arabic_question_scores_exactly_as_with_the_primary_model_alone(pair):
    doc, question = "التقى مصطفى جيفري في بروكسل", "من التقى جيفري"
    score = float(pair.encode_queries([question])[0] @ pair.encode_documents([doc])[0])
    assert score == pytest.approx(float(pair.primary.encode_query(question) @ pair.primary.encode_query(doc)))


def test_arabic_questions_do_not_run_the_second_model(pair):
    vectors = pair.encode_queries(["من التقى جيفري", "who met Jeffrey"])
    assert pair.secondary.queries == ["who met Jeffrey"]
    assert not vectors[0, 16:].any() and vectors[1, 16:].any()
