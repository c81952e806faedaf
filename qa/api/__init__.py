"""The HTTP service: a JSON API for chatbots and a small web form, both thin shells over `SearchService`."""

from qa.api.app import create_app
from qa.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]
