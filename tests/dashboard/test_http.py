"""The dashboard over HTTP (no browser): off without a token, sign-in, the session cookie, CSRF,
the write keys and the admin token each opening only their own side, and the pages' figures
equal to the report functions' for the same period."""

from __future__ import annotations

import re

import httpx
import pytest

from api.dashboard.pages import BAD_CSRF, OFF_TEXT, WRONG_TOKEN
from reports.journey import JourneyQuery, journey_report
from tests.dashboard.conftest import (
    ADMIN_TOKEN,
    WRITE_KEY,
    csrf_of,
    dashboard_app,
    sign_in,
)


async def test_off_without_token_says_how_to_turn_it_on(seeded) -> None:  # type: ignore[no-untyped-def]
    app = dashboard_app(seeded, admin_token=None)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        page = await client.get("/dashboard")
        login = await client.get("/dashboard/login")
        loyalty = await client.get("/dashboard/loyalty", follow_redirects=True)
    assert page.status_code == 200
    assert OFF_TEXT.replace("'", "&#39;") in page.text
    assert OFF_TEXT == (
        "The dashboard is off. Set RAPPORT_ADMIN_TOKEN to a long random value "
        "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))') "
        "and restart the API, then sign in with that token."
    )
    assert login.status_code == 404
    assert loyalty.status_code == 404  # the sign-in page it redirects to is off too


async def test_pages_need_a_session(web: httpx.AsyncClient) -> None:
    for path in (
        "/dashboard",
        "/dashboard/journeys/winback",
        "/dashboard/loyalty",
        "/dashboard/contacts?q=r1",
        "/dashboard/contacts/r1",
    ):
        response = await web.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/dashboard/login?next=/dashboard")


async def test_wrong_token_refused(web: httpx.AsyncClient) -> None:
    response = await sign_in(web, token="not-the-token")
    assert response.status_code == 401
    assert WRONG_TOKEN.replace("'", "&#39;") in response.text
    assert "rapport_dashboard=" not in response.headers.get("set-cookie", "")
    assert (await web.get("/dashboard")).status_code == 303


async def test_sign_in_sets_a_strict_http_only_cookie_and_logout_ends_it(
    web: httpx.AsyncClient,
) -> None:
    response = await sign_in(web)
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("rapport_dashboard=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/dashboard" in cookie
    page = await web.get("/dashboard")
    assert page.status_code == 200
    assert "<h1>Journeys</h1>" in page.text
    # Logging out needs the form's CSRF token, then the cookie no longer opens a page.
    refused = await web.post("/dashboard/logout", data={"csrf": "forged"})
    assert refused.status_code == 403
    assert BAD_CSRF in refused.text
    out = await web.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
    assert out.status_code == 303
    assert (await web.get("/dashboard")).status_code == 303


async def test_sign_in_needs_its_csrf_cookie(web: httpx.AsyncClient) -> None:
    response = await web.post("/dashboard/login", data={"csrf": "x", "token": ADMIN_TOKEN})
    assert response.status_code == 403
    assert "rapport_dashboard=" not in response.headers.get("set-cookie", "")


async def test_forged_or_tampered_cookie_opens_nothing(web: httpx.AsyncClient) -> None:
    await sign_in(web)
    value = web.cookies.get("rapport_dashboard")
    assert value is not None
    expires, csrf, signature = value.split(".")
    web.cookies.clear()
    web.cookies.set(
        "rapport_dashboard", f"{int(expires) + 999}.{csrf}.{signature}", path="/dashboard"
    )
    assert (await web.get("/dashboard")).status_code == 303


async def test_a_post_without_the_csrf_token_changes_nothing(
    seeded, web: httpx.AsyncClient
) -> None:  # type: ignore[no-untyped-def]
    store = seeded[0]
    await sign_in(web)
    response = await web.post("/dashboard/journeys/winback/pause", data={})
    assert response.status_code == 403
    assert "winback" not in store.paused_journeys()


async def test_write_key_does_not_open_the_dashboard(web: httpx.AsyncClient) -> None:
    for auth in ((WRITE_KEY, ""),):
        response = await web.get("/dashboard", auth=auth)
        assert response.status_code == 303
    response = await web.get("/dashboard", headers={"Authorization": f"Bearer {WRITE_KEY}"})
    assert response.status_code == 303
    assert (await sign_in(web, token=WRITE_KEY)).status_code == 401


async def test_admin_token_does_not_open_the_ingest_api(web: httpx.AsyncClient) -> None:
    body = {"userId": "r1", "event": "pinged"}
    for headers in (
        {"Authorization": f"Bearer {ADMIN_TOKEN}"},
        {"Authorization": "Basic " + httpx.BasicAuth(ADMIN_TOKEN, "")._auth_header.split()[1]},
    ):
        response = await web.post("/v1/track", json=body, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"detail": "unknown write key"}
    # Nor does a dashboard session.
    await sign_in(web)
    response = await web.post("/v1/track", json=body)
    assert response.status_code == 401


async def test_journey_page_shows_the_reports_figures(seeded, web: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    store, _, plans = seeded
    await sign_in(web)
    page = await web.get("/dashboard/journeys/winback?since=2026-07-01&until=2026-08-01")
    assert page.status_code == 200
    report = journey_report(
        store,
        JourneyQuery(
            "winback",
            since=_day("2026-07-01"),
            until=_day("2026-08-01"),
            step_order=plans["winback"].step_ids,
        ),
    )
    assert report["entered"] == 7  # docs/metrics.md's worked example
    assert f'<strong data-figure="entered">{report["entered"]}</strong>' in page.text
    for step in report["steps"]:
        node = f'<g class="node" data-step="{step["id"]}" id="node-{step["id"]}"><title>'
        assert node in page.text
        assert f'<g class="bar" data-step="{step["id"]}" data-value="{step["reached"]}">' in (
            page.text
        )
    assert '<td class="num" data-figure="treated_converted">2</td>' in page.text
    assert "Lift: <strong>40.0 %</strong>" in page.text
    assert '<g class="interval" data-value="0.4" data-low="-0.3157" data-high="0.7693">' in (
        page.text
    )
    median = report["median_time_to_convert_s"]
    assert f"Median time to convert: {median / 86400:.1f} days ({median} s)" in page.text


async def test_the_diagram_draws_every_edge_of_the_plan_with_its_label(
    web: httpx.AsyncClient,
) -> None:
    await sign_in(web)
    page = await web.get("/dashboard/journeys/winback")
    edges = re.findall(
        r'<g class="edge" data-from="([^"]+)" data-to="([^"]+)"><title>([^<]*)<', page.text
    )
    assert edges == [
        ("start", "welcome", "start → welcome"),
        ("welcome", "wait_2", "welcome → wait_2"),
        ("wait_2", "ab", "wait_2 → ab"),
        ("ab", "offer_a", "ab → offer_a: weight 1"),
        ("ab", "offer_b", "ab → offer_b: weight 1"),
        ("offer_a", "done", "offer_a → done"),
        ("offer_b", "done", "offer_b → done"),
    ]


async def test_journey_page_bad_period_is_named(web: httpx.AsyncClient) -> None:
    await sign_in(web)
    page = await web.get("/dashboard/journeys/winback?since=2026-13-01")
    assert page.status_code == 422
    assert "since: &#39;2026-13-01&#39; is not a date like 2026-07-01" in page.text


async def test_pause_while_temporal_is_down_says_so(web: httpx.AsyncClient) -> None:
    page = await (await _signed(web)).get("/dashboard/journeys/winback")
    response = await web.post(
        "/dashboard/journeys/winback/pause", data={"csrf": csrf_of(page.text)}
    )
    assert response.status_code == 503
    assert "cannot reach Temporal at 127.0.0.1:1 (connection refused)" in response.text


async def test_loyalty_contacts_and_search(web: httpx.AsyncClient) -> None:
    await sign_in(web)
    loyalty = await web.get("/dashboard/loyalty?since=2026-07-01&until=2026-10-01")
    assert loyalty.status_code == 200
    assert '<dd data-figure="retention_rate">66.7 %</dd>' in loyalty.text
    assert '<dd data-figure="cltv">195.00</dd>' in loyalty.text
    found = await web.get("/dashboard/contacts?q=r1")
    assert '<a href="/dashboard/contacts/r1">r1</a>' in found.text
    missing = await web.get("/dashboard/contacts?q=nobody%40example.com")
    assert "No contact has the id or email address “nobody@example.com”." in missing.text
    by_email = await web.get("/dashboard/contacts?q=rita%40example.com")
    assert '<a href="/dashboard/contacts/r1">r1</a> rita@example.com' in by_email.text
    contact = await web.get("/dashboard/contacts/r1")
    assert contact.status_code == 200
    assert "<h1>Contact r1</h1>" in contact.text
    assert "<dt>Email</dt><dd>rita@example.com</dd>" in contact.text
    assert "email: <strong>subscribed</strong>" in contact.text
    assert '<td>lapsed</td><td><code>{"days": 61}</code></td>' in contact.text
    assert "Where each run stands now is unknown: cannot reach Temporal at 127.0.0.1:1" in (
        contact.text
    )


async def _signed(web: httpx.AsyncClient) -> httpx.AsyncClient:
    await sign_in(web)
    return web


def _day(text: str):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _resume(seeded):  # type: ignore[no-untyped-def]
    yield
    seeded[0].set_journey_paused("winback", False)


def test_the_api_logs_whether_the_dashboard_is_on() -> None:
    from api.dashboard.session import dashboard_line
    from tests.stack.helpers import project_settings

    assert dashboard_line(project_settings()) == (
        "Dashboard: off (set RAPPORT_ADMIN_TOKEN to turn it on)"
    )
    assert dashboard_line(project_settings(admin_token=ADMIN_TOKEN)) == (
        "Dashboard: http://127.0.0.1:8000/dashboard (sign in with RAPPORT_ADMIN_TOKEN)"
    )


def test_a_guessable_admin_token_or_one_that_is_a_write_key_stops_the_api() -> None:
    from tests.stack.helpers import project_settings

    assert project_settings(admin_token=ADMIN_TOKEN).serving_problems(api_host="127.0.0.1") == []
    assert project_settings(admin_token="letmein").serving_problems(api_host="127.0.0.1") == [
        "RAPPORT_ADMIN_TOKEN is shorter than 16 bytes: use a long random value "
        "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
    ]
    shared = project_settings(admin_token=ADMIN_TOKEN, write_keys=f"k1-long-enough,{ADMIN_TOKEN}")
    assert shared.serving_problems(api_host="127.0.0.1") == [
        "RAPPORT_ADMIN_TOKEN is also one of RAPPORT_WRITE_KEYS: use another"
    ]


async def test_sign_in_is_refused_for_a_minute_after_five_wrong_tokens(seeded) -> None:  # type: ignore[no-untyped-def]
    from api.dashboard.pages import TOO_MANY
    from api.dashboard.throttle import SignInThrottle

    now = [1000.0]
    app = dashboard_app(seeded)
    app.state.sign_in_throttle = SignInThrottle(clock=lambda: now[0])

    def client(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    async with client("10.0.0.7") as guesser, client("10.0.0.8") as other:
        for attempt in range(5):
            now[0] += 1
            assert (await sign_in(guesser, token=f"guess-{attempt}")).status_code == 401
        now[0] += 10
        refused = await sign_in(guesser)  # even the right token, while limited
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "46"
        assert TOO_MANY.format(seconds=46) in refused.text
        assert "rapport_dashboard=" not in refused.headers.get("set-cookie", "")
        assert (await sign_in(other)).status_code == 303  # another address is not held back
        now[0] += 46  # the first failure is now a minute old
        assert (await sign_in(guesser)).status_code == 303


async def test_a_contact_page_shows_the_email_as_received_in_a_sandboxed_frame(
    seeded, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    from providers.messages import OutgoingEmail
    from providers.outbox import OutboxEmailProvider

    store = seeded[0]
    key = "journey:winback:r1:welcome:html-copy"
    html = '<p class="x">Hi "Rita" &amp; co</p><script>alert(1)</script>'
    store.ledger.claim(key, contact_id="r1", channel="email", journey="winback", step_id="welcome")
    sent = OutboxEmailProvider(tmp_path / "outbox").send_sync(
        OutgoingEmail(
            idempotency_key=key,
            to="rita@example.com",
            from_="shop@example.com",
            subject="We miss you",
            html=html,
            text="Hi Rita & co",
        )
    )
    store.ledger.mark_sent(
        key, sent.provider, sent.provider_message_id, subject="We miss you", body="Hi Rita & co"
    )
    app = dashboard_app(seeded, data_dir=tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as web:
        await sign_in(web)
        page = await web.get("/dashboard/contacts/r1")
    assert '<strong data-figure="subject">We miss you</strong>' in page.text
    # The HTML goes only into the frame's srcdoc, escaped, and the frame runs no script.
    assert (
        '<iframe class="email" sandbox="" referrerpolicy="no-referrer" srcdoc="'
        "&lt;p class=&#34;x&#34;&gt;Hi &#34;Rita&#34; &amp;amp; co&lt;/p&gt;"
        '&lt;script&gt;alert(1)&lt;/script&gt;\n" title="The email “We miss you” as sent to r1">'
    ) in page.text
    assert "<script>" not in page.text
    assert '<pre class="body" data-figure="body">Hi Rita &amp; co</pre>' in page.text


async def test_a_month_still_under_way_is_marked_on_the_monthly_charts(
    seeded, web: httpx.AsyncClient
) -> None:  # type: ignore[no-untyped-def]
    from reports.loyalty import LoyaltyQuery, loyalty_report

    await sign_in(web)
    page = await web.get("/dashboard/loyalty?since=2026-07-01&until=2026-09-15")
    assert '<p class="hint">2026-09* is the month so far (to 2026-09-15, excluded).</p>' in (
        page.text
    )
    so_far = loyalty_report(
        seeded[0], LoyaltyQuery(since=_day("2026-09-01"), until=_day("2026-09-15"))
    )
    point = re.search(r'<g class="point" data-month="2026-09\*" data-value="([^"]+)">', page.text)
    assert point is not None and float(point.group(1)) == so_far["retention_rate"]
    assert '<g class="point" data-month="2026-08" ' in page.text  # a whole month is not marked
