"""`/health`: answers once the model and the index are loaded (start-up finishes before serving)."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from qa.api.schemas import Health
from qa.api.settings import ApiSettings
from qa.search import SearchService


@get(
    "/health",
    summary="Service status",
    description="Model, document and passage counts of the index being served.",
    operation_id="health",
    tags=["service"],
    sync_to_thread=True,
)
def health(service: NamedDependency[SearchService], settings: NamedDependency[ApiSettings]) -> Health:
    with service.index.view() as view:
        documents, passages, version = view.count_documents(), view.count_passages(), view.version
    return Health(
        status="ok",
        model=service.encoder.name,
        dimension=service.encoder.dimension,
        documents=documents,
        passages=passages,
        version=version,
        writes_enabled=settings.api_token is not None,
    )
