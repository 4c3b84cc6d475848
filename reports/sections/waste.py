"""Where each engine's work went to waste, from its steps.

The engine ladder removes one kind of waste per rung: `naive` computes padding and the decode
steps of rows that already finished; `static` packs prompts without padding but holds freed
slots empty until the whole batch ends; `continuous` refills slots every step but reserves KV
memory for the longest possible sequence; `paged` reserves only whole blocks, so it wastes
just the partly filled last block of each request.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reports.figstyle import new_figure, trace_name
from reports.html import Html, fmt_num, fmt_pct, note, table, tag
from reports.page import Figure, Section
from reports.runs import RunView

KINDS = (  # key, title, one-line meaning
    ("padded", "padded tokens",
     "pad positions computed so that prompts of different lengths fit one rectangle "
     "(share of all tokens computed); naive padded batching"),
    ("wasted_decode", "wasted decode tokens",
     "decode tokens computed for rows that had already finished, until the longest row of the "
     "batch ends (share of all tokens computed); naive padded batching"),
    ("idle_slots", "idle slot-steps",
     "batch slots left empty behind the batch barrier while requests waited, summed over steps "
     "(share of all slot-steps, used or idle); static batching"),
    ("kv_unused", "reserved-but-unused KV",
     "KV positions set aside for running requests but holding no context yet, summed over steps "
     "in token-steps (share of reserved token-steps); continuous batching reserves the maximum "
     "length, paged batching only the partly filled last block"),
)


@dataclass
class Waste:
    tokens_computed: int
    padded: int
    wasted_decode: int
    idle_slots: int
    slot_steps: int
    kv_unused: int  # token-steps
    kv_reserved: int  # token-steps

    def share(self, kind: str) -> float | None:
        whole = {"padded": self.tokens_computed, "wasted_decode": self.tokens_computed,
                 "idle_slots": self.slot_steps, "kv_unused": self.kv_reserved}[kind]
        return getattr(self, kind) / whole if whole else None


def _sum(steps: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(steps[column], errors="coerce").fillna(0).to_numpy(dtype=np.int64)


def waste(steps: pd.DataFrame) -> Waste | None:
    """Totals over a run's steps; None when the engine recorded no steps."""
    if not len(steps):
        return None
    padded, wasted = _sum(steps, "padded_tokens").sum(), _sum(steps, "wasted_decode_tokens").sum()
    useful = _sum(steps, "prefill_tokens").sum() + _sum(steps, "decode_tokens").sum()
    idle = _sum(steps, "idle_slots").sum()
    reserved, used = _sum(steps, "kv_tokens_reserved"), _sum(steps, "kv_tokens_used")
    return Waste(
        tokens_computed=int(useful + padded + wasted),
        padded=int(padded),
        wasted_decode=int(wasted),
        idle_slots=int(idle),
        slot_steps=int(idle + _sum(steps, "num_seqs").sum()),
        kv_unused=int(np.maximum(reserved - used, 0).sum()),
        kv_reserved=int(reserved.sum()),
    )


def _explanations() -> Html:
    items = "".join(f"<dt>{title}</dt><dd>{meaning}.</dd>" for _, title, meaning in KINDS)
    return Html(f'<dl class="explain">{items}</dl>')


def section(views: list[RunView]) -> Section:
    out = Section("waste", "Waste breakdown")
    out.add(note(
        "What each engine computed or held for nothing, from its per-step counters. Each rung "
        "of the engine ladder removes one kind: naive wastes padding and finished rows' decode; "
        "static wastes idle slots behind the batch barrier; continuous wastes reserved-but-unused "
        "KV; paged only the partly filled last block. Lower is better."))
    totals = [(v, waste(v.run.steps)) for v in views]
    measured = [(v, w) for v, w in totals if w is not None]
    without = [v.name for v, w in totals if w is None]
    if measured:
        figure = new_figure("Waste, as a share of its whole", "", "share (%)")
        for v, w in measured:
            shares = [w.share(key) for key, _, _ in KINDS]
            figure.add_bar(
                x=[title for _, title, _ in KINDS], y=[None if s is None else 100 * s for s in shares],
                name=trace_name(v.name), marker_color=v.color,
                customdata=[fmt_num(getattr(w, key)) for key, _, _ in KINDS],
                hovertemplate=f"{trace_name(v.name)}<br>%{{x}}: %{{y:.3g}} % (%{{customdata}})<extra></extra>",
            )
        figure.update_layout(barmode="group")
        out.add(Figure(figure, "Padded and wasted decode tokens as a share of all tokens computed; "
                               "idle slot-steps of all slot-steps; unused KV of reserved KV token-steps."))
        headers = ["run", "tokens computed"] + [h for _, t, _ in KINDS for h in (t, "share")]
        rows = [[v.name, fmt_num(w.tokens_computed)]
                + [c for key, _, _ in KINDS for c in (fmt_num(getattr(w, key)), fmt_pct(w.share(key)))]
                for v, w in measured]
        out.add(tag("div", table(headers, rows), class_="scroll"))
        out.add(_explanations())
    if without:
        out.add(note(f"No step stats for {', '.join(without)}: an engine that cannot see its own "
                     "steps (a library peer or an HTTP server) has no waste breakdown."))
    return out
