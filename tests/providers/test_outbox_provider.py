"""The local outbox (providers/outbox.py): .eml for email, .txt for SMS, written once per key."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from consent.tokens import unsubscribe_token
from providers.base import EmailProvider, SmsProvider
from providers.messages import OutgoingEmail, OutgoingSms
from providers.outbox import OutboxEmailProvider, OutboxSmsProvider
from settings import Settings

UNSUBSCRIBE = (
    "<https://rapport.example/u/tok123>, <mailto:unsubscribe@rapport.example?subject=tok123>"
)


def welcome_email(key: str = "run-42:step-welcome", subject: str = "Welcome, Ada") -> OutgoingEmail:
    return OutgoingEmail(
        idempotency_key=key,
        to="Ada Lovelace <ada@example.com>",
        from_="Rapport Coffee Co. <hello@rapport.example>",
        subject=subject,
        html="<p>Hello Ada — your first cup is on us.</p>",
        text="Hello Ada — your first cup is on us.",
        preheader="A welcome gift inside",
        headers={
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        categories=["onboarding", "marketing"],
        custom_args={"message_key": key, "journey": "onboarding"},
    )


def read_eml(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


async def test_an_email_is_dated_when_its_journey_sent_it(tmp_path: Path) -> None:
    # The send activity passes the run's clock: real time in production, simulated in simulate.
    sent_at = datetime(2026, 11, 2, 15, 1, 7, 250000, tzinfo=UTC)
    email = welcome_email().model_copy(update={"sent_at": sent_at})
    await OutboxEmailProvider(tmp_path).send(email)
    [path] = tmp_path.glob("*.eml")
    assert read_eml(path)["Date"] == "Mon, 02 Nov 2026 15:01:07 +0000"


async def test_email_is_written_as_a_parseable_eml_with_both_parts_and_all_headers(
    tmp_path: Path,
) -> None:
    provider = OutboxEmailProvider(tmp_path)
    result = await provider.send(welcome_email())

    [path] = tmp_path.glob("*.eml")
    message = read_eml(path)
    [sender] = message["From"].addresses
    [recipient] = message["To"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Rapport Coffee Co.",
        "hello@rapport.example",
    )
    assert (recipient.display_name, recipient.addr_spec) == ("Ada Lovelace", "ada@example.com")
    assert message["Subject"] == "Welcome, Ada"
    assert message["Date"] is not None
    assert message["Message-ID"] == f"<{result.provider_message_id}@rapport.example>"
    assert message["List-Unsubscribe"] == UNSUBSCRIBE
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["X-Rapport-Idempotency-Key"] == "run-42:step-welcome"
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == "Hello Ada — your first cup is on us.\n"
    assert html.get_content() == "<p>Hello Ada — your first cup is on us.</p>\n"


LONG_PUBLIC_URL = "https://customer-communications.rapport-coffee-roasters.example.com/preferences"


def raw_header_lines(path: Path, name: str) -> list[str]:
    """The header's physical lines in the file, folding included."""
    head = path.read_bytes().split(b"\n\n", 1)[0].decode("ascii")
    lines = head.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t"):
        end += 1
    return lines[start:end]


async def test_a_long_unsubscribe_url_stays_a_plain_ascii_url_in_the_eml(tmp_path: Path) -> None:
    token = unsubscribe_token(Settings(), "ada-lovelace-0042", "journey:onboarding:ada:welcome:1")
    url = f"{LONG_PUBLIC_URL}/u/{token}"
    assert len(f"List-Unsubscribe: <{url}>") > 78  # longer than a header line may be folded to
    email = welcome_email().model_copy(update={"headers": {"List-Unsubscribe": f"<{url}>"}})

    await OutboxEmailProvider(tmp_path).send(email)

    [path] = tmp_path.glob("*.eml")
    assert raw_header_lines(path, "List-Unsubscribe") == [f"List-Unsubscribe: <{url}>"]
    raw = BytesParser(policy=policy.compat32).parsebytes(path.read_bytes())
    assert raw["List-Unsubscribe"] == f"<{url}>"
    assert read_eml(path)["List-Unsubscribe"] == f"<{url}>"


async def test_a_list_of_unsubscribe_urls_is_folded_only_at_its_commas(tmp_path: Path) -> None:
    token = unsubscribe_token(Settings(), "ada-lovelace-0042", "journey:onboarding:ada:welcome:1")
    web = f"<{LONG_PUBLIC_URL}/u/{token}?view=one-click,confirm>"
    mail = f"<mailto:unsubscribe@rapport-coffee-roasters.example.com?subject={token}>"
    email = welcome_email().model_copy(update={"headers": {"List-Unsubscribe": f"{web}, {mail}"}})

    await OutboxEmailProvider(tmp_path).send(email)

    [path] = tmp_path.glob("*.eml")
    assert raw_header_lines(path, "List-Unsubscribe") == [f"List-Unsubscribe: {web},", f" {mail}"]
    raw = BytesParser(policy=policy.compat32).parsebytes(path.read_bytes())
    assert re.sub(r"\r?\n", "", str(raw["List-Unsubscribe"])) == f"{web}, {mail}"
    message = read_eml(path)
    assert message["List-Unsubscribe"] == f"{web}, {mail}"
    assert message.defects == []


async def test_email_result_is_an_outbox_id_derived_from_the_key(tmp_path: Path) -> None:
    provider = OutboxEmailProvider(tmp_path)
    first = await provider.send(welcome_email())
    again = await OutboxEmailProvider(tmp_path / "elsewhere").send(welcome_email())

    assert first.provider == "outbox"
    assert re.fullmatch(r"outbox-[0-9a-f]{16}", first.provider_message_id)
    assert again.provider_message_id == first.provider_message_id


async def test_sms_is_written_as_txt_with_recipient_and_body(tmp_path: Path) -> None:
    provider = OutboxSmsProvider(tmp_path)
    sms = OutgoingSms(
        idempotency_key="run-42:step-sms", to="+15551234567", body="Your cup is ready ☕"
    )
    result = await provider.send(sms)

    [path] = tmp_path.glob("*.txt")
    assert path.read_text(encoding="utf-8") == (
        "To: +15551234567\nIdempotency-Key: run-42:step-sms\n\nYour cup is ready ☕\n"
    )
    assert result.provider == "outbox"
    assert result.provider_message_id.startswith("outbox-")


async def test_same_email_key_twice_writes_once_and_returns_the_same_id(tmp_path: Path) -> None:
    provider = OutboxEmailProvider(tmp_path)
    first = await provider.send(welcome_email(subject="First"))
    second = await provider.send(welcome_email(subject="Second"))

    [path] = tmp_path.glob("*.eml")
    assert read_eml(path)["Subject"] == "First"
    assert second == first


async def test_same_sms_key_twice_writes_once(tmp_path: Path) -> None:
    provider = OutboxSmsProvider(tmp_path)
    await provider.send(OutgoingSms(idempotency_key="k1", to="+15551234567", body="first"))
    await provider.send(OutgoingSms(idempotency_key="k1", to="+15551234567", body="second"))

    [path] = tmp_path.glob("*.txt")
    assert path.read_text(encoding="utf-8").endswith("\n\nfirst\n")


async def test_file_names_are_safe_and_stay_in_the_outbox(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    provider = OutboxEmailProvider(outbox)
    await provider.send(welcome_email(key="../../etc/passwd"))
    await provider.send(welcome_email(key="wf/run:1 step#2"))

    names = sorted(path.name for path in outbox.iterdir())
    assert sorted(path for path in tmp_path.rglob("*") if path.is_file()) == [
        outbox / name for name in names
    ]
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+-[0-9a-f]{16}\.eml", name) for name in names)
    assert any(name.startswith("wf_run_1_step_2-") for name in names)


async def test_keys_that_sanitise_alike_get_distinct_files(tmp_path: Path) -> None:
    provider = OutboxEmailProvider(tmp_path)
    await provider.send(welcome_email(key="run/1"))
    await provider.send(welcome_email(key="run:1"))

    assert len(list(tmp_path.glob("*.eml"))) == 2


async def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    await OutboxEmailProvider(tmp_path).send(welcome_email())
    await OutboxSmsProvider(tmp_path).send(
        OutgoingSms(idempotency_key="k", to="+15551234567", body="Hi")
    )

    assert sorted(path.suffix for path in tmp_path.iterdir()) == [".eml", ".txt"]


def test_outbox_providers_satisfy_the_protocols(tmp_path: Path) -> None:
    assert isinstance(OutboxEmailProvider(tmp_path), EmailProvider)
    assert isinstance(OutboxSmsProvider(tmp_path), SmsProvider)
