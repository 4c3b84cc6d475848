"""Workloads: synthetic generators, trace loaders and named presets -> list[Request]."""
