"""The harness: CLI, runner, metrics, samplers, result files, comparisons, serve and load."""

__version__ = "0.1.0"
