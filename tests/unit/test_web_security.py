"""The web pages' pieces that need no repo: sessions, throttling, redirects, the CSV's cells,
the security headers, the sign-in token's file, the charts' marks."""

from __future__ import annotations

import asyncio
import csv
import io
import stat

import pytest

from usage_features.config import RepoPaths
from usage_features.http.web import is_page
from usage_features.http.web.charts import horizontal_bars, line_chart, stacked_bars
from usage_features.http.web.pages import customer_url, id_from_raw_path, safe_target
from usage_features.http.web.security import (
    CONTENT_SECURITY_POLICY,
    FailedSignIns,
    SecurityHeaders,
    Sessions,
    same,
)
from usage_features.http.web.views import CSV_COLUMNS, spreadsheet_safe, worklist_csv
from usage_features.service_layer.pages.token import (
    CONFIGURED,
    GENERATED,
    STORED,
    TOKEN_FILE,
    page_token,
)
from usage_features.service_layer.pages.worklist import WorklistRow


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TestSessions:
    def test_a_session_lives_until_it_is_ended(self):
        sessions = Sessions()
        key, session = sessions.start()
        assert sessions.get(key) is session and len(key) >= 40 and session.csrf != key
        sessions.end(key)
        assert sessions.get(key) is None
        assert sessions.get(None) is None and sessions.get("made-up") is None

    def test_it_expires_when_idle_and_after_its_maximum_age(self):
        clock = Clock()
        sessions = Sessions(idle=10, max_age=25, clock=clock)
        key, _ = sessions.start()
        for _ in range(2):
            clock.now += 9
            assert sessions.get(key) is not None  # each use keeps it alive
        clock.now += 9  # 27 s after the start
        assert sessions.get(key) is None
        idle, _ = sessions.start()
        clock.now += 11
        assert sessions.get(idle) is None

    def test_the_oldest_goes_first_beyond_the_capacity(self):
        sessions = Sessions(capacity=2)
        first, second, third = (sessions.start()[0] for _ in range(3))
        assert sessions.get(first) is None
        assert sessions.get(second) is not None and sessions.get(third) is not None


def test_failed_sign_ins_block_for_a_window():
    clock = Clock()
    failures = FailedSignIns(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert not failures.blocked()
        failures.add()
    assert failures.blocked()
    clock.now += 61
    assert not failures.blocked()


def test_tokens_are_compared_whole():
    assert same("abc", "abc") and not same("abd", "abc") and not same("", "abc")
    assert not same(None, "abc") and not same("ab", "abc") and same("tök\ud800", "tök\ud800")


@pytest.mark.parametrize(("target", "expected"), [
    ("/customers/x?y=1", "/customers/x?y=1"), ("/", "/"), (None, "/"), ("", "/"),
    ("//evil.example", "/"), ("https://evil.example/", "/"), ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"), ("/ok\r\nSet-Cookie: x", "/")])
def test_after_sign_in_only_a_path_of_this_site(target, expected):
    assert safe_target(target) == expected


def test_a_customer_url_encodes_the_whole_id_and_the_raw_path_gives_it_back():
    for customer in ("<img src=x onerror=alert(1)>", "a/b %2F c&d", "x?y#z", "ünï cödé"):
        url = customer_url(customer)
        assert url.count("/") == 2 and " " not in url and "?" not in url
        scope = {"raw_path": url.encode("ascii")}
        assert id_from_raw_path(scope, "ignored") == customer
    assert id_from_raw_path({}, "decoded") == "decoded"


def test_the_pages_paths_are_told_from_the_api_s():
    for path in ("/", "/sign-in", "/sign-out", "/worklist.csv", "/customers/x", "/model/page",
                 "/monitor", "/retention", "/static/style.css"):
        assert is_page(path)
    for path in ("/score", "/health", "/model", "/openapi.json", "/customers", "/docs"):
        assert not is_page(path)


class TestCsv:
    @pytest.mark.parametrize("text", ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
    def test_a_cell_a_spreadsheet_would_run_gets_an_apostrophe(self, text):
        assert spreadsheet_safe(text) == "'" + text

    @pytest.mark.parametrize("text", ["cust-1", "a=b", "1-2", ""])
    def test_other_text_is_kept(self, text):
        assert spreadsheet_safe(text) == text

    def test_rows_as_csv_reasons_in_one_cell_numbers_as_numbers(self):
        rows = [WorklistRow(1, "=cmd|' /C calc'!A0", 0.5, "high", ("a, b", "-c"), -0.25, 3.5,
                            100.0, "@pro"),
                WorklistRow(2, "c2", 0.25, "medium", (), None, None, None, None)]
        parsed = list(csv.reader(io.StringIO(worklist_csv(rows))))
        assert parsed[0] == list(CSV_COLUMNS)
        assert parsed[1] == ["1", "'=cmd|' /C calc'!A0", "0.500000", "high", "a, b; -c",
                             "-0.250000", "3.50", "100.00", "'@pro"]
        assert parsed[2] == ["2", "c2", "0.250000", "medium", "", "", "", "", ""]


def test_the_security_headers_are_added_to_every_response():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-frame-options", b"SAMEORIGIN")]})
        await send({"type": "http.response.body", "body": b""})

    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(SecurityHeaders(app)({"type": "http"}, None, send))
    headers = dict(sent[0]["headers"])
    assert headers[b"content-security-policy"] == CONTENT_SECURITY_POLICY.encode()
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"x-frame-options"] == b"SAMEORIGIN"  # the app's own kept
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


class TestPageToken:
    def test_the_api_token_when_configured(self, tmp_path):
        token = page_token(RepoPaths(tmp_path), "configured-token")
        assert (token.token, token.source) == ("configured-token", CONFIGURED)
        assert not (tmp_path / "data" / TOKEN_FILE).exists()

    def test_else_generated_once_kept_for_its_owner_only_and_reused(self, tmp_path):
        first = page_token(RepoPaths(tmp_path))
        assert first.source == GENERATED and len(first.token) >= 40
        path = tmp_path / "data" / TOKEN_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        again = page_token(RepoPaths(tmp_path))
        assert (again.token, again.source) == (first.token, STORED)


class TestCharts:
    def test_a_mark_per_nonzero_stack_segment(self):
        chart = stacked_bars("c", "t", ["w1", "w2", "w3"], ["a", "b"],
                             [[1, 0], [2, 3], [0, 0]])
        assert chart.points == 3 == len([m for m in chart.marks if m.kind == "rect"])
        assert [m.title for m in chart.marks] == ["w1: 1 a", "w2: 2 a", "w2: 3 b"]
        _, top, _, bottom = chart.plot
        assert all(top - 1e-9 <= m.y and m.y + m.height <= bottom + 1e-9 for m in chart.marks)

    def test_a_circle_per_point_and_a_line_per_series(self):
        chart = line_chart("c", "t", [("one", [(0, 0.1, "a"), (1, 0.2, "b")]),
                                      ("two", [(0, 0.5, "c")])], (0, 1), y_top=1.0,
                           diagonal=True)
        assert chart.points == 3 and [m.kind for m in chart.marks] == ["circle"] * 3
        assert [line.kind for line in chart.lines] == ["reference", "line"]

    def test_a_bar_per_item(self):
        chart = horizontal_bars("c", "t", [("x", 0.3, 0), ("y", 0.0, 1)], limit=0.25)
        assert chart.points == 2 and chart.marks[1].width == 0
