"""The two benchmark corpora: the seed articles, and every evaluation-set paragraph as a document.

The larger corpus is the distinct paragraphs of XQuAD (Arabic and English), the ARCD test split
and the Arabic TyDi QA GoldP dev split (~1,550 documents), read from the shared evaluation data
by path. Each question's gold document is the paragraph it was written for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from qa import settings
from qa.documents import Document, iter_documents
from qa.errors import QAError

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_DIR = REPO_ROOT / "seeds"
SEED_QUESTIONS = REPO_ROOT / "tests" / "data" / "seed_questions.jsonl"
# (name, path under the evaluation data, language of its questions)
EVAL_FILES = (
    ("xquad-ar", "xquad/xquad.ar.json", "ar"),
    ("xquad-en", "xquad/xquad.en.json", "en"),
    ("arcd", "arcd/arcd-test.json", "ar"),
    ("tydi", "tydiqa-goldp-ar/arabic_tydiqa_dev.json", "ar"),
)


class BenchDataError(QAError):
    """Benchmark data is missing or unreadable."""


def default_eval_dir() -> Path:
    """$QA_EVAL_DATA, else the shared evaluation data beside the repository."""
    return settings.EVAL_DATA.get()


@dataclass(frozen=True)
class Question:
    text: str
    gold: str  # id of the document that answers it
    lang: str


@dataclass(frozen=True)
class Corpus:
    name: str
    documents: tuple[Document, ...]
    questions: tuple[Question, ...]

    @property
    def fingerprint(self) -> str:
        """Identifies the documents' content, for caching indexes built from them."""
        digest = hashlib.sha256()
        for document in self.documents:
            digest.update(f"{document.id}\0{document.content_hash}\0".encode())
        return digest.hexdigest()[:16]

    def sample_questions(self, count: int) -> list[Question]:
        """`count` questions spread evenly over the corpus (every set, every language)."""
        if count >= len(self.questions):
            return list(self.questions)
        step = len(self.questions) / count
        return [self.questions[int(i * step)] for i in range(count)]

    def sample_documents(self, count: int) -> list[Document]:
        if count >= len(self.documents):
            return list(self.documents)
        step = len(self.documents) / count
        return [self.documents[int(i * step)] for i in range(count)]


def seed_corpus() -> Corpus:
    """The seed articles with the hand-written English and Arabic questions about them."""
    if not SEED_QUESTIONS.is_file():
        raise BenchDataError(f"seed questions {SEED_QUESTIONS} not found")
    documents = tuple(d for d in iter_documents([SEED_DIR]) if isinstance(d, Document))
    questions = []
    for line in SEED_QUESTIONS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            questions.append(Question(record["question"], record["document"], record.get("lang", "")))
    return Corpus("seeds", documents, tuple(questions))


def eval_corpus(data_dir: Path | None = None) -> Corpus:
    data_dir = Path(data_dir or default_eval_dir())
    ids: dict[str, str] = {}
    documents: list[Document] = []
    questions: list[Question] = []
    for name, relative, lang in EVAL_FILES:
        path = data_dir / relative
        try:
            articles = json.loads(path.read_text(encoding="utf-8"))["data"]
        except (OSError, ValueError, KeyError) as exc:
            raise BenchDataError(
                f"cannot read {path} ({exc}). Point --data (or QA_EVAL_DATA) at the folder holding "
                "xquad/, arcd/ and tydiqa-goldp-ar/"
            ) from exc
        for article in articles:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                if context not in ids:
                    ids[context] = f"{name}-{len(documents):04d}"
                    title = str(article.get("title") or ids[context])
                    documents.append(Document(ids[context], title, context, str(path)))
                for qa in paragraph["qas"]:
                    questions.append(Question(qa["question"].strip(), ids[context], lang))
    return Corpus("evaldata", tuple(documents), tuple(questions))
