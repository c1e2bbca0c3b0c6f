"""`/u/{token}`: RFC 8058 one-click unsubscribe, the page and its preferences form."""

from __future__ import annotations

import email
import re
from email.policy import default as default_policy

import httpx
from pydantic import SecretStr

from activities.journey_activities import JourneyActivities
from consent.tokens import read_unsubscribe_token, unsubscribe_token
from settings import Settings
from store import Store
from tests.compliance.conftest import People
from tests.compliance.helpers import PUBLIC_URL, send
from workflows.plan import JourneyPlan

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def sent_headers(settings: Settings) -> email.message.EmailMessage:
    [path] = settings.outbox_dir.glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
    assert isinstance(message, email.message.EmailMessage)
    return message


async def test_the_one_click_url_of_a_sent_email_unsubscribes(
    client: httpx.AsyncClient,
    settings: Settings,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    onboarding = plans["onboarding"]
    lia = people.add("lia")
    assert (await send(activities, onboarding, "tips", lia.id)).status == "sent"
    message = sent_headers(settings)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(message["List-Unsubscribe"]).strip("<>")
    assert url.startswith(f"{PUBLIC_URL}/u/")
    assert url in message.get_body(("html",)).get_content()  # visible too

    response = await client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert response.status_code == 200
    assert "You are unsubscribed" in response.text
    assert store.consent(lia.id, "email") == "unsubscribed"
    [record] = [r for r in store.consents_for_contact(lia.id) if r.channel == "email"]
    assert record.source == "one_click"
    [event] = store.recent_events(lia.id)
    assert event.name == "email_unsubscribed"
    assert event.properties["step"] == "tips"
    assert event.properties["method"] == "one_click"

    blocked = await send(activities, onboarding, "tips", lia.id)
    assert (blocked.status, blocked.reason) == ("suppressed", "unsubscribed from email marketing")
    # Transactional mail (the welcome, receipts) still goes; so does marketing SMS.
    assert (await send(activities, onboarding, "welcome", lia.id)).status == "sent"
    assert (await send(activities, onboarding, "sms_offer", lia.id)).status == "sent"

    # Clicking again (or a provider retrying) is fine and stores no second event.
    again = await client.post(url, content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert again.status_code == 200
    assert len(store.recent_events(lia.id)) == 1


async def test_one_click_as_multipart_form_data(
    client: httpx.AsyncClient, settings: Settings, store: Store, people: People
) -> None:
    mo = people.add("mo")
    token = unsubscribe_token(settings, mo.id, "some-message")
    response = await client.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert store.consent(mo.id, "email") == "unsubscribed"


async def test_forged_or_garbled_tokens_get_403_and_change_nothing(
    client: httpx.AsyncClient, settings: Settings, store: Store, people: People
) -> None:
    ned = people.add("ned")
    genuine = unsubscribe_token(settings, ned.id, "m-1")
    body, _, mac = genuine.partition(".")
    other = people.add("oli")
    someone_elses = unsubscribe_token(settings, other.id, "m-1")
    guessed = settings.model_copy(update={"secret": SecretStr("rapport-dev-secret-change-me")})
    forged = [
        f"{body}.{mac[:-2]}{'AA' if not mac.endswith('AA') else 'BB'}",  # altered MAC
        f"{someone_elses.partition('.')[0]}.{mac}",  # another contact's payload, Ned's MAC
        unsubscribe_token(guessed, ned.id, "m-1"),  # signed with the well-known dev secret
        "garbage",
        "a.b",
        "%E2%98%83.%00",
        "x" * 5000,
    ]
    for token in forged:
        post = await client.post(
            f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK
        )
        assert post.status_code == 403, token
        assert "not valid" in post.text
        page = await client.get(f"/u/{token}")
        assert page.status_code == 403, token
    assert store.consent(ned.id, "email") == "subscribed"
    assert store.consent(other.id, "email") == "subscribed"
    assert store.consents_for_contact(ned.id) == []
    assert read_unsubscribe_token(settings, genuine).contact_id == ned.id


async def test_the_page_is_small_accessible_and_changes_nothing(
    client: httpx.AsyncClient, settings: Settings, store: Store, people: People
) -> None:
    pam = people.add("pam")
    token = unsubscribe_token(settings, pam.id, "m-2")
    page = await client.get(f"/u/{token}")
    assert page.status_code == 200
    html = page.text
    assert '<html lang="en">' in html
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert "<h1>" in html and "<title>" in html
    assert '<button type="submit">Unsubscribe from marketing email</button>' in html
    # Every checkbox has a label bound to it; the groups have legends.
    ids = re.findall(r'<input type="checkbox" id="([^"]+)"', html)
    assert set(ids) == {"pref-email", "pref-sms", "pref-topic:offers", "pref-topic:events"}
    for ident in ids:
        assert f'<label for="{ident}">' in html
    assert "<legend>Channels</legend>" in html and "<legend>Email topics</legend>" in html
    assert pam.email not in html  # masked: p•••@example.com
    assert "p" + "•" * (len(pam.email or "") - len("@example.com") - 1) + "@example.com" in html
    assert store.consents_for_contact(pam.id) == []
    # The preferences view puts the form first.
    prefs = await client.get(f"/u/{token}?view=preferences")
    assert prefs.text.index('id="preferences"') < prefs.text.index('id="unsub-title"')
    # The page's own confirm button.
    confirm = await client.post(f"/u/{token}", data={"action": "unsubscribe"})
    assert confirm.status_code == 200
    assert store.consent(pam.id, "email") == "unsubscribed"


async def test_the_preferences_form_sets_channels_and_topics(
    client: httpx.AsyncClient,
    settings: Settings,
    store: Store,
    people: People,
    activities: JourneyActivities,
    plans: dict[str, JourneyPlan],
) -> None:
    onboarding = plans["onboarding"]
    quin = people.add("quin")
    token = unsubscribe_token(settings, quin.id, "m-3")
    saved = await client.post(
        f"/u/{token}", data={"action": "preferences", "email": "on", "topic:events": "on"}
    )
    assert saved.status_code == 200
    assert "Your preferences are saved." in saved.text
    assert store.consent(quin.id, "email") == "subscribed"
    assert store.consent(quin.id, "sms") == "unsubscribed"
    assert store.consent(quin.id, "email", "offers") == "unsubscribed"
    assert store.consent(quin.id, "email", "events") == "subscribed"
    # The page shows the choices back.
    assert 'id="pref-topic:events" name="topic:events" value="on" checked' in saved.text
    assert 'id="pref-sms" name="sms" value="on" disabled>' in saved.text  # off for good here

    # A journey whose data says `topic: offers` is blocked; one about events is not.
    offers = await send(activities, onboarding, "tips", quin.id, data={"topic": "offers"})
    assert (offers.status, offers.reason) == (
        "suppressed",
        "unsubscribed from email marketing about 'offers'",
    )
    assert (
        await send(activities, onboarding, "tips", quin.id, data={"topic": "events"})
    ).status == "sent"
    assert (await send(activities, onboarding, "sms_offer", quin.id)).status == "suppressed"

    # Unticking email unsubscribes from all email marketing, whatever the topics say.
    await client.post(f"/u/{token}", data={"action": "preferences", "topic:events": "on"})
    assert store.consent(quin.id, "email", "events") == "unsubscribed"
    nothing = await client.post(f"/u/{token}", data={"action": "dance"})
    assert nothing.status_code == 422


def without_address(html: str) -> str:
    """The page without the masked address line, the one thing that differs by contact."""
    return re.sub(r'<p class="note">For [^<]*</p>', "", html)


async def test_a_contact_not_on_file_gets_the_same_answers_and_nothing_changes(
    client: httpx.AsyncClient, settings: Settings, store: Store, people: People
) -> None:
    """No 404/200 oracle: a link of an erased (or never known) contact is answered exactly as
    one of a known contact whose marketing is off, and nothing is stored about them."""
    ray = people.add("ray", phone=None)
    known = unsubscribe_token(settings, ray.id, "m-4")
    await client.post(f"/u/{known}", data={"action": "unsubscribe"})
    gone = people.add("sal", phone=None)
    erased = unsubscribe_token(settings, gone.id, "m-5")
    store.delete_contact(gone.id)
    never = unsubscribe_token(settings, "no-such-contact", "m-6")

    requests: list[tuple[str, dict[str, str] | None]] = [
        ("GET", None),
        ("POST", {"List-Unsubscribe": "One-Click"}),
        ("POST", {"action": "unsubscribe"}),
        ("POST", {"action": "preferences", "email": "on", "topic:offers": "on"}),
    ]
    for method, form in requests:
        answers = [
            await client.request(method, f"/u/{token}", data=form)
            for token in (known, erased, never)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200], (method, form)
        pages = {without_address(a.text) for a in answers}
        assert len(pages) == 1, (method, form)
    assert "No subscription" not in answers[0].text
    for contact_id in (gone.id, "no-such-contact"):
        assert store.get_contact(contact_id) is None
        assert store.consents_for_contact(contact_id) == []
        assert store.recent_events(contact_id) == []


async def test_the_page_can_take_consent_away_but_never_give_it(
    client: httpx.AsyncClient,
    settings: Settings,
    store: Store,
    people: People,
) -> None:
    """An emailed link may opt out and choose topics, never opt in: SMS comes back only by
    texting START, email only by signing up again."""
    tia = people.add("tia")
    token = unsubscribe_token(settings, tia.id, "m-7")
    await client.post(
        f"/u/{token}", data={"action": "preferences", "topic:events": "on"}
    )  # email and SMS off
    assert (store.consent(tia.id, "email"), store.consent(tia.id, "sms")) == (
        "unsubscribed",
        "unsubscribed",
    )

    everything = {"action": "preferences", "email": "on", "sms": "on", "topic:offers": "on"}
    page = await client.post(f"/u/{token}", data=everything)
    assert page.status_code == 200
    assert (store.consent(tia.id, "email"), store.consent(tia.id, "sms")) == (
        "unsubscribed",
        "unsubscribed",
    )
    assert store.consent(tia.id, "email", "offers") == "unsubscribed"
    assert not [r for r in store.consents_for_contact(tia.id) if r.status == "subscribed"]
    # The page says so: the boxes are off and cannot be ticked.
    html = page.text
    assert 'id="pref-email" name="email" value="on" disabled>' in html
    assert f"Off. To receive it again, sign up at {settings.brand_url}." in html
    assert 'id="pref-sms" name="sms" value="on" disabled>' in html
    assert "Off. Text START to our number to receive them again." in html
    assert 'id="pref-topic:offers" name="topic:offers" value="on" disabled>' in html

    # A contact still subscribed to email may pick topics again: that is a choice within the
    # consent they gave, not new consent.
    uma = people.add("uma")
    uma_token = unsubscribe_token(settings, uma.id, "m-8")
    form = {"action": "preferences", "email": "on", "sms": "on", "topic:events": "on"}
    await client.post(f"/u/{uma_token}", data=form)
    assert store.consent(uma.id, "email", "offers") == "unsubscribed"
    await client.post(f"/u/{uma_token}", data={**form, "topic:offers": "on"})
    assert store.consent(uma.id, "email", "offers") == "subscribed"
    # Ticking what is already on records nothing.
    assert {(r.channel, r.topic) for r in store.consents_for_contact(uma.id)} == {
        ("email", "offers")
    }


async def test_page_forms_posted_from_another_site_are_refused_but_one_click_is_not(
    client: httpx.AsyncClient, settings: Settings, store: Store, people: People
) -> None:
    vic = people.add("vic")
    token = unsubscribe_token(settings, vic.id, "m-9")
    forms = [
        {"action": "unsubscribe"},
        {"action": "preferences", "topic:events": "on"},
    ]
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": PUBLIC_URL},
        {"Sec-Fetch-Site": "same-site"},
    ):
        for form in forms:
            refused = await client.post(f"/u/{token}", data=form, headers=headers)
            assert refused.status_code == 403, (headers, form)
            assert "This form was sent from another website, so nothing was changed" in (
                refused.text
            )
    assert store.consents_for_contact(vic.id) == []

    # The page's own posts: same origin by either header.
    for headers in ({"Origin": PUBLIC_URL}, {"Sec-Fetch-Site": "same-origin"}):
        saved = await client.post(
            f"/u/{token}", data={"action": "preferences", "email": "on"}, headers=headers
        )
        assert saved.status_code == 200, headers
    assert store.consent(vic.id, "sms") == "unsubscribed"
    # RFC 8058 one-click comes from the mailbox provider, from anywhere.
    one_click = await client.post(
        f"/u/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={**ONE_CLICK, "Origin": "https://mail.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert one_click.status_code == 200
    assert store.consent(vic.id, "email") == "unsubscribed"
