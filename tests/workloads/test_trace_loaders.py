from __future__ import annotations

import json

import pytest

from workloads.build import build_workload

BIG = dict(vocab_size=2048, max_model_len=100_000)

AZURE = """TIMESTAMP,ContextTokens,GeneratedTokens
2023-11-16 18:17:03.9799600,100,10
2023-11-16 18:17:04.0319600,200,8
2023-11-16 18:17:05.0000001,300,27
2023-11-16 18:18:03.5000000,50,5
2023-11-16 18:18:03.5000000,60,6
"""


@pytest.fixture
def azure(tmp_path):
    path = tmp_path / "azure.csv"
    path.write_text(AZURE)
    return path


def lengths(wl):
    return [(len(r.prompt_ids), r.max_new_tokens) for r in wl.requests]


def times(wl):
    return [r.arrival_s for r in wl.requests]


def test_azure_seven_digit_timestamps_become_seconds_from_the_first(azure):
    wl = build_workload(f"azure-trace:path={azure}", **BIG)
    assert wl.mode == "open" and wl.notes == []
    assert [r.id for r in wl.requests] == ["line2", "line3", "line4", "line5", "line6"]
    assert times(wl) == pytest.approx([0.0, 0.052, 1.0200401, 59.52004, 59.52004], abs=1e-9)
    assert lengths(wl) == [(100, 10), (200, 8), (300, 27), (50, 5), (60, 6)]


def test_limit_window_and_speedup(azure):
    wl = build_workload(f"azure-trace:path={azure},limit=2", **BIG)
    assert [r.id for r in wl.requests] == ["line2", "line3"]
    assert "kept the first 2 rows of the trace (limit=2); later rows not read" in wl.notes
    # window [0.5, 60) s after the first request: the 1.02 s and 59.52 s rows, moved to start at 0
    wl = build_workload(f"azure-trace:path={azure},start_s=0.5,end_s=60", **BIG)
    assert [r.id for r in wl.requests] == ["line4", "line5", "line6"]
    assert times(wl) == pytest.approx([0.0, 58.4999999, 58.4999999], abs=1e-9)
    assert any("skipped 2 rows before it" in n for n in wl.notes)
    assert any(n.startswith("arrivals shifted by -1.02004 s") for n in wl.notes)
    wl = build_workload(f"azure-trace:path={azure},end_s=59", **BIG)
    assert [r.id for r in wl.requests] == ["line2", "line3", "line4"]
    fast = build_workload(f"azure-trace:path={azure},speedup=4", **BIG)
    assert times(fast) == pytest.approx([t / 4 for t in times(build_workload(f"azure-trace:path={azure}", **BIG))])
    assert any("sped up 4x" in n and "59.52 s in the trace -> 14.88 s" in n for n in fast.notes)
    slow = build_workload(f"azure-trace:path={azure},speedup=0.5", **BIG)
    assert times(slow)[-1] == pytest.approx(2 * 59.52004)


def test_trace_as_offline_or_under_another_arrival_process(azure):
    wl = build_workload(f"azure-trace:path={azure},arrival=offline", **BIG)
    assert wl.mode == "offline" and set(times(wl)) == {0.0}
    assert "trace timestamps replaced by arrival=offline" in wl.notes
    wl = build_workload(f"azure-trace:path={azure},arrival=closed(2)", **BIG)
    assert wl.mode == "closed" and wl.concurrency == 2


def test_length_scaling_and_clipping(azure):
    wl = build_workload(f"azure-trace:path={azure},prompt_scale=0.25,output_scale=2", **BIG)
    assert lengths(wl) == [(25, 20), (50, 16), (75, 54), (13, 10), (15, 12)]  # rounded up
    assert "prompt lengths scaled by 0.25 (rounded up)" in wl.notes
    wl = build_workload(f"azure-trace:path={azure}", vocab_size=2048, max_model_len=128)
    assert lengths(wl) == [(100, 10), (120, 8), (101, 27), (50, 5), (60, 6)]
    assert "clipped 2 of 5 requests to max_model_len=128" in wl.notes[0]


BURST = """Session ID,Timestamp,Elapsed time,Response tokens,Model,Request tokens,Log Type,Total tokens
s1,100,1.0,18,ChatGPT,472,Conversation log,490
s2,100,2.0,0,GPT-4,0,Conversation log,0
s3,130,3.0,230,ChatGPT,1087,Conversation log,1317
s4,131,3.0,0,ChatGPT,0,API log,0
s5,150,3.0,7,ChatGPT,0,API log,7
"""


def test_burstgpt_reads_columns_by_name_and_drops_failed_rows(tmp_path):
    path = tmp_path / "burst.csv"
    path.write_text(BURST)
    wl = build_workload(f"burstgpt-trace:path={path}", **BIG)
    assert [r.id for r in wl.requests] == ["line2", "line4", "line6"]
    assert lengths(wl) == [(472, 18), (1087, 230), (1, 7)]
    assert times(wl) == [0.0, 30.0, 50.0]
    assert wl.notes[0] == (
        "dropped 2 rows (0 request and 0 response tokens: failed requests), first at line 3"
    )
    assert "raised 1 zero prompt or output lengths to 1 token" in wl.notes
    # limit counts requests, not the failed rows in between
    assert len(build_workload(f"burstgpt-trace:path={path},limit=2", **BIG).requests) == 2


def mooncake_file(tmp_path, rows):
    path = tmp_path / "mooncake.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


MOONCAKE = [
    {"timestamp": 0, "input_length": 1100, "output_length": 5, "hash_ids": [0, 1, 2]},
    {"timestamp": 250, "input_length": 1500, "output_length": 7, "hash_ids": [0, 1, 3]},
    {"timestamp": 1250, "input_length": 300, "output_length": 9, "hash_ids": [0]},
    {"timestamp": 2000, "input_length": 600, "output_length": 9, "hash_ids": [4, 1]},
]


def test_mooncake_equal_hash_ids_give_equal_token_blocks(tmp_path):
    path = mooncake_file(tmp_path, MOONCAKE)
    wl = build_workload(f"mooncake-trace:path={path}", **BIG)
    a, b, c, d = (r.prompt_ids for r in wl.requests)
    assert [len(p) for p in (a, b, c, d)] == [1100, 1500, 300, 600]  # last blocks partial
    assert a[:1024] == b[:1024] and a[1024:] != b[1024:1100]
    assert c == a[:300]
    assert d[:512] != a[:512] and d[512:600] == a[512:600]  # block 1 is block 1 wherever it sits
    assert times(wl) == [0.0, 0.25, 1.25, 2.0]
    other_seed = build_workload(f"mooncake-trace:path={path},seed=1", **BIG)
    assert other_seed.requests[0].prompt_ids[:512] != a[:512]


def test_mooncake_prompt_scale_shrinks_blocks_and_keeps_sharing(tmp_path):
    path = mooncake_file(tmp_path, MOONCAKE)
    wl = build_workload(f"mooncake-trace:path={path},prompt_scale=0.0625", **BIG)
    a, b, c, d = (r.prompt_ids for r in wl.requests)
    assert [len(p) for p in (a, b, c, d)] == [69, 94, 19, 38]
    assert a[:64] == b[:64] and a[64:69] != b[64:69] and c == a[:19]


def test_mooncake_clipping_keeps_the_leading_blocks(tmp_path):
    path = mooncake_file(tmp_path, MOONCAKE)
    full = build_workload(f"mooncake-trace:path={path}", **BIG)
    clipped = build_workload(f"mooncake-trace:path={path}", vocab_size=2048, max_model_len=600)
    assert [len(r.prompt_ids) for r in clipped.requests] == [595, 593, 300, 591]
    for f, c in zip(full.requests, clipped.requests):
        assert c.prompt_ids == f.prompt_ids[: len(c.prompt_ids)]


def test_generic_csv_in_milliseconds(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("ts_ms,extra,in,out\n1000,a,10,3\n1500,b,20,4\n4000,c,30,5\n")
    spec = f"generic-trace:path={path},prompt_column=in,output_column=out,arrival_column=ts_ms,time_unit=ms"
    wl = build_workload(spec, **BIG)
    assert wl.mode == "open" and times(wl) == [0.0, 0.5, 3.0]
    assert lengths(wl) == [(10, 3), (20, 4), (30, 5)]


def test_generic_jsonl_seconds_and_without_arrival_column(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"t": 2.5, "p": 8, "o": 2}\n{"t": 4.0, "p": 9, "o": 3}\n')
    wl = build_workload(f"generic-trace:path={path},prompt_column=p,output_column=o,arrival_column=t", **BIG)
    assert times(wl) == [0.0, 1.5]
    lengths_only = build_workload(f"generic-trace:path={path},prompt_column=p,output_column=o", **BIG)
    assert lengths_only.mode == "offline" and lengths(lengths_only) == [(8, 2), (9, 3)]
    paced = build_workload(f"generic-trace:path={path},prompt_column=p,output_column=o,arrival=constant(2)", **BIG)
    assert times(paced) == [0.0, 0.5]


def test_same_trace_same_hash(azure):
    a = build_workload(f"azure-trace:path={azure}", **BIG)
    assert a.content_hash == build_workload(f"azure-trace:path={azure}", **BIG).content_hash
    assert a.content_hash != build_workload(f"azure-trace:path={azure},seed=3", **BIG).content_hash
