"""The dashboard's routes: sign-in and out, journeys, a journey (pause / resume), loyalty,
contacts (search, a contact, cancel a run). Every page needs the session cookie; every POST its
CSRF token. The API's write keys do not open these pages, and the admin token opens nothing else.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.dashboard import diagram, figures, report_charts
from api.dashboard.session import (
    PATH,
    DashboardSession,
    admin_token,
    csrf_ok,
    current_session,
    end_session,
    login_csrf,
    login_csrf_ok,
    set_login_csrf,
    start_session,
    token_matches,
)
from api.dashboard.throttle import SignInThrottle
from api.state import ApiState
from errors import UnavailableError
from providers.outbox import read_outbox_html
from runtime.lifecycle import pause_journey, resume_journey
from runtime.run_state import cancel_contact_runs, live_states
from store.records import LedgerEntry

HERE = Path(__file__).parent
OFF_TEXT = (
    "The dashboard is off. Set RAPPORT_ADMIN_TOKEN to a long random value "
    "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))') "
    "and restart the API, then sign in with that token."
)
WRONG_TOKEN = "That token is not the dashboard's admin token."
BAD_CSRF = (
    "The form has expired or did not come from this dashboard: reload the page and try again."
)
MAX_FORM_BYTES = 4096
RENDERED_MESSAGES = 20  # the latest messages shown as the customer received them
TOO_MANY = "Too many wrong tokens from this address: try again in {seconds} s."

templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


def _state(request: Request) -> ApiState:
    state: ApiState = request.app.state.rapport
    return state


def render(
    request: Request,
    template: str,
    session: DashboardSession | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    html = templates.get_template(template).render(
        request=request,
        base=PATH,
        csrf=session.csrf if session else None,
        signed_in=session is not None,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def message(
    request: Request, session: DashboardSession | None, title: str, text: str, status: int
) -> HTMLResponse:
    return render(request, "message.html", session, status, title=title, text=text)


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form (the only kind the dashboard posts), first value of each field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[0] for key, values in parsed.items()}


def require_session(request: Request) -> DashboardSession:
    session = current_session(_state(request).settings, request)
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise _Redirect(f"{PATH}/login?next={quote(target)}")
    return session


async def require_post(request: Request) -> tuple[DashboardSession, dict[str, str]]:
    session = current_session(_state(request).settings, request)
    if session is None:
        raise _Redirect(f"{PATH}/login")
    fields = await form_fields(request)
    if not csrf_ok(session, fields.get("csrf")):
        raise _Forbidden(session)
    return session, fields


class _Forbidden(Exception):
    def __init__(self, session: DashboardSession | None) -> None:
        self.session = session


def _safe_next(target: str | None) -> str:
    """Only a dashboard path: never another site (an open redirect)."""
    if target and target.startswith(PATH) and not target.startswith("//"):
        return target
    return PATH


router = APIRouter(prefix=PATH, include_in_schema=False)


def _login_page(
    request: Request, status: int = 200, error: str | None = None, target: str | None = None
) -> HTMLResponse:
    token = login_csrf(request)
    response = render(
        request, "login.html", None, status, error=error, next=_safe_next(target), login_csrf=token
    )
    set_login_csrf(response, token)
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    if admin_token(_state(request).settings) is None:
        return message(request, None, "Dashboard off", OFF_TEXT, 404)
    return _login_page(request, target=request.query_params.get("next"))


@router.post("/login")
async def login(request: Request) -> Response:
    settings = _state(request).settings
    if admin_token(settings) is None:
        return message(request, None, "Dashboard off", OFF_TEXT, 404)
    throttle: SignInThrottle = request.app.state.sign_in_throttle
    address = request.client.host if request.client else "unknown"
    wait = throttle.retry_after(address)
    if wait is not None:
        response = message(request, None, "Sign-in refused", TOO_MANY.format(seconds=wait), 429)
        response.headers["Retry-After"] = str(wait)
        return response
    fields = await form_fields(request)
    if not login_csrf_ok(request, fields.get("csrf")):
        return message(request, None, "Sign-in refused", BAD_CSRF, 403)
    if not token_matches(settings, fields.get("token", "")):
        throttle.failed(address)
        return _login_page(request, 401, WRONG_TOKEN, fields.get("next"))
    redirect = RedirectResponse(_safe_next(fields.get("next")), status_code=303)
    start_session(settings, redirect)
    return redirect


@router.post("/logout")
async def logout(request: Request) -> Response:
    await require_post(request)
    response = RedirectResponse(f"{PATH}/login", status_code=303)
    end_session(response)
    return response


@router.get("")
async def journeys(request: Request) -> Response:
    state = _state(request)
    if admin_token(state.settings) is None:
        return message(request, None, "Dashboard off", OFF_TEXT, 200)
    session = require_session(request)
    rows = await asyncio.to_thread(figures.journey_rows, state.store, state.plans)
    return render(request, "journeys.html", session, rows=rows)


@router.get("/journeys/{journey_id}")
async def journey(request: Request, journey_id: str) -> Response:
    session = require_session(request)
    state = _state(request)
    plan = state.plans.get(journey_id)
    if plan is None:
        return message(
            request, session, "No such journey", f"There is no journey {journey_id!r}.", 404
        )
    try:
        since = figures.parse_day("since", request.query_params.get("since"))
        until = figures.parse_day("until", request.query_params.get("until"))
        report = await asyncio.to_thread(figures.journey_figures, state.store, plan, since, until)
    except ValueError as error:
        return message(request, session, "Bad period", str(error), 422)
    paused = figures.is_paused(await asyncio.to_thread(state.store.paused_journeys), plan)
    nodes, edges = figures.diagram_nodes(plan, report)
    return render(
        request,
        "journey.html",
        session,
        plan=plan,
        report=report,
        paused=paused,
        nodes=nodes,
        edges=edges,
        diagram=diagram.draw(plan.journey_id, nodes, edges),
        charts=report_charts.journey_charts(report),
        since=request.query_params.get("since", ""),
        until=request.query_params.get("until", ""),
        notice=request.query_params.get("notice"),
    )


@router.post("/journeys/{journey_id}/{action}")
async def pause_or_resume(request: Request, journey_id: str, action: str) -> Response:
    session, _ = await require_post(request)
    state = _state(request)
    plan = state.plans.get(journey_id)
    if plan is None or action not in ("pause", "resume"):
        return message(
            request, session, "No such journey", f"There is no journey {journey_id!r}.", 404
        )
    try:
        client = await state.temporal.get()
        if action == "pause":
            report = await pause_journey(client, state.store, journey_id)
        else:
            report = await resume_journey(client, state.store, journey_id, plan, state.task_queue)
    except UnavailableError as error:
        return message(request, session, "Temporal is unavailable", str(error), 503)
    verb = "paused" if action == "pause" else "resumed"
    notice = f"{verb} {journey_id}: {report.signalled} running run(s) signalled"
    return RedirectResponse(f"{PATH}/journeys/{journey_id}?notice={quote(notice)}", status_code=303)


@router.get("/loyalty")
async def loyalty(request: Request) -> Response:
    session = require_session(request)
    state = _state(request)
    default_since, default_until = figures.default_loyalty_period()
    try:
        since = figures.parse_day("since", request.query_params.get("since")) or default_since
        until = figures.parse_day("until", request.query_params.get("until")) or default_until
        report, trend = await asyncio.to_thread(
            figures.loyalty_figures, state.store, state.settings, since, until
        )
    except ValueError as error:
        return message(request, session, "Bad period", str(error), 422)
    charts = report_charts.loyalty_charts(report, trend)
    return render(request, "loyalty.html", session, report=report, trend=trend, charts=charts)


@router.get("/contacts")
async def contacts(request: Request) -> Response:
    session = require_session(request)
    state = _state(request)
    query = request.query_params.get("q", "").strip()[:320]
    found = []
    if query:
        contact = await asyncio.to_thread(state.store.get_contact, query)
        found = [contact] if contact else []
        if "@" in query:
            found += await asyncio.to_thread(state.store.contacts_by_address, "email", query)
    return render(request, "contacts.html", session, query=query, found=found)


@router.get("/contacts/{contact_id}")
async def contact(request: Request, contact_id: str) -> Response:
    session = require_session(request)
    state = _state(request)
    store = state.store
    record = await asyncio.to_thread(store.get_contact, contact_id)
    if record is None:
        return message(
            request, session, "No such contact", f"There is no contact {contact_id!r}.", 404
        )
    consents = await asyncio.to_thread(store.consents_for_contact, contact_id)
    events = await asyncio.to_thread(store.recent_events, contact_id, 50)
    messages = await asyncio.to_thread(store.ledger.messages_for_contact, contact_id, 50)
    runs = await asyncio.to_thread(store.runs_for_contact, contact_id)
    html_copies = await asyncio.to_thread(_html_copies, state.settings.outbox_dir, messages)
    note = None
    try:
        client = await state.temporal.get()
        states = await live_states(client, runs, with_timeline=False)
    except UnavailableError as error:
        states = None
        note = f"Where each run stands now is unknown: {error}"
    return render(
        request,
        "contact.html",
        session,
        contact=record,
        consents=consents,
        events=events,
        messages=messages,
        html_copies=html_copies,
        rendered_limit=RENDERED_MESSAGES,
        runs=runs,
        states=states,
        note=note,
        notice=request.query_params.get("notice"),
    )


def _html_copies(outbox_dir: Path, messages: list[LedgerEntry]) -> dict[str, str]:
    """The HTML each sent email had, by idempotency key, for those the local outbox wrote (the
    ledger keeps the subject and the text version of every message, not the HTML)."""
    copies = {}
    for entry in messages[:RENDERED_MESSAGES]:
        if entry.channel == "email" and entry.provider == "outbox":
            html = read_outbox_html(outbox_dir, entry.idempotency_key)
            if html is not None:
                copies[entry.idempotency_key] = html
    return copies


@router.post("/contacts/{contact_id}/cancel")
async def cancel(request: Request, contact_id: str) -> Response:
    session, fields = await require_post(request)
    state = _state(request)
    journey_id = fields.get("journey", "")
    try:
        client = await state.temporal.get()
        results = await cancel_contact_runs(client, state.store, contact_id, journey_id)
    except UnavailableError as error:
        return message(request, session, "Temporal is unavailable", str(error), 503)
    notice = (
        "; ".join(f"{wid}: {outcome}" for wid, outcome in results.items())
        or f"{contact_id} has no open run of {journey_id}"
    )
    return RedirectResponse(
        f"{PATH}/contacts/{quote(contact_id)}?notice={quote(notice)}", status_code=303
    )


def install(app: FastAPI) -> None:
    """Mount the dashboard's pages and its static files on the API app."""
    app.include_router(router)
    app.state.sign_in_throttle = SignInThrottle()
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")

    @app.exception_handler(_Redirect)
    async def redirect(_request: Request, error: _Redirect) -> Response:
        return RedirectResponse(error.location, status_code=303)

    @app.exception_handler(_Forbidden)
    async def forbidden(request: Request, error: _Forbidden) -> Response:
        return message(request, error.session, "Action refused", BAD_CSRF, 403)
