"""Formatting and table building: missing values never read as zero, markup never leaks."""

from __future__ import annotations

import math

from reports.html import Html, esc, fmt_bytes, fmt_num, fmt_pct, table


def test_numbers_are_formatted_with_their_magnitude():
    assert fmt_num(None) == "–" and fmt_num(math.nan) == "–"
    assert fmt_num(0) == "0" and fmt_num(0.0) == "0"
    assert fmt_num(1234567) == "1,234,567"
    assert fmt_num(1234.6) == "1,235" and fmt_num(2000.0) == "2,000"
    assert fmt_num(12.345) == "12.3" and fmt_num(1.5) == "1.50" and fmt_num(0.012345) == "0.0123"
    assert fmt_num(-0.5) == "-0.500"
    assert fmt_num("n/a") == "n/a"
    assert fmt_pct(0.1234) == "12.3 %" and fmt_pct(None) == "–"
    assert fmt_bytes(3 * 2**30) == "3.00 GiB" and fmt_bytes(512) == "512 B"


def test_table_escapes_text_but_not_trusted_markup():
    out = table(["a<b", "n"], [["<x>", Html("<b>1</b>")]], row_classes=["bad"],
                group_headers=[("g&h", 2)])
    assert "<th>a&lt;b</th>" in out and '<th colspan="2">g&amp;h</th>' in out
    assert '<tr class="bad"><td>&lt;x&gt;</td><td><b>1</b></td></tr>' in out
    assert esc(esc("<")) == "&lt;"  # escaping twice is a no-op for Html
