"""Fitting requests into the model's context: prompt + output <= max_model_len.

A deliberate distortion of the workload, so it is one explicit policy, counted in the notes:

  clip   (default) output capped at max_model_len - 1, then the prompt truncated from the end
         to make room for the output. Truncating the prompt, not the output, keeps each
         request's decode work, which is where batching strategies differ; with hash-id
         prompts (Mooncake) it keeps the leading blocks, so prefix sharing survives.
  drop   requests that do not fit are left out.
  error  a request that does not fit is an error.
"""

from __future__ import annotations

from dataclasses import replace

from workloads.draft import Draft
from workloads.errors import WorkloadError

POLICIES = ("clip", "drop", "error")


def fits(prompt_len: int, output_len: int, max_model_len: int) -> bool:
    return prompt_len + output_len <= max_model_len


def fit_to_context(draft: Draft, max_model_len: int, policy: str) -> Draft:
    if max_model_len < 2:
        raise WorkloadError(f"max_model_len={max_model_len}: a request needs at least 2 tokens")
    over = [r for r in draft.requests if not fits(r.prompt_len, r.output_len, max_model_len)]
    if not over:
        return draft
    n = len(draft.requests)
    if policy == "error":
        r = over[0]
        raise WorkloadError(
            f"{len(over)} of {n} requests exceed max_model_len={max_model_len}, first {r.id!r}: "
            f"prompt {r.prompt_len} + output {r.output_len} = {r.prompt_len + r.output_len} "
            "tokens (fit_context='error'; use 'clip' or 'drop')"
        )
    if policy == "drop":
        kept = [r for r in draft.requests if fits(r.prompt_len, r.output_len, max_model_len)]
        if not kept:
            raise WorkloadError(
                f"all {n} requests exceed max_model_len={max_model_len}: none left after "
                "fit_context='drop'"
            )
        note = f"dropped {len(over)} of {n} requests longer than max_model_len={max_model_len}"
        return replace(draft, requests=kept, notes=draft.notes + [note])
    if policy != "clip":
        raise WorkloadError(f"fit_context: expected one of {POLICIES}, got {policy!r}")
    clipped, outputs_capped = [], 0
    for r in draft.requests:
        if fits(r.prompt_len, r.output_len, max_model_len):
            clipped.append(r)
            continue
        output_len = min(r.output_len, max_model_len - 1)
        outputs_capped += output_len < r.output_len
        clipped.append(replace(r, output_len=output_len, prompt_len=min(r.prompt_len, max_model_len - output_len)))
    note = (
        f"clipped {len(over)} of {n} requests to max_model_len={max_model_len} "
        "(prompts truncated to make room for their output"
        + (f"; {outputs_capped} outputs capped at {max_model_len - 1})" if outputs_capped else ")")
    )
    return replace(draft, requests=clipped, notes=draft.notes + [note])
