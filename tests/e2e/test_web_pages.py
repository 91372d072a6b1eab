"""The web pages end to end: their handlers through FastAPI's TestClient, then a real browser
(Playwright driving the system's Chromium) against ``usage-features serve``.

One small trained repo with two daily snapshots and a monitor report serves every test
(``tests/web_world.py``); its ids include markup, a slash with a percent sign and spaces, and
a spreadsheet formula.
"""

from __future__ import annotations

import csv
import html
import io
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright

from tests.conftest import services_required, start_http_server
from tests.web_world import FORMULA, ODD, TOKEN, XSS, make_web_world
from usage_features.adapters.score_snapshots import read_snapshot
from usage_features.features.retrieval import historical_features
from usage_features.features.spec import DAYS_SINCE_LAST_EVENT, TENURE_DAYS
from usage_features.http.app import prepare
from usage_features.http.web.security import MAX_FAILURES, SESSION_COOKIE
from usage_features.service_layer.bootstrap import bootstrap
from usage_features.service_layer.pages.customer import LATEST_EVENTS, customer_view
from usage_features.service_layer.pages.data import PageData
from usage_features.service_layer.pages.worklist import WorklistQuery, worklist, worklist_table

CHROMIUM = Path(os.environ.get("USAGE_FEATURES_CHROMIUM", "/usr/bin/chromium"))
#: Bands that split the small model's narrow range of probabilities three ways.
BANDS = "medium=0.105,high=0.12"
PAGES = ("/", "/model/page", "/monitor", "/retention")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    os.environ["USAGE_FEATURES_RISK_BANDS"] = BANDS
    try:
        yield make_web_world(tmp_path_factory.mktemp("web"), customers=150)
    finally:
        os.environ.pop("USAGE_FEATURES_RISK_BANDS", None)


def snapshot(world, day=None) -> pd.DataFrame:
    frame = read_snapshot(world.paths.scores, day or world.days[-1])
    frame = frame[frame.status == "active"]
    return frame.assign(rank_key=-frame.churn_probability).sort_values(
        ["rank_key", "customer_id"]).drop(columns="rank_key").reset_index(drop=True)


@pytest.fixture(scope="module")
def app(world):
    service, _ = prepare(bootstrap(world.repo), TOKEN)
    return service


def sign_in(client: TestClient, token: str = TOKEN) -> httpx.Response:
    page = client.get("/sign-in")
    nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    return client.post("/sign-in", data={"token": token, "csrf": nonce, "next": "/"},
                       follow_redirects=False)


@pytest.fixture
def client(app):
    with TestClient(app, base_url="http://testserver") as fresh:
        assert sign_in(fresh).status_code == 303
        yield fresh


def csrf_of(html: str) -> str:
    return re.search(r'action="/sign-out".*?name="csrf" value="([^"]+)"', html, re.S).group(1)


class TestSignIn:
    def test_pages_redirect_to_the_sign_in_and_the_open_paths_stay_open(self, app):
        anonymous = TestClient(app)
        for path in [*PAGES, "/worklist.csv", f"/customers/{quote(XSS, safe='')}"]:
            response = anonymous.get(path, follow_redirects=False)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/sign-in?next=")
        for path in ("/sign-in", "/static/style.css", "/health", "/openapi.json"):
            assert anonymous.get(path).status_code == 200, path
        assert anonymous.get("/docs").status_code == 404  # no Swagger UI from a CDN

    def test_the_session_cookie_is_http_only_and_same_site_strict(self, app):
        response = sign_in(TestClient(app))
        assert response.status_code == 303 and response.headers["location"] == "/"
        cookie = response.headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie

    def test_a_wrong_token_a_missing_form_token_or_another_site_is_refused(self, app):
        anonymous = TestClient(app)
        assert sign_in(anonymous, "not-the-token").status_code == 401
        no_nonce = anonymous.post("/sign-in", data={"token": TOKEN}, follow_redirects=False)
        assert no_nonce.status_code == 400
        page = anonymous.get("/sign-in")
        nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        foreign = anonymous.post("/sign-in", data={"token": TOKEN, "csrf": nonce},
                                 headers={"origin": "https://evil.example"},
                                 follow_redirects=False)
        assert foreign.status_code == 403
        assert SESSION_COOKIE not in anonymous.cookies

    def test_guessing_is_throttled(self, world):
        service, _ = prepare(bootstrap(world.repo), TOKEN)  # its own count of failures
        guesser = TestClient(service)
        codes = [sign_in(guesser, f"guess-{i}").status_code for i in range(MAX_FAILURES + 1)]
        assert codes == [401] * MAX_FAILURES + [429]
        assert sign_in(guesser).status_code == 429  # even the right token, for a minute

    def test_after_signing_in_the_browser_goes_where_it_was_going_but_only_on_this_site(
            self, app):
        anonymous = TestClient(app)
        for target, expected in (("/monitor", "/monitor"), ("//evil.example/", "/"),
                                 ("https://evil.example/", "/"), ("/\\evil", "/")):
            page = anonymous.get("/sign-in", params={"next": target})
            nonce = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
            response = anonymous.post("/sign-in", follow_redirects=False, data={
                "token": TOKEN, "csrf": nonce, "next": target})
            assert response.headers["location"] == expected
            anonymous.cookies.clear()

    def test_signing_out_needs_the_form_s_token_and_ends_the_session_on_the_server(self, app):
        browser = TestClient(app)
        sign_in(browser)
        cookie = browser.cookies[SESSION_COOKIE]
        refused = browser.post("/sign-out", data={"csrf": "forged"}, follow_redirects=False)
        assert refused.status_code == 403
        assert browser.get("/", follow_redirects=False).status_code == 200  # still signed in
        token = csrf_of(browser.get("/").text)
        out = browser.post("/sign-out", data={"csrf": token}, follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        replay = TestClient(app, cookies={SESSION_COOKIE: cookie})
        assert replay.get("/", follow_redirects=False).status_code == 303


class TestHeaders:
    def test_every_answer_carries_the_security_headers(self, client):
        for path in [*PAGES, "/sign-in", "/health", "/static/style.css", "/worklist.csv"]:
            headers = client.get(path).headers
            policy = headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy, path
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
            assert headers["x-content-type-options"] == "nosniff"

    def test_no_page_has_an_inline_script_or_style_or_loads_anything_from_elsewhere(
            self, client, world):
        for path in [*PAGES, "/sign-in", f"/customers/{quote(XSS, safe='')}"]:
            html = client.get(path).text
            assert "<script" not in html and " style=" not in html and "<style" not in html
            assert not re.search(r'(src|href)="(https?:)?//', html.replace(
                'href="http://127.0.0.1:8888/"', "")), path  # Feast UI's link: local too


class TestWorklist:
    def test_one_row_per_active_customer_riskiest_first(self, client, world):
        html = client.get("/").text
        ids = re.findall(r'class="customer">([^<]*)</a>', html)
        expected = snapshot(world).customer_id.tolist()
        assert [unescape(i) for i in ids] == expected[:50]
        page2 = client.get("/", params={"page": 2}).text
        assert [unescape(i) for i in re.findall(r'class="customer">([^<]*)</a>', page2)] == \
            expected[50:100]
        last = client.get("/", params={"page": 999}).text  # beyond the end: the last page
        assert "page 2 of 2" in last

    def test_filters_and_search(self, client, world):
        frame = snapshot(world)
        plans = pd.read_parquet(world.paths.customers).set_index("customer_id").plan
        for band in ("low", "medium", "high"):
            for plan in ("pro", "free"):
                html = client.get("/", params={"band": band, "plan": plan}).text
                ids = [unescape(i) for i in re.findall(r'class="customer">([^<]*)</a>', html)]
                chosen = frame[(frame.risk_band == band)
                               & (frame.customer_id.map(plans) == plan)]
                assert ids == chosen.customer_id.tolist()[:50]
        html = client.get("/", params={"q": "IMG SRC"}).text
        assert [unescape(i) for i in re.findall(r'class="customer">([^<]*)</a>', html)] == [XSS]

    def test_recency_and_tenure_are_what_the_model_saw_at_the_snapshot_s_time(
            self, client, world):
        frame = snapshot(world, world.days[0]).head(8)
        as_of = frame.as_of.max()
        context = bootstrap(world.repo)
        expected = historical_features(context.store, pd.DataFrame(
            {"customer_id": frame.customer_id, "event_timestamp": as_of}))
        # the worklist as it was when the first day's snapshot was the latest
        table = _table_of_day(PageData(context), world.days[0]).set_index("customer_id")
        got = table.loc[frame.customer_id]
        np.testing.assert_allclose(got[DAYS_SINCE_LAST_EVENT].to_numpy(),
                                   expected[DAYS_SINCE_LAST_EVENT].to_numpy(), rtol=1e-9)
        np.testing.assert_allclose(got[TENURE_DAYS].to_numpy(),
                                   expected[TENURE_DAYS].to_numpy(), rtol=1e-9)

    def test_the_change_is_against_the_previous_snapshot(self, client, world):
        today, before = snapshot(world), snapshot(world, world.days[0])
        rows = list(csv.DictReader(io.StringIO(client.get("/worklist.csv").text)))
        change = today.set_index("customer_id").churn_probability - before.set_index(
            "customer_id").churn_probability
        for row in rows:
            customer = row["customer_id"].removeprefix("'")
            assert float(row["change_since_previous"]) == pytest.approx(change[customer],
                                                                        abs=1e-6)

    def test_the_csv_is_the_filtered_snapshot_with_formulas_neutralised(self, client, world):
        response = client.get("/worklist.csv", params={"band": "high"})
        assert response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(response.text)))
        frame = snapshot(world)
        high = frame[frame.risk_band == "high"]
        assert [r["customer_id"] for r in rows] == [
            "'" + c if c.startswith("=") else c for c in high.customer_id]
        all_rows = list(csv.DictReader(io.StringIO(client.get("/worklist.csv").text)))
        assert len(all_rows) == len(frame)
        formula = next(r for r in all_rows if r["customer_id"].endswith(FORMULA))
        assert formula["customer_id"] == "'" + FORMULA
        for row, (_, expected) in zip(all_rows, frame.iterrows()):
            assert float(row["churn_probability"]) == pytest.approx(
                expected.churn_probability, abs=1e-6)
            assert row["risk_band"] == expected.risk_band
            assert row["reasons"] == "; ".join(expected.reasons)

    def test_without_a_snapshot_it_says_what_to_run(self, world, tmp_path):
        data = PageData(bootstrap(world.repo))
        data.snapshots.scores_dir = tmp_path / "none"  # as if no refresh had run
        view = worklist(data, WorklistQuery())
        assert view.rows == [] and "usage-features refresh" in view.hint


def _table_of_day(data, day):
    """The worklist table as it was when ``day``'s snapshot was the latest."""
    later = [d for d in data.snapshots.days() if d > day]
    original = data.snapshots.days
    data.snapshots.days = lambda: [d for d in original() if d not in later]
    return worklist_table(data)[0]


def unescape(text: str) -> str:
    return html.unescape(text)


class TestCustomerPage:
    def test_an_active_customer_s_page_has_its_score_charts_features_and_events(
            self, client, world):
        customer = snapshot(world).customer_id.iloc[0]
        html = client.get(f"/customers/{quote(customer, safe='')}").text
        served = client.post("/score", json={"customer_ids": [customer]}).json()["scores"][0]
        assert f"{served['churn_probability']:.1%}" in html
        for days in (60, 90):  # the horizons the model gives, as /score serves them
            p = served[f"churn_probability_{days}d"]
            assert (f"Within {days} days" in html) == (p is not None)
            assert p is None or f"{p:.1%}" in html
        assert ("Expected days to churn" in html) == (served["expected_days_to_churn"]
                                                      is not None)
        assert all(unescape_reason in unescape(html) for unescape_reason in served["reasons"])
        assert 'id="weekly-events"' in html and 'id="score-history"' in html
        assert "Training median" in html and "Latest events" in html

    def test_the_latest_events_and_weekly_counts_are_the_event_log_s(self, world):
        data = PageData(bootstrap(world.repo))
        for customer in snapshot(world).customer_id.iloc[:5]:
            view = customer_view(data, customer)
            own = world.events[world.events.customer_id == customer].sort_values(
                ["timestamp", "event_id"], ascending=False)
            assert [(e.timestamp, e.event_type) for e in view.events] == list(zip(
                own.timestamp.iloc[:LATEST_EVENTS], own.event_type.iloc[:LATEST_EVENTS]))
            first = pd.Timestamp(view.weekly.weeks[0], tz="UTC")
            counted = own[(own.timestamp >= first) & (
                own.timestamp < pd.Timestamp(view.weekly.last_day, tz="UTC") + timedelta(days=1))]
            assert view.weekly.total == len(counted)

    @pytest.mark.parametrize("customer", ["nobody-at-all", "cust-not-signed-up"])
    def test_an_unknown_customer_gets_a_clear_page(self, client, customer):
        response = client.get(f"/customers/{customer}")
        assert response.status_code == 200
        assert "unknown" in response.text

    def test_a_churned_customer_gets_a_clear_page(self, client, world):
        gone = world.customers[world.customers.churned_at.notna()].customer_id.iloc[0]
        response = client.get(f"/customers/{quote(gone, safe='')}")
        assert response.status_code == 200
        assert "churned" in response.text and "no churn probability" in response.text

    def test_ids_with_slashes_percent_signs_spaces_and_markup_reach_their_own_page(
            self, client):
        for customer in (ODD, XSS, FORMULA):
            html = client.get(f"/customers/{quote(customer, safe='')}").text
            heading = re.search(r'<span class="id">(.*?)</span>', html).group(1)
            assert unescape(heading) == customer
        assert "<img src=x" not in client.get(f"/customers/{quote(XSS, safe='')}").text
        assert client.get("/customers/" + "x" * 257).status_code == 404


class TestOtherPages:
    def test_the_model_page_draws_its_curves_from_data(self, client, world):
        html = client.get("/model/page").text
        assert "(shipped)" in html and "Event vocabulary" in html
        for name in ("calibration", "precision-recall", "importance"):
            figure = re.search(rf'<figure class="chart" id="{name}">(.*?)</figure>', html, re.S)
            points = int(re.search(r'data-points="(\d+)"', figure.group(1)).group(1))
            assert points > 0 and figure.group(1).count('class="mark ') == points
        assert client.get("/model", headers={"accept": "text/html"}).headers[
            "content-type"].startswith("application/json")  # the API keeps its path

    def test_the_monitor_page_shows_the_stored_report(self, client, world):
        html = client.get("/monitor").text
        assert str(world.days[-1]) in html and "Feature drift" in html
        assert "No alarm." in html or '<ul class="alarms"' in html

    def test_retention_is_lifelines_kaplan_meier_censored_at_the_latest_event(
            self, client, world):
        html = client.get("/retention").text
        latest = world.events.timestamp.max()
        assert f"{latest:%Y-%m-%d %H:%M} UTC" in html
        # the plan curves against a product-limit estimate computed by hand
        table = pd.read_parquet(world.paths.customers)
        end = table.churned_at.where(table.churned_at <= latest, latest)
        duration = (end - table.signup_at).dt.total_seconds() / 86_400
        event = table.churned_at.notna() & (table.churned_at <= latest)
        for plan, rows in table.groupby("plan"):
            d, e = duration[rows.index].to_numpy(), event[rows.index].to_numpy()
            month = 30.4375 * 3
            survival = 1.0
            for t in np.unique(d[e & (d <= month)]):
                survival *= 1 - (e & (d == t)).sum() / (d >= t).sum()
            cells = re.search(rf'<th scope="row">{plan}</th>(.*?)</tr>', html.split(
                'id="retention-plan-table"')[1], re.S).group(1)
            shares = re.findall(r">(\d+)% <span", cells)
            assert int(shares[3]) == round(survival * 100), plan


# -- in a real browser --------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """The system's Chromium through Playwright (its own browser download is not reachable
    here), for this module only: a Playwright left running for the session would keep its
    event loop on the main thread, and later tests' ``asyncio.run`` would fail."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: apt-get install chromium"
        if services_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(world):
    env = {**os.environ, "USAGE_FEATURES_RISK_BANDS": BANDS}
    env.pop("USAGE_FEATURES_API_TOKEN", None)
    (world.paths.data / "web_token").unlink(missing_ok=True)
    process, url = start_http_server(
        [sys.executable, "-m", "usage_features", "serve", "--repo", str(world.repo),
         "--port", "{port}"], env=env)
    token = (world.paths.data / "web_token").read_text().strip()  # generated at start
    yield url, token
    process.terminate()
    try:
        output = process.communicate(timeout=10)[0].decode()
    except subprocess.TimeoutExpired:
        process.kill()
        output = ""
    assert f"sign in with the token: {token}" in output


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    """Where the browser tests save each page (``$USAGE_FEATURES_SCREENSHOTS`` to keep them)."""
    chosen = os.environ.get("USAGE_FEATURES_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def signed_in(browser, server, screenshots):
    url, token = server
    context = browser.new_context(base_url=url, accept_downloads=True)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto("/")
    assert "/sign-in" in page.url
    page.screenshot(path=str(screenshots / "sign-in.png"))
    page.fill("#token", token)
    page.click("form[action='/sign-in'] button")
    page.wait_for_url(f"{url}/")
    page.dialogs = dialogs
    yield page
    context.close()


def rows_of(page) -> list[str]:
    return page.locator("table.worklist a.customer").all_inner_texts()


class TestInTheBrowser:
    def test_the_worklist_is_in_snapshot_order(self, signed_in, world):
        assert rows_of(signed_in) == snapshot(world).customer_id.tolist()[:50]

    def test_filters_narrow_it(self, signed_in, world):
        # the select offers the bands this snapshot holds, in threshold order; the model the
        # world trains decides which, so the filter takes the top customer's band
        frame = snapshot(world)
        offered = signed_in.locator("select[name=band] option").all_inner_texts()
        held = [band for band in ("low", "medium", "high") if band in set(frame.risk_band)]
        assert offered == ["any", *held]
        band = frame.risk_band.iloc[0]
        signed_in.select_option("select[name=band]", band)
        signed_in.click("form.filters button")
        signed_in.wait_for_url(re.compile(rf"band={band}"))
        assert rows_of(signed_in) == frame[frame.risk_band == band].customer_id.tolist()[:50]
        signed_in.click("text=Clear")

    def test_a_customer_s_charts_have_a_mark_per_data_point(self, signed_in, world):
        signed_in.goto("/")
        first = snapshot(world).customer_id.iloc[0]
        signed_in.click(f"table.worklist a.customer >> text={first}")
        signed_in.wait_for_url(re.compile(r"/customers/"))
        assert signed_in.locator("h1 .id").inner_text() == first
        events = world.events[world.events.customer_id == first]
        latest = world.events.timestamp.max()
        last_day = latest.floor("D")
        first_monday = last_day - pd.Timedelta(days=last_day.weekday()) - timedelta(weeks=25)
        window = events[(events.timestamp >= first_monday)
                        & (events.timestamp < last_day + pd.Timedelta(days=1))]
        week = ((window.timestamp - first_monday).dt.days // 7)
        expected = len(window.groupby([week, window.event_type]))
        assert signed_in.locator("#weekly-events svg .mark").count() == expected > 0
        assert signed_in.locator("#score-history svg .mark").count() == len(world.days)

    def test_the_csv_download_is_the_snapshot(self, signed_in, world):
        signed_in.goto("/")
        with signed_in.expect_download() as download:
            signed_in.click("a:has-text('CSV')")
        rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
        frame = snapshot(world)
        assert [r["customer_id"].removeprefix("'") for r in rows] == frame.customer_id.tolist()
        assert [float(r["churn_probability"]) for r in rows] == pytest.approx(
            frame.churn_probability.tolist(), abs=1e-6)

    def test_markup_in_an_id_is_text_on_every_page(self, signed_in, screenshots):
        for path, name in (("/?q=img", "worklist"),
                           (f"/customers/{quote(XSS, safe='')}", "customer"),
                           ("/model/page", "model"), ("/monitor", "monitor"),
                           ("/retention", "retention")):
            signed_in.goto(path)
            signed_in.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
            if name in ("worklist", "customer"):
                assert signed_in.get_by_text(XSS, exact=True).first.is_visible()
                assert signed_in.locator("img[src=x]").count() == 0
        signed_in.goto(f"/customers/{quote(ODD, safe='')}")
        assert signed_in.locator("h1 .id").inner_text() == ODD
        assert signed_in.dialogs == []

    def test_at_a_phone_s_width_by_keyboard(self, signed_in, world, screenshots):
        signed_in.set_viewport_size({"width": 390, "height": 844})
        try:
            signed_in.goto("/")
            # the table scrolls inside its own box: the page itself never scrolls sideways
            assert signed_in.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth")
            signed_in.screenshot(path=str(screenshots / "worklist-phone.png"))
            for _ in range(40):  # Tab through the header and the filters to the first row
                signed_in.keyboard.press("Tab")
                if signed_in.evaluate("document.activeElement.classList.contains('customer')"):
                    break
            first = snapshot(world).customer_id.iloc[0]
            assert signed_in.evaluate("document.activeElement.textContent") == first
            signed_in.keyboard.press("Enter")
            signed_in.wait_for_url(re.compile(r"/customers/"))
            assert signed_in.locator("h1 .id").inner_text() == first
            assert signed_in.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth")
        finally:
            signed_in.set_viewport_size({"width": 1280, "height": 720})

    def test_signing_out_refuses_the_old_cookie(self, signed_in, server):
        url, _ = server
        cookie = next(c["value"] for c in signed_in.context.cookies()
                      if c["name"] == SESSION_COOKIE)
        signed_in.goto("/")
        signed_in.click("form.sign-out button")
        signed_in.wait_for_url(f"{url}/sign-in")
        replay = httpx.get(f"{url}/", cookies={SESSION_COOKIE: cookie}, follow_redirects=False)
        assert replay.status_code == 303 and replay.headers["location"].startswith("/sign-in")
