"""Questions keep being answered, consistently, while other clients add and remove documents.

A real uvicorn server runs in a thread, so requests really overlap: handlers run in the
server's worker threads, readers and writers come from their own threads over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from qa.api import ApiSettings, create_app
from qa.search import SearchService
from tests.helpers import AUTH, TOKEN, serve_in_thread

QUESTION = "جيمس جيفري في بروكسل"
CHURN_QUESTION = "quokka marmalade festival"
# Long enough to be split into several passages, so that "half a document" could be observed.
CHURN_TEXT = "\n".join(
    f"The quokka marmalade festival held its {i}th tasting in a quiet harbour town." for i in range(60)
)
WRITERS, CYCLES, READERS = 2, 12, 4


@pytest.fixture
def server(service: SearchService) -> Iterator[str]:
    with serve_in_thread(create_app(service, settings=ApiSettings(api_token=TOKEN))) as url:
        yield url


def add(client: httpx.Client, doc_id: str, text: str) -> httpx.Response:
    return client.post("/api/documents", json={"id": doc_id, "text": text}, headers=AUTH)


def passage_of(hit: dict) -> tuple[str, int, int]:
    """Which passage a hit is. Its score may move as other documents come and go (scores are
    normalized over the candidates), but the best passage must not."""
    return hit["document"]["id"], hit["start"], hit["end"]


def ask(client: httpx.Client, question: str, k: int) -> list[dict]:
    response = client.get("/api/ask", params={"q": question, "k": k})
    response.raise_for_status()
    return response.json()["passages"]


class Threads:
    """Runs targets in threads; `join` re-raises the first exception one of them raised."""

    def __init__(self, targets: list[Callable[[], None]]) -> None:
        self.raised: list[BaseException] = []
        self.threads = [threading.Thread(target=self._run, args=(target,)) for target in targets]
        for thread in self.threads:
            thread.start()

    def _run(self, target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as exc:
            self.raised.append(exc)

    def join(self) -> None:
        for thread in self.threads:
            thread.join()
        if self.raised:
            raise self.raised[0]


def test_questions_are_answered_consistently_while_documents_change(server: str) -> None:
    texts: dict[str, str] = {}  # document id -> its full text, for checking every hit
    with httpx.Client(base_url=server, timeout=60) as client:
        for document in client.get("/api/documents", params={"limit": 500}).json()["documents"]:
            texts[document["id"]] = client.get(f"/api/documents/{document['id']}").json()["text"]
        seed_health = client.get("/health").json()
        expected_top = passage_of(ask(client, QUESTION, 3)[0])
        # With up to one churn document per writer present, the best answer is still the same
        # passage (the fake encoder is deterministic), so readers may demand exactly that one.
        for probe in range(WRITERS):
            churn_passages = add(client, f"probe-{probe}", CHURN_TEXT).json()["document"]["passages"]
            assert passage_of(ask(client, QUESTION, 3)[0]) == expected_top
        assert churn_passages > 1
        for probe in range(WRITERS):
            client.delete(f"/api/documents/probe-{probe}", headers=AUTH).raise_for_status()

    writing = threading.Event()
    writing.set()
    errors: list[str] = []
    rounds: list[int] = []  # one entry per reader round completed while the writers ran

    def check_hits(hits: list[dict]) -> None:
        """Every hit is a real slice of a whole document: never a passage of a half-written one."""
        for hit in hits:
            doc_id = hit["document"]["id"]
            text = CHURN_TEXT if doc_id.startswith("churn-") else texts.get(doc_id)
            if text is None or text[hit["start"] : hit["end"]] != hit["text"]:
                errors.append(f"hit of {doc_id} does not match its document at {hit['start']}:{hit['end']}")
            elif text[hit["answer"]["start"] : hit["answer"]["end"]] != hit["answer"]["text"]:
                errors.append(f"answer of {doc_id} does not match its document")

    def writer(number: int) -> None:
        with httpx.Client(base_url=server, timeout=60) as client:
            for cycle in range(CYCLES):
                doc_id = f"churn-{number}-{cycle}"
                added = add(client, doc_id, CHURN_TEXT)
                if added.status_code != 201:
                    errors.append(f"add {doc_id}: {added.status_code} {added.text}")
                removed = client.delete(f"/api/documents/{doc_id}", headers=AUTH)
                if removed.status_code != 204:
                    errors.append(f"delete {doc_id}: {removed.status_code} {removed.text}")

    def reader() -> None:
        with httpx.Client(base_url=server, timeout=60) as client:
            while writing.is_set():
                response = client.post("/api/ask", json={"question": QUESTION, "k": 3})
                churn = client.get("/api/ask", params={"q": CHURN_QUESTION, "k": 10})
                health = client.get("/health")
                failed = [r for r in (response, churn, health) if r.status_code != 200]
                if failed:
                    errors.extend(f"{r.request.url}: {r.status_code} {r.text}" for r in failed)
                    continue
                hits = response.json()["passages"]
                check_hits(hits)
                if [h["rank"] for h in hits] != [1, 2, 3] or passage_of(hits[0]) != expected_top:
                    errors.append(f"the best answer changed: {hits[0]['document']['id']}")
                check_hits(churn.json()["passages"])
                counts = health.json()
                extra_documents = counts["documents"] - seed_health["documents"]
                # Both counts come from one snapshot: each churn document is there whole or not at all.
                if counts["passages"] - seed_health["passages"] != extra_documents * churn_passages:
                    errors.append(f"half-written index seen: {counts}")
                rounds.append(1)

    readers = Threads([reader] * READERS)
    try:
        Threads([lambda n=n: writer(n) for n in range(WRITERS)]).join()
    finally:
        writing.clear()
        readers.join()

    assert errors == []
    assert len(rounds) >= READERS  # questions were answered while the writers ran
    with httpx.Client(base_url=server, timeout=60) as client:
        assert client.get("/health").json()["documents"] == seed_health["documents"]
        assert passage_of(ask(client, QUESTION, 3)[0]) == expected_top


def test_a_document_being_replaced_is_read_whole(server: str) -> None:
    """Reads during replacements see one version or the other, never a mix of the two."""
    # Versions of different lengths: offsets of one version applied to the other's text would
    # cut sentences in the wrong places.
    versions = (CHURN_TEXT, CHURN_TEXT.replace("quokka", "wombat-bear"))
    lines = {line for version in versions for line in version.split("\n")}
    errors: list[str] = []
    done = threading.Event()
    with httpx.Client(base_url=server, timeout=60) as client:
        add(client, "flip", versions[0]).raise_for_status()

    def replacer() -> None:
        try:
            with httpx.Client(base_url=server, timeout=60) as client:
                for cycle in range(CYCLES * 2):
                    response = add(client, "flip", versions[(cycle + 1) % 2])
                    if response.status_code != 200 or response.json()["status"] != "replaced":
                        errors.append(f"replace: {response.status_code} {response.text}")
        finally:
            done.set()

    def reader() -> None:
        with httpx.Client(base_url=server, timeout=60) as client:
            while not done.is_set():
                document = client.get("/api/documents/flip")
                if document.status_code != 200 or document.json()["text"] not in versions:
                    errors.append(f"read: {document.status_code} {document.text[:200]}")
                for hit in ask(client, "wombat quokka marmalade", 5):
                    if hit["document"]["id"] != "flip":
                        continue  # seed passages may fill the list too; only "flip" changes
                    whole_lines = set(hit["text"].split("\n")) <= lines
                    if hit["answer"]["text"].strip() not in lines or not whole_lines:
                        errors.append(f"a passage cut across versions: {hit['text'][:80]!r}")

    Threads([replacer, reader, reader]).join()
    assert errors == []
