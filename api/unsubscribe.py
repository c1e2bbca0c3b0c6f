"""`GET`/`POST /u/{token}`: the unsubscribe page and RFC 8058 one-click unsubscribe (SPEC §7).

Every marketing email links here (`unsubscribe_url`, `preferences_url`) and names this URL in
`List-Unsubscribe`, with `List-Unsubscribe-Post: List-Unsubscribe=One-Click`. The token is
HMAC-signed (`consent.tokens`): a forged or garbled one gets 403 and changes nothing.

- `POST` with the body `List-Unsubscribe=One-Click` (form-urlencoded or multipart, as RFC 8058
  allows): the mailbox provider's one-click unsubscribe; email marketing consent is revoked.
- `GET`: a small page, usable without JavaScript or a mouse, with a confirm button and a
  preferences form (email marketing, SMS marketing when the contact has a phone, the topics of
  `RAPPORT_TOPICS`). A GET never changes anything: link scanners fetch links.
- `POST` from that page: `action=unsubscribe` or `action=preferences`. The form can only take
  consent away (`consent.feedback.set_preferences`): an emailed link is no proof that its
  holder may opt a contact in. A page form posted from another site (`Sec-Fetch-Site`, else
  `Origin`) is refused with 403; one-click is not, as mailbox providers post it from anywhere.
- A contact that is not on file (erased) gets the same answers as one that is, with nothing on
  file shown and nothing changed, so a link never tells whether its contact still exists.

Each unsubscribe is also an `email_unsubscribed` event about the message whose link was used
(routed if a journey listens; if Temporal is down the consent change still stands).
"""

from __future__ import annotations

import asyncio
import logging
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from html import escape
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from temporalio.service import RPCError

from api.state import ApiState, api_state
from api.webhooks_common import deliver, read_body, size_limit
from consent.feedback import Preferences, current_preferences, set_preferences, unsubscribe_email
from consent.tokens import InvalidTokenError, UnsubscribeToken, read_unsubscribe_token
from consent.topics import topics
from runtime.starter import TemporalUnavailableError
from settings import Settings
from store import ContactRecord, EventRecord, Store

log = logging.getLogger("rapport.unsubscribe")

router = APIRouter(tags=["unsubscribe"])

MAX_BODY = size_limit(16)
HEADERS = {
    "Cache-Control": "no-store",
    # The token must not leak to other sites; `same-origin` (not `no-referrer`) so the page's
    # own form posts carry its Origin, which the POST checks.
    "Referrer-Policy": "same-origin",
    "X-Robots-Tag": "noindex",
}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
line-height:1.5;color:#1f1a17;background:#faf7f4;margin:0;padding:1.5rem}
main{max-width:34rem;margin:0 auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;
border:1px solid #d9cfc7}
h1{font-size:1.5rem;margin-top:0}h2{font-size:1.15rem;margin-top:1.75rem}
fieldset{border:1px solid #b8aca3;border-radius:6px;margin:0 0 1rem;padding:.5rem 1rem}
legend{font-weight:600;padding:0 .25rem}
.choice{display:flex;gap:.6rem;align-items:center;margin:.4rem 0}
input[type=checkbox]{width:1.25rem;height:1.25rem}
button{font:inherit;font-weight:600;padding:.6rem 1.2rem;border-radius:6px;cursor:pointer;
border:2px solid #5a3418;background:#5a3418;color:#fff}
button.secondary{background:#fff;color:#5a3418}
button:focus-visible,input:focus-visible,a:focus-visible{
outline:3px solid #1a5fb4;outline-offset:2px}
.note{color:#4a403a;font-size:.95rem}footer{margin-top:2rem;font-size:.85rem;color:#4a403a}
"""


def _brand_in_sentence(settings: Settings) -> str:
    """The brand name where a sentence ends after it: "Rapport Coffee Co." takes no extra dot."""
    name = settings.brand_name.strip()
    return escape(name if name.endswith(".") else f"{name}.")


def _postal_line(settings: Settings) -> str:
    name, address = settings.brand_name.strip(), settings.brand_address.strip()
    return escape(address if address.startswith(name) else f"{name} · {address}")


def _page(settings: Settings, title: str, body: str, status: int = 200) -> HTMLResponse:
    brand = escape(settings.brand_name)
    html = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex">'
        f"<title>{escape(title)} · {brand}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}<footer><p>{_postal_line(settings)}</p>"
        "</footer></main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def _invalid(settings: Settings) -> HTMLResponse:
    return _page(
        settings,
        "Link not valid",
        "<h1>This link is not valid</h1><p>It may have been copied incompletely. Please use the "
        "unsubscribe link at the bottom of one of our emails, or reply to it and we will help."
        "</p>",
        status=403,
    )


def _cross_site(request: Request, settings: Settings) -> bool:
    """Whether a browser says the form was posted from another site: `Sec-Fetch-Site` (which
    pages cannot set) when sent, else an `Origin` other than the public URL's (`null`
    included). Neither header: not a browser, so not a forged form."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site.strip().lower() not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False
    public = urlsplit(settings.public_url.strip())
    return origin.strip().rstrip("/").lower() != f"{public.scheme}://{public.netloc}".lower()


def _refused_cross_site(settings: Settings) -> HTMLResponse:
    return _page(
        settings,
        "Not sent from our page",
        "<h1>Please use the page from your email</h1><p>This form was sent from another "
        "website, so nothing was changed. Open the link at the bottom of one of our emails "
        "and choose there.</p>",
        status=403,
    )


def mask_email(email: str | None) -> str:
    """`alice@example.com` -> `a••••@example.com`: enough to recognise, not to harvest."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 1)}@{domain}"


def _checkbox(
    name: str,
    label: str,
    checked: bool,
    hint: str = "",
    *,
    locked: bool = False,
    disabled: bool = False,
) -> str:
    """A labelled checkbox; `locked`: disabled while unchecked (it may only be switched off)."""
    ident = f"pref-{escape(name)}"
    note = f' <span class="note">{escape(hint)}</span>' if hint else ""
    off = disabled or (locked and not checked)
    return (
        f'<div class="choice"><input type="checkbox" id="{ident}" name="{escape(name)}" '
        f'value="on"{" checked" if checked else ""}{" disabled" if off else ""}>'
        f'<label for="{ident}">{escape(label)}{note}</label></div>'
    )


def _preferences_form(settings: Settings, choices: Preferences) -> str:
    # A channel that is off cannot be switched on here (see the module docstring): its box is
    # disabled and says how to come back.
    email_hint = (
        "" if choices.email else f"Off. To receive it again, sign up at {settings.brand_url}."
    )
    channels = [_checkbox("email", "Marketing email", choices.email, email_hint, locked=True)]
    if choices.sms is not None:
        channels.append(
            _checkbox(
                "sms",
                "Marketing text messages (SMS)",
                choices.sms,
                "" if choices.sms else "Off. Text START to our number to receive them again.",
                locked=True,
            )
        )
    topic_boxes = [
        _checkbox(
            f"topic:{topic}", label, choices.topics.get(topic, False), disabled=not choices.email
        )
        for topic, label in topics(settings).items()
    ]
    topics_html = (
        "<fieldset><legend>Email topics</legend>"
        + "".join(topic_boxes)
        + '<p class="note">Topics only apply while marketing email is on.</p></fieldset>'
        if topic_boxes
        else ""
    )
    return (
        '<section aria-labelledby="prefs-title" id="preferences">'
        '<h2 id="prefs-title">Choose what you receive</h2>'
        '<form method="post" action=""><input type="hidden" name="action" value="preferences">'
        "<fieldset><legend>Channels</legend>" + "".join(channels) + "</fieldset>"
        f'{topics_html}<button type="submit" class="secondary">Save preferences</button>'
        "</form></section>"
    )


def _unsubscribe_form(settings: Settings) -> str:
    return (
        '<section aria-labelledby="unsub-title"><h2 id="unsub-title">Unsubscribe</h2>'
        f"<p>Stop all marketing email from {_brand_in_sentence(settings)} You will still get "
        "receipts and other messages about your orders.</p>"
        '<form method="post" action=""><input type="hidden" name="action" value="unsubscribe">'
        '<button type="submit">Unsubscribe from marketing email</button></form></section>'
    )


def _manage_page(
    store: Store,
    settings: Settings,
    contact: ContactRecord | None,
    *,
    preferences_first: bool,
    notice: str = "",
) -> HTMLResponse:
    """The page; for a contact not on file (None) the same page with nothing switched on."""
    who = mask_email(contact.email) if contact is not None else ""
    intro = f'<p class="note">For {escape(who)}</p>' if who else ""
    if notice:
        intro += f'<p role="status"><strong>{escape(notice)}</strong></p>'
    choices = current_preferences(store, contact, topics(settings))
    sections = [_unsubscribe_form(settings), _preferences_form(settings, choices)]
    if preferences_first:
        sections.reverse()
    return _page(
        settings,
        "Email preferences",
        f"<h1>Your {escape(settings.brand_name)} subscriptions</h1>{intro}" + "".join(sections),
    )


def parse_form(content_type: str | None, body: bytes) -> dict[str, str] | None:
    """An `application/x-www-form-urlencoded` or `multipart/form-data` body as name -> first
    value; None when it is neither parseable nor empty."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if kind == "multipart/form-data":
            head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
            message = BytesParser(policy=HTTP).parsebytes(head + body)
            form: dict[str, str] = {}
            if not message.is_multipart():
                return None
            for part in message.get_payload():
                if not isinstance(part, Message):
                    continue
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    form.setdefault(name, payload.decode("utf-8", "replace").strip())
            return form
        text = body.decode("utf-8")
        return dict(reversed(parse_qsl(text, keep_blank_values=True, max_num_fields=100)))
    except (UnicodeError, ValueError, LookupError):
        return None


def _token(settings: Settings, token: str) -> UnsubscribeToken | None:
    try:
        return read_unsubscribe_token(settings, token)
    except InvalidTokenError:
        return None


async def _deliver_quietly(state: ApiState, events: list[EventRecord]) -> None:
    try:
        await deliver(state, events)
    except (TemporalUnavailableError, RPCError) as error:
        # The consent change is what matters and it is stored; the event stays unrouted.
        log.warning("unsubscribe event not routed: %s", error)


@router.get(
    "/u/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe and preferences page",
    responses={403: {"description": "A forged or garbled token."}},
)
async def unsubscribe_page(
    token: str, request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> HTMLResponse:
    settings = state.settings
    link = _token(settings, token)
    if link is None:
        return _invalid(settings)
    contact = await asyncio.to_thread(state.store.get_contact, link.contact_id)
    first = request.query_params.get("view") == "preferences"
    return await asyncio.to_thread(
        _manage_page, state.store, settings, contact, preferences_first=first
    )


@router.post(
    "/u/{token}",
    response_class=HTMLResponse,
    summary="One-click unsubscribe (RFC 8058) and the page's forms",
    description="`List-Unsubscribe=One-Click` (what mailbox providers send), or the page's "
    "`action=unsubscribe` / `action=preferences` form.",
    responses={
        403: {
            "description": "A forged or garbled token, or the page's form posted from another "
            "site; nothing changes."
        },
        413: {"description": "The body is too large."},
        422: {"description": "Neither a one-click body nor one of the page's forms."},
    },
)
async def unsubscribe_post(
    token: str, request: Request, state: Annotated[ApiState, Depends(api_state)]
) -> HTMLResponse:
    settings, store = state.settings, state.store
    body = await read_body(request, MAX_BODY, "an unsubscribe request")
    link = _token(settings, token)
    if link is None:
        return _invalid(settings)
    form = parse_form(request.headers.get("content-type"), body)
    if form is None:
        return _page(settings, "Not understood", "<h1>That request was not understood</h1>", 422)
    one_click = form.get("List-Unsubscribe", "").strip().lower() == "one-click"
    action = "unsubscribe" if one_click else form.get("action", "")
    if action not in ("unsubscribe", "preferences"):
        return _page(
            settings,
            "Not understood",
            "<h1>That request was not understood</h1><p>Use the buttons on the "
            '<a href="">subscription page</a>.</p>',
            422,
        )
    if not one_click and _cross_site(request, settings):
        log.warning("unsubscribe page form posted from another site refused")
        return _refused_cross_site(settings)
    contact = await asyncio.to_thread(store.get_contact, link.contact_id)

    if action == "unsubscribe":
        source = "one_click" if one_click else "unsubscribe_page"
        if contact is not None:
            result = await asyncio.to_thread(
                unsubscribe_email, store, contact.id, link.message_key, source, state.plans
            )
            await _deliver_quietly(state, result.events)
            log.info("email unsubscribe (%s)", source)
        # Nothing on file, nothing will be sent: the same answer (a mail client needs a 2xx).
        return _page(
            settings,
            "Unsubscribed",
            "<h1>You are unsubscribed</h1><p>You will get no more marketing email from "
            f"{_brand_in_sentence(settings)} It can take a moment for messages already on "
            'their way to stop.</p><p><a href="?view=preferences">Change your preferences</a>'
            "</p>",
        )

    if contact is not None:
        await _save_preferences(state, contact, link, form)
    return await asyncio.to_thread(
        lambda: _manage_page(
            store,
            settings,
            contact,
            preferences_first=True,
            notice="Your preferences are saved.",
        )
    )


async def _save_preferences(
    state: ApiState, contact: ContactRecord, link: UnsubscribeToken, form: dict[str, str]
) -> None:
    chosen = {topic: form.get(f"topic:{topic}") == "on" for topic in topics(state.settings)}
    email_off = await asyncio.to_thread(
        lambda: set_preferences(
            state.store,
            contact,
            email=form.get("email") == "on",
            sms=(form.get("sms") == "on") if contact.phone else None,
            topics=chosen,
        )
    )
    if email_off:
        result = await asyncio.to_thread(
            unsubscribe_email,
            state.store,
            contact.id,
            link.message_key,
            "preferences_page",
            state.plans,
        )
        await _deliver_quietly(state, result.events)
    log.info("preferences saved")
