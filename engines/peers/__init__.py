"""Engines that wrap other implementations behind the Engine interface: transformers' generate
and continuous batching, and any OpenAI-compatible HTTP server."""
