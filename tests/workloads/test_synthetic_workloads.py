from __future__ import annotations

import re

import pytest

from workloads.build import build_workload
from workloads.errors import WorkloadError

TINY = dict(vocab_size=2048, max_model_len=2048)


def lengths(wl):
    return [(len(r.prompt_ids), r.max_new_tokens) for r in wl.requests]


def test_quick_is_offline_varied_and_inside_the_tiny_model():
    wl = build_workload("quick", **TINY)
    assert wl.name == "quick" and wl.mode == "offline" and len(wl.requests) == 64
    assert [r.id for r in wl.requests[:3]] == ["r00000", "r00001", "r00002"]
    ps, os_ = zip(*lengths(wl))
    assert 16 <= min(ps) and max(ps) <= 256 and len(set(ps)) > 40
    assert 8 <= min(os_) and max(os_) <= 128 and len(set(os_)) > 40
    assert all(r.arrival_s == 0.0 and r.sampling.greedy and r.stop_token_ids == () for r in wl.requests)
    ids = [t for r in wl.requests for t in r.prompt_ids]
    assert min(ids) >= 3 and max(ids) < 2048


def test_same_spec_and_seed_same_hash_other_seed_other_hash():
    a = build_workload("quick", **TINY)
    assert a.content_hash == build_workload("quick", **TINY).content_hash
    assert a.content_hash != build_workload("quick", seed=1, **TINY).content_hash
    assert build_workload("quick:seed=1", **TINY).content_hash == build_workload("quick", seed=1, **TINY).content_hash
    assert build_workload("quick", seed=1, **TINY).spec["seed"] == 1  # the record says which seed


def test_arrivals_and_prompts_draw_from_separate_streams():
    offline = build_workload("quick", **TINY)
    poisson = build_workload("quick:arrival=poisson(8)", **TINY)
    assert [r.prompt_ids for r in offline.requests] == [r.prompt_ids for r in poisson.requests]
    assert offline.content_hash != poisson.content_hash
    other_lengths = build_workload("quick:output=uniform(1,4)", **TINY)
    assert [len(r.prompt_ids) for r in other_lengths.requests] == [len(r.prompt_ids) for r in offline.requests]


def test_open_and_closed_modes():
    wl = build_workload("synthetic:num_requests=50,arrival=poisson(10)", **TINY)
    times = [r.arrival_s for r in wl.requests]
    assert wl.mode == "open" and times[0] == 0.0 and times == sorted(times) and times[-1] > 0
    closed = build_workload("synthetic:num_requests=20,arrival=closed(4)", **TINY)
    assert closed.mode == "closed" and closed.concurrency == 4
    assert all(r.arrival_s == 0.0 for r in closed.requests)


def test_clipping_truncates_prompts_and_counts_them():
    spec = "synthetic:num_requests=400,prompt=uniform(100,300),output=fixed(100)"
    free = lengths(build_workload(spec, vocab_size=2048, max_model_len=4096))
    wl = build_workload(spec, vocab_size=2048, max_model_len=300)
    over = sum(p + o > 300 for p, o in free)
    assert 100 < over < 300  # the check below is about a real mix
    assert f"clipped {over} of 400 requests to max_model_len=300" in " ".join(wl.notes)
    for (p, o), (p2, o2) in zip(free, lengths(wl)):
        assert o2 == o == 100
        assert p2 == (p if p + o <= 300 else 200)


def test_clipping_caps_outputs_longer_than_the_context():
    wl = build_workload("synthetic:num_requests=5,prompt=fixed(50),output=fixed(500)", vocab_size=2048, max_model_len=300)
    assert lengths(wl) == [(1, 299)] * 5
    assert "5 outputs capped at 299" in wl.notes[0]


def test_drop_and_error_policies():
    spec = "synthetic:num_requests=400,prompt=uniform(100,300),output=fixed(100)"
    free = lengths(build_workload(spec, vocab_size=2048, max_model_len=4096))
    over = sum(p + o > 300 for p, o in free)
    dropped = build_workload(spec + ",fit_context=drop", vocab_size=2048, max_model_len=300)
    assert len(dropped.requests) == 400 - over
    assert lengths(dropped) == [(p, o) for p, o in free if p + o <= 300]
    assert f"dropped {over} of 400 requests longer than max_model_len=300" in dropped.notes
    with pytest.raises(WorkloadError, match=rf"{over} of 400 requests exceed max_model_len=300, first 'r\d+'"):
        build_workload(spec + ",fit_context=error", vocab_size=2048, max_model_len=300)


def test_lengths_below_one_are_raised_and_counted():
    wl = build_workload("synthetic:num_requests=500,prompt=normal(3,5),output=fixed(2)", **TINY)
    assert min(len(r.prompt_ids) for r in wl.requests) == 1
    (note,) = [n for n in wl.notes if n.startswith("raised")]
    raised = int(re.search(r"raised (\d+) prompt lengths below 1", note).group(1))
    assert 50 < raised <= sum(len(r.prompt_ids) == 1 for r in wl.requests)


def test_shared_prefix_shares_tokens_but_keeps_lengths():
    base = "synthetic:num_requests=40,prompt=uniform(32,200)"
    plain = build_workload(base, **TINY)
    wl = build_workload(base + ",prefix_fraction=0.25,prefix_tokens=64", **TINY)
    assert lengths(wl) == lengths(plain)
    heads = [r.prompt_ids[:64] for r in wl.requests if len(r.prompt_ids) > 64]
    prefix = max(set(heads), key=heads.count)
    sharing = [r for r in wl.requests if r.prompt_ids[: min(64, len(r.prompt_ids) - 1)] == prefix[: min(64, len(r.prompt_ids) - 1)]]
    assert len(sharing) == 10
    for r in sharing:  # each keeps at least its last token of its own
        m = min(64, len(r.prompt_ids) - 1)
        assert r.prompt_ids[m:] == plain.requests[int(r.id[1:])].prompt_ids[m:]
    assert "shared prefix: 10 of 40 requests" in wl.notes[0]


def test_token_ids_respect_vocab_low():
    wl = build_workload("quick:vocab_low=1000", vocab_size=1010, max_model_len=2048)
    ids = {t for r in wl.requests for t in r.prompt_ids}
    assert min(ids) == 1000 and max(ids) == 1009
    with pytest.raises(WorkloadError, match=r"\[vocab_low, vocab_size\) = \[3, 3\)"):
        build_workload("quick", vocab_size=3, max_model_len=2048)


def test_empirical_samples_whole_rows(tmp_path):
    path = tmp_path / "lengths.csv"
    rows = [(10, 500), (700, 5), (40, 40), (1500, 900)]
    path.write_text("num_prefill_tokens,num_decode_tokens,other\n" + "".join(f"{p},{o},x\n" for p, o in rows))
    wl = build_workload(f"empirical:path={path},num_requests=300", vocab_size=2048, max_model_len=4096)
    got = lengths(wl)
    assert set(got) == set(rows)  # joint: every pair is a row of the file, and all rows appear
    dropped = build_workload(f"empirical:path={path},num_requests=300,fit_context=drop", vocab_size=2048, max_model_len=1000)
    assert set(lengths(dropped)) == {(10, 500), (700, 5), (40, 40)}
    assert "sampled from the 3 of 4 rows of lengths.csv that fit max_model_len=1000" in dropped.notes[0]


def test_empirical_with_named_columns_and_jsonl(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_text('{"in": 5, "out": 6}\n\n{"in": 7, "out": 0}\n')
    wl = build_workload(
        {"source": "empirical", "path": str(path), "prompt_column": "in", "output_column": "out", "num_requests": 50},
        **TINY,
    )
    assert set(lengths(wl)) == {(5, 6), (7, 1)}
    assert "raised 1 zero lengths in l.jsonl to 1 token" in wl.notes
