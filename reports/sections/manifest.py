"""Provenance of each run (manifest.json): what ran, where, on which code, with what options.
Collapsed by default; the whole manifest is one more click away."""

from __future__ import annotations

import json

from reports.html import Html, fmt_bytes, fmt_num, note, table, tag
from reports.page import Section
from reports.runs import RunView


def _get(data: dict, *keys):
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def facts(manifest: dict) -> list[tuple[str, str]]:
    """The lines a reader checks first when two runs disagree."""

    def get(*keys) -> str:
        return _text(_get(manifest, *keys))

    model = "none (model-free engine)"
    if manifest.get("model"):
        parameters = fmt_num(_get(manifest, "model", "parameters"))
        model = f"{get('model', 'name')} · {get('model', 'dtype')} · {get('model', 'device')} · {parameters} parameters"
    gpu = "none"
    if _get(manifest, "machine", "gpu"):
        gpu = (f"{get('machine', 'gpu')} × {get('machine', 'gpu_count')}, driver {get('machine', 'driver')}, "
               f"CUDA {get('machine', 'cuda')}")
    dirty = " (uncommitted changes)" if _get(manifest, "harness", "git_dirty") else ""
    return [
        ("engine", f"{get('engine', 'name')} ({get('engine', 'kind')})"),
        ("engine options", get("engine", "options")),
        ("model", model),
        ("workload", f"{get('workload', 'name')} ({get('workload', 'mode')}), "
                     f"content hash {get('workload', 'content_hash')}"),
        ("workload notes", get("workload", "notes")),
        ("sweep", get("sweep")),
        ("run", f"started {get('run', 'started_at')}, {get('run', 'status')}, seed {get('run', 'seed')}, "
                f"warm-up {get('run', 'warmup_s')} s"),
        ("harness", f"{get('harness', 'version')} at {get('harness', 'git_commit')}{dirty}"),
        ("machine", f"{get('machine', 'hostname')}: {get('machine', 'cpu')} × {get('machine', 'cpu_count')}, "
                    f"{fmt_bytes(_get(manifest, 'machine', 'memory_bytes'))}, {get('machine', 'platform')}"),
        ("GPU", gpu),
        ("versions", f"python {get('machine', 'python')}, torch {get('machine', 'torch')}, "
                     f"transformers {get('machine', 'transformers')}"),
        ("device sampler", f"{get('device_sampler', 'source')} every {get('device_sampler', 'interval_s')} s"),
    ]


def _details(view: RunView) -> Html:
    dirty = _get(view.manifest, "harness", "git_dirty")
    summary = f"{view.name} — {view.run.path.name}" + (" — uncommitted changes" if dirty else "")
    whole = tag("details", Html(tag("summary", "the whole manifest.json") +
                                tag("pre", json.dumps(view.manifest, indent=2, sort_keys=True, default=str))))
    body = Html(tag("summary", summary) + table(["field", "value"], facts(view.manifest), class_="data kv") + whole)
    return tag("details", body)


def section(views: list[RunView]) -> Section:
    out = Section("manifests", "Run manifests")
    out.add(note("Where and how each run was made. Results from different machines, commits "
                 "or options are not directly comparable: check here first."))
    for view in views:
        out.add(_details(view))
    return out

