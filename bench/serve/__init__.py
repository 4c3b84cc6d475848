"""`bench serve`: any engine behind an OpenAI-compatible streaming HTTP API."""

from bench.serve.app import ServeOptions, build_app
from bench.serve.server import BackgroundServer, serve, start_server

__all__ = ["BackgroundServer", "ServeOptions", "build_app", "serve", "start_server"]
