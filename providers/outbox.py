"""The local outbox: where messages go when no provider credentials are configured (SPEC §6).

Email is written as an RFC 5322 `.eml` file (multipart/alternative, text then HTML, with every
custom header such as `List-Unsubscribe`), SMS as a `.txt` file. File names come from the
idempotency key (unsafe characters replaced, plus a short hash so distinct keys never share a
file). Files are written to a temporary name and then linked into place, so a reader never sees a
partial file and a second send with the same key leaves the first file untouched and returns the
same provider message id (`outbox-<hash>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import EmailPolicy
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

from providers.messages import OutgoingEmail, OutgoingSms, SendResult, parse_address

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 100


def key_hash(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:16]


def outbox_message_id(idempotency_key: str) -> str:
    return f"outbox-{key_hash(idempotency_key)}"


def outbox_file_name(idempotency_key: str, suffix: str) -> str:
    """A file name for the key: its safe characters, then a hash of the whole key."""
    stem = _UNSAFE.sub("_", idempotency_key).strip("._-")[:_MAX_STEM] or "message"
    return f"{stem}-{key_hash(idempotency_key)}{suffix}"


def _write_once(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically unless it exists; True when this call wrote it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # A hard link fails if the name exists: a concurrent writer of the same key wins once.
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # File systems without hard links: rename (atomic; same content for the same key).
            os.replace(tmp, path)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# RFC 2369 / RFC 8058 list headers: their values are `<URL>` lists.
_URL_HEADERS = frozenset(
    name.lower()
    for name in (
        "List-Unsubscribe",
        "List-Unsubscribe-Post",
        "List-Subscribe",
        "List-Help",
        "List-Post",
        "List-Owner",
        "List-Archive",
    )
)
_ANGLE_URL = re.compile(r"<[A-Za-z][A-Za-z0-9+.-]*:[^<>]*>")
_MAX_LINE = 78
# A comma outside `<…>`: commas inside a URL (query strings) are part of it.
_TOP_LEVEL_COMMA = re.compile(r",(?![^<]*>)")


def _carries_urls(name: str, value: str) -> bool:
    return name.lower() in _URL_HEADERS or _ANGLE_URL.search(value) is not None


def fold_at_commas(name: str, value: str, linesep: str = "\n") -> str:
    """`Name: value` folded only after the commas between list items (never inside a URL), as
    mail programs read `List-Unsubscribe`; a single long URL stays on one line."""
    items = [item.strip() for item in _TOP_LEVEL_COMMA.split(value)]
    lines = [f"{name}: {items[0]}"]
    for item in items[1:]:
        if len(lines[-1]) + len(item) + 2 > _MAX_LINE:
            lines[-1] += ","
            lines.append(f" {item}")
        else:
            lines[-1] += f", {item}"
    return linesep.join(lines) + linesep


class _OutboxPolicy(EmailPolicy):
    """The default policy, except that ASCII headers carrying URLs are written as they are,
    folded at commas: the default folder turns a URL longer than a line into an RFC 2047
    encoded-word (`=?utf-8?q?=3Chttps=3A//…`), which no mail program reads as a URL."""

    def _url_header(self, name: str, value: Any) -> str | None:
        text = str(value)
        if text.isascii() and _carries_urls(name, text):
            return fold_at_commas(name, text, self.linesep)
        return None

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        # A one-line ASCII value is kept as the text it is, as a parsed .eml keeps its headers
        # (the default parses every value into a structured header when it is set: a third of
        # the time building a message took); written as it is when it fits a line, else
        # folded as before, so the file is byte for byte what it was. MIME headers are parsed
        # as before: the message reads them back while it is built.
        if (
            isinstance(value, str)
            and value.isascii()
            and "\n" not in value
            and "\r" not in value
            and "=?" not in value  # RFC 2047 words (formataddr's): re-encoded as before
            and not name.lower().startswith(("content-", "mime-"))
        ):
            return name, value
        return super().header_store_parse(name, value)

    def fold(self, name: str, value: Any) -> str:
        return self._url_header(name, value) or super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._url_header(name, value)
        return folded.encode("ascii") if folded else super().fold_binary(name, value)


_EML_POLICY = _OutboxPolicy()


def build_eml(email: OutgoingEmail, *, message_id: str, date: datetime | None = None) -> bytes:
    """The email as RFC 5322 bytes: multipart/alternative with text/plain and text/html parts."""
    from_name, from_address = parse_address(email.from_)
    to_name, to_address = parse_address(email.to)
    domain = from_address.rpartition("@")[2]
    msg = EmailMessage(policy=_EML_POLICY)
    msg["From"] = formataddr((from_name, from_address))
    msg["To"] = formataddr((to_name, to_address))
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = f"<{message_id}@{domain}>"
    for name, value in email.headers.items():
        msg[name] = value
    msg["X-Rapport-Idempotency-Key"] = email.idempotency_key
    if email.preheader:
        msg["X-Rapport-Preheader"] = email.preheader
    if email.categories:
        msg["X-Rapport-Categories"] = ", ".join(email.categories)
    if email.custom_args:
        msg["X-Rapport-Custom-Args"] = json.dumps(email.custom_args, sort_keys=True)
    if email.text and email.html:
        msg.set_content(email.text)
        msg.add_alternative(email.html, subtype="html")
    elif email.html:
        msg.set_content(email.html, subtype="html")
    else:
        msg.set_content(email.text)
    return msg.as_bytes()


def build_sms_txt(sms: OutgoingSms) -> bytes:
    lines = [f"To: {sms.to}", f"Idempotency-Key: {sms.idempotency_key}"]
    if sms.status_callback:
        lines.append(f"Status-Callback: {sms.status_callback}")
    return ("\n".join(lines) + "\n\n" + sms.body + "\n").encode("utf-8")


class OutboxEmailProvider:
    """Writes each email to `<outbox_dir>/<key>-<hash>.eml`."""

    name = "outbox"

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)

    def path_for(self, idempotency_key: str) -> Path:
        return self.outbox_dir / outbox_file_name(idempotency_key, ".eml")

    async def send(self, email: OutgoingEmail) -> SendResult:
        return await asyncio.to_thread(self.send_sync, email)

    def send_sync(self, email: OutgoingEmail) -> SendResult:
        message_id = outbox_message_id(email.idempotency_key)
        path = self.path_for(email.idempotency_key)
        if not path.exists():
            _write_once(path, build_eml(email, message_id=message_id, date=email.sent_at))
        return SendResult(provider=self.name, provider_message_id=message_id)


class OutboxSmsProvider:
    """Writes each SMS to `<outbox_dir>/<key>-<hash>.txt`."""

    name = "outbox"

    def __init__(self, outbox_dir: Path | str) -> None:
        self.outbox_dir = Path(outbox_dir)

    def path_for(self, idempotency_key: str) -> Path:
        return self.outbox_dir / outbox_file_name(idempotency_key, ".txt")

    async def send(self, sms: OutgoingSms) -> SendResult:
        return await asyncio.to_thread(self.send_sync, sms)

    def send_sync(self, sms: OutgoingSms) -> SendResult:
        _write_once(self.path_for(sms.idempotency_key), build_sms_txt(sms))
        return SendResult(
            provider=self.name, provider_message_id=outbox_message_id(sms.idempotency_key)
        )


def read_outbox_html(outbox_dir: Path | str, idempotency_key: str) -> str | None:
    """The HTML part of the email the outbox wrote for this key; None when there is no file
    (another provider sent it, or the contact was erased) or it has no HTML part."""
    path = Path(outbox_dir) / outbox_file_name(idempotency_key, ".eml")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    parsed = BytesParser(policy=email_policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    part = parsed.get_body(preferencelist=("html",))
    content = part.get_content() if part is not None else None
    return content if isinstance(content, str) else None
