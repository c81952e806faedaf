"""Objects that handlers receive by name; they live on `app.state`, loaded once at start-up."""

from __future__ import annotations

from litestar.datastructures import State

from qa.api.settings import ApiSettings
from qa.search import SearchService


def provide_service(state: State) -> SearchService:
    return state.service


def provide_settings(state: State) -> ApiSettings:
    return state.settings
