"""One error root: the model's errors are `QAError`s too, so every surface that shows a domain
error as a clean message (CLI line, HTTP 503 body, MCP error result) shows a model error the same
way, without catching it separately."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anyio
import numpy as np
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from mcp.client import Client

from embeddings.errors import ModelError
from qa.api import create_app
from qa.cli import main
from qa.errors import QAError
from qa.index import open_index
from qa.mcp import build_server
from qa.search import SearchService
from qa.service import model_identity
from tests.fakes import FakeEncoder

BROKEN = "the model file model.onnx is truncated or corrupt: rebuild it with qa model build --force"


class BrokenEncoder(FakeEncoder):
    """Fails on every question as a model whose file went bad would."""

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        raise ModelError(BROKEN)


@pytest.fixture
def broken_model_service(tmp_path: Path) -> SearchService:
    encoder = BrokenEncoder()
    return SearchService(open_index(tmp_path / "index", model_identity(encoder)), encoder)


def test_a_model_error_is_a_qa_error() -> None:
    assert issubclass(ModelError, QAError)


def test_a_model_error_is_a_503_with_its_message_over_http(broken_model_service: SearchService) -> None:
    with TestClient(create_app(broken_model_service)) as client:
        answered = client.post("/api/ask", json={"question": "who met Jeffrey in Brussels"})
    assert (answered.status_code, answered.json()["detail"]) == (503, BROKEN)


def test_a_model_error_is_an_error_result_with_its_message_over_mcp(
    broken_model_service: SearchService,
) -> None:
    async def ask():
        async with Client(build_server(lambda: broken_model_service, writes=False)) as session:
            return await session.call_tool("ask", {"question": "who met Jeffrey in Brussels"})

    result = anyio.run(ask)
    assert result.is_error and [block.text for block in result.content] == [BROKEN]


def test_a_model_error_is_one_line_on_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QA_ENGINE", "gpu")
    result = CliRunner().invoke(main, ["model", "info"])
    assert result.exit_code == 1
    assert result.stderr == "Error: QA_ENGINE must be one of auto, onnx, torch, not 'gpu'\n"
