"""A local stand-in for the SendGrid and Twilio HTTP APIs, for tests (unit and end to end).

`ProviderStandIn` is a real HTTP server on 127.0.0.1 (ephemeral port, in a background thread)
that answers

- SendGrid `POST /v3/mail/send` (JSON, `Authorization: Bearer <key>`): 202 with an `X-Message-Id`
  header; errors as SendGrid writes them, `{"errors": [{"message", "field"}]}`;
- Twilio `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (form-encoded, HTTP Basic
  `AccountSid:AuthToken`): 201 with a Message resource (`sid` `SM…`); errors as Twilio writes them,
  `{"code", "message", "more_info", "status"}`.

Every request is validated against the published OpenAPI descriptions vendored in
`tests/provider_specs/` (request body schema of the operation, path parameters, required fields,
the auth header the security scheme asks for), plus the documented rules the schemas cannot express
(e.g. Twilio needs `From` or `MessagingServiceSid`; SendGrid wants text/plain before text/html).
A request that breaks them is answered 400 and its errors are recorded; the `provider_standin`
fixture fails the test if any request did not validate. A wrong key/token (auth header present)
is not a validation error: it gets the provider's 401. `ProviderStandIn(defer_validation=True)`
(the benchmarks') answers every request as a valid one and validates them all later, when
`validation_errors` or `assert_valid()` is read: the checks cost the measured processes no CPU
while they run, and a request that breaks them still fails the run.

Failures can be programmed: `fail_next(429, retry_after=5)`, `fail_next(500, count=3)`,
`fail_next(400, code=21211, provider="twilio")`, `stall_next(2.0)` (answer late, for timeouts),
`accept_next_without_message_id()` (a SendGrid 202 without `X-Message-Id`), `drop_next()` (no
answer: a reset, or a timeout with `after=`), `refuse("bad@example.com", 400)` (every request to
that recipient), `storm(0.3, requests=60)` (random 429/5xx/timeouts, then recovery). `hold()` keeps
every request waiting, unanswered, until `release()` (`held` counts them): sends caught mid-call.

Use it with the fixture, or directly:

    with ProviderStandIn() as standin:
        os.environ.update(standin.env())   # SENDGRID_API_KEY/HOST, TWILIO_* pointing at it
        ...
        standin.assert_valid()
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import random
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_DIR = Path(__file__).resolve().parent / "provider_specs"
SENDGRID_SPEC = SPEC_DIR / "sendgrid_mail_v3.yaml"
TWILIO_SPEC = SPEC_DIR / "twilio_messages_create.yaml"

SENDGRID = "sendgrid"
TWILIO = "twilio"

# Obviously fake credentials (the Twilio SID has the shape the spec's pattern demands).
FAKE_SENDGRID_API_KEY = "SG.fake-standin-key.not-a-real-secret"
FAKE_TWILIO_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
FAKE_TWILIO_AUTH_TOKEN = "fake-standin-twilio-auth-token"
FAKE_TWILIO_MESSAGING_SERVICE_SID = "MG" + "fedcba9876543210" * 2
FAKE_TWILIO_FROM = "+15005550006"

E164 = re.compile(r"^\+[1-9]\d{1,14}$")

# --------------------------------------------------------------------------------------------
# OpenAPI request validation
# --------------------------------------------------------------------------------------------

FORMATS = FormatChecker(formats=())


@FORMATS.checks("email")
def _is_email(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parsed = getaddresses([value])
    if len(parsed) != 1 or parsed[0][1] != value:
        return False
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain and not re.search(r"\s", value))


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and parts.netloc) and not re.search(r"\s", value)


@FORMATS.checks("phone-number")
def _is_phone_number(value: object) -> bool:
    """E.164, a channel address (`whatsapp:+1…`), a short code or an alphanumeric sender ID."""
    if not isinstance(value, str):
        return True
    return bool(
        E164.match(value)
        or re.match(r"^[a-z]+:\S+$", value)
        or re.match(r"^\d{3,8}$", value)
        or re.match(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$", value)
    )


def _openapi30_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` as JSON Schema (`type: [t, "null"]`), recursively."""
    if isinstance(node, dict):
        node = {key: _openapi30_to_jsonschema(value) for key, value in node.items()}
        if node.pop("nullable", False) is True:
            if isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
                if "enum" in node:
                    node["enum"] = [*node["enum"], None]
            elif "$ref" in node:
                ref = node.pop("$ref")
                node = {"anyOf": [{"$ref": ref}, {"type": "null"}], **node}
        return node
    if isinstance(node, list):
        return [_openapi30_to_jsonschema(value) for value in node]
    return node


def _pointer(document: Any, ref: str) -> Any:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported: {ref}")
    for part in ref[2:].split("/"):
        token = part.replace("~1", "/").replace("~0", "~")
        document = document[int(token)] if isinstance(document, list) else document[token]
    return document


def _where(error_path: Iterator[Any] | Any, root: str) -> str:
    where = root
    for part in error_path:
        where += f"[{part}]" if isinstance(part, int) else f".{part}"
    return where


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


class OpenApiOperation:
    """One operation of an OpenAPI description, able to check an incoming request against it.

    Schemas are validated in place (by JSON pointer into the loaded description), so their
    `#/components/...` references resolve as in the original document.
    """

    def __init__(self, spec_file: Path, path_template: str, method: str) -> None:
        raw = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        # `nullable` is OpenAPI 3.0; the SendGrid file says 3.1 but still uses it (e.g. the
        # error `field`, which SendGrid sends as null), so it is honoured in both versions.
        self.spec: dict[str, Any] = _openapi30_to_jsonschema(raw)
        self.uri = f"urn:rapport-standin:{spec_file.name}"
        self.registry: Registry[Any] = Registry().with_resource(
            self.uri, Resource.from_contents(self.spec, default_specification=DRAFT202012)
        )
        self.method = method.upper()
        self.path_template = path_template
        item_ptr = f"#/paths/{_escape(path_template)}"
        path_item = _pointer(self.spec, item_ptr)
        op_ptr = f"{item_ptr}/{method.lower()}"
        self.operation: dict[str, Any] = _pointer(self.spec, op_ptr)
        self.operation_id = str(self.operation.get("operationId", f"{method} {path_template}"))
        names = re.findall(r"\{(\w+)\}", path_template)
        pattern = re.escape(path_template)
        for name in names:
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
        self.path_re = re.compile(f"^{pattern}$")
        # (parameter object, JSON pointer of its schema)
        self.parameters: list[tuple[dict[str, Any], str]] = []
        for base, owner in ((item_ptr, path_item), (op_ptr, self.operation)):
            for index, _ in enumerate(owner.get("parameters", [])):
                parameter, ptr = self._follow(f"{base}/parameters/{index}")
                self.parameters.append((parameter, f"{ptr}/schema"))
        self.security: list[dict[str, list[str]]] = self.operation.get(
            "security", self.spec.get("security", [])
        )
        self.request_body: dict[str, Any] = {}
        self.request_body_ptr = ""
        if "requestBody" in self.operation:
            self.request_body, self.request_body_ptr = self._follow(f"{op_ptr}/requestBody")

    def _follow(self, ptr: str) -> tuple[dict[str, Any], str]:
        """The object at `ptr`, following `$ref`s, and its final pointer."""
        node = _pointer(self.spec, ptr)
        while isinstance(node, dict) and "$ref" in node:
            ptr = node["$ref"]
            node = _pointer(self.spec, ptr)
        return node, ptr

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = _pointer(self.spec, node["$ref"])
        return node

    def _validator(self, ptr: str) -> Draft202012Validator:
        return Draft202012Validator(
            {"$ref": self.uri + ptr}, registry=self.registry, format_checker=FORMATS
        )

    def match(self, method: str, path: str) -> dict[str, str] | None:
        found = self.path_re.match(path)
        if method.upper() != self.method or not found:
            return None
        return {key: unquote(value) for key, value in found.groupdict().items()}

    def validate(
        self, path_params: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[list[str], Any]:
        """Errors (empty when valid) and the decoded body (JSON value or form dict)."""
        errors: list[str] = []
        lowered = {k.lower(): v for k, v in headers.items()}
        errors.extend(self._check_parameters(path_params, lowered))
        errors.extend(self._check_security(lowered))
        content_type = lowered.get("content-type", "").split(";")[0].strip().lower()
        media = self.request_body.get("content", {})
        decoded: Any = None
        if not body:
            if self.request_body.get("required"):
                errors.append("body: the request body is required")
            return errors, decoded
        if content_type not in media:
            errors.append(f"header Content-Type: {content_type!r} is not one of {sorted(media)}")
            return errors, decoded
        schema, schema_ptr = self._follow(
            f"{self.request_body_ptr}/content/{_escape(content_type)}/schema"
        )
        if content_type == "application/json":
            try:
                decoded = json.loads(body)
            except ValueError as exc:
                return [*errors, f"body: not JSON ({exc})"], None
        elif content_type == "application/x-www-form-urlencoded":
            decoded, form_errors = self._decode_form(body, schema)
            errors.extend(form_errors)
        errors.extend(
            sorted(
                f"{_where(error.absolute_path, 'body')}: {error.message}"
                for error in self._validator(schema_ptr).iter_errors(decoded)
            )
        )
        return errors, decoded

    def _check_parameters(self, path_params: dict[str, str], headers: dict[str, str]) -> list[str]:
        errors = []
        for parameter, schema_ptr in self.parameters:
            place, name = parameter.get("in"), parameter["name"]
            if place == "path":
                value: str | None = path_params.get(name)
            elif place == "header":
                value = headers.get(name.lower())
            else:
                continue
            if value is None:
                if parameter.get("required"):
                    errors.append(f"{place} parameter {name}: required")
                continue
            if "schema" not in parameter:
                continue
            for error in self._validator(schema_ptr).iter_errors(value):
                errors.append(f"{place} parameter {name}: {error.message}")
        return errors

    def _check_security(self, headers: dict[str, str]) -> list[str]:
        if not self.security:
            return []
        schemes = self.spec.get("components", {}).get("securitySchemes", {})
        authorization = headers.get("authorization", "")
        wanted = []
        for requirement in self.security:
            satisfied = True
            for scheme_name in requirement:
                scheme = schemes.get(scheme_name, {})
                kind = str(scheme.get("scheme", "")).lower()
                wanted.append(f"{kind.title()} ({scheme_name})")
                if scheme.get("type") != "http" or not authorization.lower().startswith(kind + " "):
                    satisfied = False
            if satisfied:
                return []
        return [f"header Authorization: missing or not {' or '.join(wanted)}"]

    def _decode_form(self, body: bytes, schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Form fields typed by the schema (`true` → True, arrays from repeated fields)."""
        errors: list[str] = []
        try:
            fields = parse_qs(body.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            return {}, [f"body: not application/x-www-form-urlencoded ({exc})"]
        properties: dict[str, Any] = schema.get("properties", {})
        decoded: dict[str, Any] = {}
        for name, values in fields.items():
            if name not in properties:
                errors.append(f"body.{name}: not a parameter of {self.operation_id}")
                continue
            prop = self._resolve(properties[name])
            if prop.get("type") == "array":
                item = self._resolve(prop.get("items", {}))
                decoded[name] = [_coerce(v, item) for v in values]
            elif len(values) > 1:
                errors.append(f"body.{name}: given {len(values)} times, expected once")
            else:
                decoded[name] = _coerce(values[0], prop)
        return decoded, errors


@functools.cache
def _operation(spec_file: Path, path_template: str, method: str) -> OpenApiOperation:
    """Operations are read-only once built; parse each description once per process."""
    return OpenApiOperation(spec_file, path_template, method)


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    """A form value as the type its schema declares (left a string when it does not parse)."""
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    if "integer" in kinds and re.fullmatch(r"-?\d+", value):
        return int(value)
    if "number" in kinds:
        try:
            number = float(value)
        except ValueError:
            return value
        return number if math.isfinite(number) else value
    return value


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass
class ReceivedRequest:
    """One request as the stand-in saw it, and what it answered."""

    provider: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    data: Any = None  # the JSON body (SendGrid) or the typed form fields (Twilio)
    validation_errors: list[str] = field(default_factory=list)
    status: int = 0
    response: Any = None
    message_id: str | None = None
    deferred: bool = False  # answered unchecked; `ProviderStandIn.validate_deferred` checks it

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def form(self) -> dict[str, list[str]]:
        """The raw form fields (every value a list of strings)."""
        return parse_qs(self.body.decode("ascii", "replace"), keep_blank_values=True)


@dataclass
class Failure:
    """A programmed answer for the next matching request."""

    status: int | None  # None: answer normally (after `delay`)
    provider: str | None = None
    retry_after: float | None = None
    message: str | None = None
    code: int | None = None
    field: str | None = None
    delay: float = 0.0
    message_id: bool = True  # False: accept without naming the message (SendGrid X-Message-Id)
    drop: bool = False  # True: after `delay`, close the connection without answering


@dataclass
class Storm:
    """For the next `remaining` requests, each fails with probability `rate` (seeded)."""

    rate: float
    remaining: int
    faults: tuple[int | str, ...]
    provider: str | None
    stall: float
    random: random.Random

    def draw(self, provider: str) -> Failure | None:
        if self.remaining <= 0 or self.provider not in (None, provider):
            return None
        self.remaining -= 1
        if self.random.random() >= self.rate:
            return None
        fault = self.random.choice(self.faults)
        if fault == "timeout":
            return Failure(None, provider, delay=self.stall, drop=True)
        status = int(fault)
        return Failure(status, provider, retry_after=1 if status == 429 else None)


Response = tuple[int, dict[str, str], Any]
# The status recorded for a request whose connection was closed without an answer.
DROPPED = 0

_MESSAGE_ID_ALPHABET = string.ascii_letters + string.digits + "-_"


class ProviderStandIn:
    """The SendGrid + Twilio stand-in server. Thread-safe; start/stop or use as a context."""

    def __init__(
        self,
        *,
        sendgrid_api_key: str | None = FAKE_SENDGRID_API_KEY,
        twilio_account_sid: str = FAKE_TWILIO_ACCOUNT_SID,
        twilio_auth_token: str | None = FAKE_TWILIO_AUTH_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        defer_validation: bool = False,
    ) -> None:
        self.defer_validation = defer_validation
        self.sendgrid_api_key = sendgrid_api_key
        self.twilio_account_sid = twilio_account_sid
        self.twilio_auth_token = twilio_auth_token
        self._address = (host, port)
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._failures: list[Failure] = []
        self._refusals: dict[str, Failure] = {}
        self._storm: Storm | None = None
        self._stopping = threading.Event()
        self._open = threading.Event()  # cleared by hold(): requests wait until release()
        self._open.set()
        self._held = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.sendgrid_send = _operation(SENDGRID_SPEC, "/v3/mail/send", "POST")
        self.twilio_create_message = _operation(
            TWILIO_SPEC, "/2010-04-01/Accounts/{AccountSid}/Messages.json", "POST"
        )

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> ProviderStandIn:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(self._address, _handler_for(self))
        server.daemon_threads = True
        server.block_on_close = False
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"provider-standin:{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        self._open.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ProviderStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stand-in is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    sendgrid_host = url
    twilio_api_base = url

    def env(self, *, messaging_service: bool = False) -> dict[str, str]:
        """Environment variables (SPEC §9) that point the project's providers at this server."""
        values = {
            "SENDGRID_API_KEY": self.sendgrid_api_key or FAKE_SENDGRID_API_KEY,
            "SENDGRID_API_HOST": self.url,
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token or FAKE_TWILIO_AUTH_TOKEN,
            "TWILIO_API_BASE": self.url,
        }
        if messaging_service:
            values["TWILIO_MESSAGING_SERVICE_SID"] = FAKE_TWILIO_MESSAGING_SERVICE_SID
        else:
            values["TWILIO_FROM"] = FAKE_TWILIO_FROM
        return values

    # -- programming and inspection ---------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        count: int = 1,
        provider: str | None = None,
        retry_after: float | None = None,
        message: str | None = None,
        code: int | None = None,
        field: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next `count` requests (of `provider`, or any) with `status`."""
        failure = Failure(status, provider, retry_after, message, code, field, delay)
        with self._lock:
            self._failures.extend([failure] * count)

    def stall_next(self, seconds: float, *, count: int = 1, provider: str | None = None) -> None:
        """Answer the next `count` requests normally, but only after `seconds`."""
        with self._lock:
            self._failures.extend([Failure(None, provider, delay=seconds)] * count)

    def hold(self) -> None:
        """Keep every request from now on waiting, unanswered, until `release()`."""
        self._open.clear()

    def release(self) -> None:
        """Answer the held requests (as they would have been answered) and stop holding."""
        self._open.set()

    @property
    def held(self) -> int:
        """How many requests are waiting for `release()`."""
        with self._lock:
            return self._held

    def accept_next_without_message_id(self, *, count: int = 1) -> None:
        """Accept the next `count` SendGrid requests (202) without an `X-Message-Id` header,
        which the published API does not promise."""
        with self._lock:
            self._failures.extend([Failure(None, SENDGRID, message_id=False)] * count)

    def drop_next(self, *, count: int = 1, after: float = 0.0, provider: str | None = None) -> None:
        """Take the next `count` requests and, after `after` seconds, close the connection without
        answering: the message is not accepted. With `after` longer than the client's timeout this
        is a timeout; with 0, a connection reset."""
        with self._lock:
            self._failures.extend([Failure(None, provider, delay=after, drop=True)] * count)

    def refuse(
        self,
        recipient: str,
        status: int = 400,
        *,
        message: str | None = None,
        code: int | None = None,
        field: str | None = None,
    ) -> None:
        """Answer every request to `recipient` (an email address or a phone number) with
        `status`, before any storm or queued failure: a permanent refusal."""
        with self._lock:
            self._refusals[recipient] = Failure(status, None, None, message, code, field)

    def storm(
        self,
        rate: float = 0.3,
        *,
        requests: int,
        faults: tuple[int | str, ...] = (429, 500, 503, "timeout"),
        provider: str | None = None,
        stall: float = 1.0,
        seed: int = 0,
    ) -> None:
        """Fail each of the next `requests` requests with probability `rate`, then recover.

        A fault is a status (429 comes with `Retry-After: 1`) or `"timeout"`: answer nothing for
        `stall` seconds, then close the connection (the message is not accepted, as when a
        gateway times out) — give the client a timeout shorter than `stall`."""
        with self._lock:
            self._storm = Storm(rate, requests, faults, provider, stall, random.Random(seed))

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._failures.clear()
            self._refusals.clear()
            self._storm = None

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def emails(self) -> list[ReceivedRequest]:
        """SendGrid requests that were accepted (202)."""
        return [r for r in self.requests if r.provider == SENDGRID and r.status == 202]

    @property
    def sms(self) -> list[ReceivedRequest]:
        """Twilio requests that were accepted (201)."""
        return [r for r in self.requests if r.provider == TWILIO and r.status == 201]

    @property
    def validation_errors(self) -> list[str]:
        self.validate_deferred()
        return [
            f"{r.method} {r.path}: {error}" for r in self.requests for error in r.validation_errors
        ]

    def assert_valid(self) -> None:
        errors = self.validation_errors
        if errors:
            raise AssertionError(
                "requests to the provider stand-in did not conform to the provider API:\n  "
                + "\n  ".join(errors)
            )

    def validate_deferred(self) -> None:
        """Check the requests answered unchecked (`defer_validation`), as `handle` would have."""
        with self._lock:
            pending = [request for request in self._requests if request.deferred]
        for request in pending:
            operation, rules = (
                (self.sendgrid_send, _sendgrid_rules)
                if request.provider == SENDGRID
                else (self.twilio_create_message, _twilio_rules)
            )
            params = operation.match(request.method, urlsplit(request.path).path) or {}
            errors, data = operation.validate(params, request.headers, request.body)
            if isinstance(data, dict):
                errors.extend(rules(data))
            request.validation_errors.extend(errors)
            request.deferred = False

    # -- request handling -------------------------------------------------------------------

    def _take_failure(self, provider: str, recipient: str | None) -> Failure | None:
        with self._lock:
            if recipient is not None and recipient in self._refusals:
                return self._refusals[recipient]
            for index, failure in enumerate(self._failures):
                if failure.provider in (None, provider):
                    return self._failures.pop(index)
            return self._storm.draw(provider) if self._storm is not None else None

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Response:
        path = urlsplit(raw_path).path
        for provider, operation, answer in (
            (SENDGRID, self.sendgrid_send, self._sendgrid),
            (TWILIO, self.twilio_create_message, self._twilio),
        ):
            params = operation.match(method, path)
            if params is None:
                continue
            if self.defer_validation:
                request = ReceivedRequest(
                    provider, method, raw_path, headers, body, _unchecked(body), deferred=True
                )
            else:
                errors, data = operation.validate(params, headers, body)
                request = ReceivedRequest(provider, method, raw_path, headers, body, data)
                request.validation_errors.extend(errors)
            with self._lock:
                self._requests.append(request)
            self._wait_while_held()
            status, response_headers, payload = answer(request, params)
            request.status, request.response = status, payload
            return status, response_headers, payload
        request = ReceivedRequest("unknown", method, raw_path, headers, body)
        request.validation_errors.append("no such operation in the provider API descriptions")
        request.status = 404
        with self._lock:
            self._requests.append(request)
        return 404, {}, {"errors": [{"message": "Not Found", "field": None}]}

    def _wait_while_held(self) -> None:
        if self._open.is_set():
            return
        with self._lock:
            self._held += 1
        try:
            self._open.wait()
        finally:
            with self._lock:
                self._held -= 1

    def _wait(self, failure: Failure | None) -> None:
        if failure is not None and failure.delay > 0:
            self._stopping.wait(failure.delay)

    # SendGrid ---------------------------------------------------------------------------------

    def _sendgrid(self, request: ReceivedRequest, params: dict[str, str]) -> Response:
        if isinstance(request.data, dict) and not request.deferred:
            request.validation_errors.extend(_sendgrid_rules(request.data))

        def error(status: int, message: str, field: str | None = None) -> Response:
            return status, {}, {"errors": [{"message": message, "field": field}]}

        authorization = request.header("Authorization") or ""
        if not authorization.startswith("Bearer "):
            return error(401, "Permission denied, wrong credentials")
        if self.sendgrid_api_key is not None and authorization != f"Bearer {self.sendgrid_api_key}":
            return error(401, "The provided authorization grant is invalid, expired, or revoked")
        failure = self._take_failure(SENDGRID, _sendgrid_recipient(request.data))
        self._wait(failure)
        if failure is not None and failure.drop:
            return DROPPED, {}, None
        if failure is not None and failure.status is not None:
            status = failure.status
            headers: dict[str, str] = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = _seconds(failure.retry_after)
            if status == 429:
                headers.update(
                    {
                        "X-RateLimit-Limit": "600",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(int(time.time() + (failure.retry_after or 1))),
                    }
                )
                default = "too many requests"
            elif status >= 500:
                default = "internal server error"
            else:
                default = (
                    "The from address does not match a verified Sender Identity. Mail cannot be"
                    " sent until this error is resolved."
                )
            field_name = failure.field if failure.field is not None else None
            if status < 500 and status != 429 and failure.field is None:
                field_name = "from"
            code, _, body = error(status, failure.message or default, field_name)
            return code, headers, body
        if request.validation_errors:
            first = request.validation_errors[0]
            where = first.split(":", 1)[0]
            field_name = where.removeprefix("body").lstrip(".") or None
            return error(400, first, field_name if where.startswith("body") else None)
        if failure is not None and not failure.message_id:
            return 202, {}, None
        message_id = "".join(secrets.choice(_MESSAGE_ID_ALPHABET) for _ in range(22))
        request.message_id = message_id
        return 202, {"X-Message-Id": message_id}, None

    # Twilio ----------------------------------------------------------------------------------

    def _twilio(self, request: ReceivedRequest, params: dict[str, str]) -> Response:
        form = request.data if isinstance(request.data, dict) else {}
        if request.data is not None and not request.deferred:
            request.validation_errors.extend(_twilio_rules(form))

        def error(status: int, code: int, message: str) -> Response:
            return (
                status,
                {},
                {
                    "code": code,
                    "message": message,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}",
                    "status": status,
                },
            )

        user, password = _basic_auth(request.header("Authorization"))
        account_sid = params.get("AccountSid", "")
        if user is None or user != account_sid or user != self.twilio_account_sid:
            return error(401, 20003, "Authenticate")
        if self.twilio_auth_token is not None and password != self.twilio_auth_token:
            return error(401, 20003, "Authenticate")
        failure = self._take_failure(TWILIO, str(form.get("To", "")) or None)
        self._wait(failure)
        if failure is not None and failure.drop:
            return DROPPED, {}, None
        if failure is not None and failure.status is not None:
            status = failure.status
            headers: dict[str, str] = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = _seconds(failure.retry_after)
            if status == 429:
                code, default = 20429, "Too Many Requests"
            elif status >= 500:
                code, default = 20500, "An internal server error has occurred"
            elif status == 400:
                to = form.get("To", "")
                code, default = 21211, f"The 'To' number {to} is not a valid phone number."
            else:
                code, default = status * 100, f"HTTP {status}"
            status, _, body = error(status, failure.code or code, failure.message or default)
            return status, headers, body
        if request.validation_errors:
            return error(400, 21604, request.validation_errors[0])
        sid = "SM" + uuid.uuid4().hex
        request.message_id = sid
        now = format_datetime(datetime.now(UTC))
        body_text = str(form.get("Body", ""))
        service = form.get("MessagingServiceSid")
        message = {
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "body": body_text,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(_segments(body_text)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not form.get("From") else "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"
            },
            "to": form.get("To"),
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        }
        return 201, {}, message


def _unchecked(body: bytes) -> Any:
    """A body decoded without its description (deferred validation): JSON, else form fields
    (one value as a string, repeated ones as a list)."""
    try:
        return json.loads(body)
    except ValueError:
        pass
    fields = parse_qs(body.decode("ascii", "replace"), keep_blank_values=True)
    return {name: values[0] if len(values) == 1 else values for name, values in fields.items()}


def _sendgrid_recipient(data: Any) -> str | None:
    try:
        return str(data["personalizations"][0]["to"][0]["email"])
    except (KeyError, IndexError, TypeError):
        return None


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _basic_auth(header: str | None) -> tuple[str | None, str | None]:
    if not header or not header.startswith("Basic "):
        return None, None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return user, password


def _segments(body: str) -> int:
    """Rough SMS segment count (GSM-7 if ASCII, else UCS-2), as Twilio reports it."""
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else math.ceil(len(body) / multi)


_SENDGRID_RESERVED_HEADERS = {
    "x-sg-id",
    "x-sg-eid",
    "received",
    "dkim-signature",
    "content-type",
    "content-transfer-encoding",
    "to",
    "from",
    "subject",
    "reply-to",
    "cc",
    "bcc",
}


def _sendgrid_rules(body: dict[str, Any]) -> list[str]:
    """SendGrid's documented Mail Send rules that the JSON schema does not express."""
    errors = []
    personalizations = body.get("personalizations")
    if isinstance(personalizations, list):
        if not personalizations:
            errors.append("body.personalizations: at least one personalization is required")
        for index, item in enumerate(personalizations):
            if isinstance(item, dict) and not item.get("to"):
                errors.append(f"body.personalizations[{index}].to: at least one recipient")
            args = item.get("custom_args") if isinstance(item, dict) else None
            if isinstance(args, dict):
                for key, value in args.items():
                    if not isinstance(value, str):
                        errors.append(
                            f"body.personalizations[{index}].custom_args.{key}: must be a string"
                        )
    if "template_id" not in body:
        has_subject = "subject" in body or all(
            isinstance(p, dict) and "subject" in p for p in personalizations or []
        )
        if not has_subject:
            errors.append("body.subject: required unless every personalization has one")
        if not body.get("content"):
            errors.append("body.content: at least one content part is required")
    content = body.get("content")
    if isinstance(content, list):
        types = [c.get("type") for c in content if isinstance(c, dict)]
        if "text/plain" in types and types[0] != "text/plain":
            errors.append("body.content: text/plain must be the first content part")
        if len(set(types)) != len(types):
            errors.append("body.content: each content type at most once")
    headers = body.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if name.lower() in _SENDGRID_RESERVED_HEADERS:
                errors.append(f"body.headers.{name}: this header cannot be set")
            if not isinstance(value, str):
                errors.append(f"body.headers.{name}: must be a string")
    return errors


def _twilio_rules(form: dict[str, Any]) -> list[str]:
    """Twilio's documented CreateMessage rules that the schema does not express."""
    errors = []
    if not form.get("From") and not form.get("MessagingServiceSid"):
        errors.append("body: a From or a MessagingServiceSid is required (Twilio error 21603)")
    if not form.get("Body") and not form.get("MediaUrl") and not form.get("ContentSid"):
        errors.append("body: a Body, MediaUrl or ContentSid is required (Twilio error 21602)")
    if len(str(form.get("Body", ""))) > 1600:
        errors.append("body.Body: more than 1600 characters (Twilio error 21617)")
    to = str(form.get("To", ""))
    if to and not (E164.match(to) or re.match(r"^[a-z]+:\+[1-9]\d{1,14}$", to)):
        errors.append(f"body.To: {to!r} is not an E.164 number (Twilio error 21211)")
    callback = form.get("StatusCallback")
    if isinstance(callback, str) and "_" in urlsplit(callback).netloc:
        errors.append("body.StatusCallback: underscores are not allowed in the host name")
    return errors


def _handler_for(standin: ProviderStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "RapportProviderStandIn/1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {key: value for key, value in self.headers.items()}
            status, response_headers, payload = standin.handle(
                self.command, self.path, headers, body
            )
            if status == DROPPED:
                self.close_connection = True
                return
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            for key, value in response_headers.items():
                self.send_header(key, value)
            if payload is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


# --------------------------------------------------------------------------------------------
# pytest
# --------------------------------------------------------------------------------------------


@pytest.fixture
def provider_standin() -> Iterator[ProviderStandIn]:
    """A running stand-in; the test fails if any request it received did not validate."""
    with ProviderStandIn() as standin:
        yield standin
        errors = standin.validation_errors
    if errors:
        pytest.fail(
            "requests to the provider stand-in did not conform to the provider API:\n  "
            + "\n  ".join(errors),
            pytrace=False,
        )


__all__ = [
    "DROPPED",
    "FAKE_SENDGRID_API_KEY",
    "FAKE_TWILIO_ACCOUNT_SID",
    "FAKE_TWILIO_AUTH_TOKEN",
    "FAKE_TWILIO_FROM",
    "FAKE_TWILIO_MESSAGING_SERVICE_SID",
    "Failure",
    "OpenApiOperation",
    "ProviderStandIn",
    "ReceivedRequest",
    "Storm",
    "provider_standin",
]
