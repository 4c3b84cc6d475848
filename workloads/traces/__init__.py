"""Trace loaders: real request traces (arrival times and lengths) replayed as Drafts."""
