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
