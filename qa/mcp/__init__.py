"""The Model Context Protocol surface: chatbot hosts call the search service as tools, over stdio
(`qa mcp`) or streamable HTTP (`/mcp` of `qa serve`). A thin shell like the HTTP API: every tool
calls `SearchService` or the ingest path, and ranks nothing itself."""

from qa.mcp.server import build_server

__all__ = ["build_server"]
