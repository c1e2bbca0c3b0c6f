"""Project configuration from the environment and `.env`, via pydantic-settings (SPEC §9)."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterable
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from errors import ConfigurationError

# The public development value of RAPPORT_SECRET: anyone can sign unsubscribe tokens with it, so
# only a server whose public URL is this machine may use it (`Settings.serving_problems`).
DEV_SECRET = "rapport-dev-secret-change-me"
MIN_ADMIN_TOKEN_BYTES = 16
MIN_SECRET_BYTES = 32
DEV_SERVER_DB_NAME = "temporal.db"


def is_loopback_host(host: str | None) -> bool:
    """Whether a host name or address (an IP with or without brackets or zone, or `localhost`)
    is this machine's loopback interface."""
    if not host:
        return False
    name = host.strip().strip("[]").split("%", 1)[0].rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path(".rapport"), validation_alias="RAPPORT_DATA_DIR")
    journeys_dir: Path = Field(Path("journeys"), validation_alias="RAPPORT_JOURNEYS_DIR")
    templates_dir: Path = Field(Path("templates"), validation_alias="RAPPORT_TEMPLATES_DIR")
    contacts_dir: Path = Field(Path("contacts"), validation_alias="RAPPORT_CONTACTS_DIR")
    traits_dir: Path = Field(Path("traits"), validation_alias="RAPPORT_TRAITS_DIR")
    database_url: str | None = Field(None, validation_alias="RAPPORT_DATABASE_URL")

    temporal_address: str | None = Field(None, validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field("default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_task_queue: str = Field("rapport", validation_alias="TEMPORAL_TASK_QUEUE")
    temporal_api_key: SecretStr | None = Field(None, validation_alias="TEMPORAL_API_KEY")
    temporal_tls_cert: Path | None = Field(None, validation_alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(None, validation_alias="TEMPORAL_TLS_KEY")

    sendgrid_api_key: SecretStr | None = Field(None, validation_alias="SENDGRID_API_KEY")
    sendgrid_api_host: str = Field("https://api.sendgrid.com", validation_alias="SENDGRID_API_HOST")
    sendgrid_webhook_public_key: str | None = Field(
        None, validation_alias="SENDGRID_WEBHOOK_PUBLIC_KEY"
    )
    twilio_account_sid: str | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: SecretStr | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN")
    twilio_api_base: str = Field("https://api.twilio.com", validation_alias="TWILIO_API_BASE")
    twilio_from: str | None = Field(None, validation_alias="TWILIO_FROM")
    twilio_messaging_service_sid: str | None = Field(
        None, validation_alias="TWILIO_MESSAGING_SERVICE_SID"
    )

    write_keys: str = Field("", validation_alias="RAPPORT_WRITE_KEYS")
    public_url: str = Field("http://127.0.0.1:8000", validation_alias="RAPPORT_PUBLIC_URL")
    secret: SecretStr = Field(SecretStr(DEV_SECRET), validation_alias="RAPPORT_SECRET")
    # The dashboard's sign-in token (SPEC §12); unset, /dashboard is off and says how to turn it on.
    admin_token: SecretStr | None = Field(None, validation_alias="RAPPORT_ADMIN_TOKEN")
    # Reverse proxies whose X-Forwarded-For/-Proto uvicorn may believe (comma-separated IPs or
    # networks, `*` for any); empty: forwarded headers are ignored, the peer is the client.
    trusted_proxies: str = Field("", validation_alias="RAPPORT_TRUSTED_PROXIES")
    email_from: str = Field(
        "Rapport <hello@rapport.example>", validation_alias="RAPPORT_EMAIL_FROM"
    )
    brand_name: str = Field("Rapport Coffee Co.", validation_alias="RAPPORT_BRAND_NAME")
    brand_url: str = Field("https://rapport.example", validation_alias="RAPPORT_BRAND_URL")
    brand_address: str = Field(
        "Rapport Coffee Co., 12 Harbour Street, Portsmouth PO1 2AB, United Kingdom",
        validation_alias="RAPPORT_BRAND_ADDRESS",
    )
    # Compliance (docs/compliance.md): the answer to an SMS "HELP" (default: brand, site, STOP
    # hint), the subscription topics the preferences page offers as `id:Label,id:Label` (a
    # journey's marketing sends belong to the topic in its `data.topic`), and the project-wide
    # marketing frequency cap for journeys that set none (e.g. `5 per 7d`).
    sms_help_text: str | None = Field(None, validation_alias="RAPPORT_SMS_HELP_TEXT")
    topics: str = Field("", validation_alias="RAPPORT_TOPICS")
    frequency_cap: str | None = Field(None, validation_alias="RAPPORT_FREQUENCY_CAP")
    # Loyalty measurement (SPEC §5b, §10): the order event and its revenue property, the NPS
    # answer event and its score property.
    order_event: str = Field("order_placed", validation_alias="RAPPORT_ORDER_EVENT")
    revenue_property: str = Field("total", validation_alias="RAPPORT_REVENUE_PROPERTY")
    nps_event: str = Field("nps_submitted", validation_alias="RAPPORT_NPS_EVENT")
    # History (SPEC §5b): an event older than this when it arrives is stored and counts in
    # traits and metrics, but starts no run and signals none.
    trigger_max_age: str = Field("24h", validation_alias="RAPPORT_TRIGGER_MAX_AGE")
    # Logs of `rapport run`, `worker` and `api` on stderr: `text` lines, or `json` lines that
    # carry the run's ids (docs/observability.md).
    log_format: str = Field("text", validation_alias="RAPPORT_LOG_FORMAT")
    # OpenTelemetry traces (docs/observability.md): `none`, `console`, or `otlp` (to
    # OTEL_EXPORTER_OTLP_ENDPOINT).
    otel_exporter: str = Field("none", validation_alias="RAPPORT_OTEL_EXPORTER")
    # Runs a worker keeps in memory between their workflow tasks (Temporal's sticky cache,
    # `max_cached_workflows`); a run not kept replays its history when it next wakes. ~90 KB
    # each: 2,500 keeps a worker with 10,000 runs parked near 410 MB (docs/performance.md).
    worker_cached_runs: int = Field(2500, ge=0, validation_alias="RAPPORT_WORKER_CACHED_RUNS")

    @field_validator("frequency_cap")
    @classmethod
    def _frequency_cap(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from workflows.durations import FrequencyCap

        FrequencyCap.parse(value)  # a DurationError (a ValueError) names the bad value
        return value.strip()

    @field_validator("trigger_max_age")
    @classmethod
    def _trigger_max_age(cls, value: str) -> str:
        from workflows.durations import parse_duration

        parse_duration(value)  # a DurationError (a ValueError) names the bad value
        return value.strip()

    def as_env(self) -> dict[str, str]:
        """These settings as the environment variables they are read from: what a child
        `rapport` process (`rapport run`'s workers) needs to run with exactly these values,
        whatever came from the command line, `.env` or defaults. Unset ones (None) are left
        out: give the child an environment without any of `variables()` first."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value is not None:
                env[str(info.validation_alias)] = str(value)
        return env

    @classmethod
    def variables(cls) -> frozenset[str]:
        """The environment variables settings are read from."""
        return frozenset(str(info.validation_alias) for info in cls.model_fields.values())

    @property
    def trigger_max_age_delta(self) -> timedelta:
        from workflows.durations import parse_duration

        return parse_duration(self.trigger_max_age)

    @property
    def database(self) -> str:
        """The SQLAlchemy URL: `RAPPORT_DATABASE_URL`, else a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{self.data_dir / 'rapport.db'}"

    @property
    def brand(self) -> dict[str, str]:
        """`brand.*` in templates: the sender's name, site and postal address (CAN-SPAM)."""
        return {"name": self.brand_name, "url": self.brand_url, "address": self.brand_address}

    @property
    def sms_help(self) -> str:
        """What an SMS "HELP" is answered with."""
        if self.sms_help_text and self.sms_help_text.strip():
            return self.sms_help_text.strip()
        return (
            f"{self.brand_name}: help at {self.brand_url}. Msg&data rates may apply. "
            "Reply STOP to opt out, START to opt back in."
        )

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def dev_server_db(self) -> Path:
        """The embedded Temporal dev server's SQLite file (`rapport run`)."""
        return self.data_dir / DEV_SERVER_DB_NAME

    @property
    def public_url_is_loopback(self) -> bool:
        return is_loopback_host(urlsplit(self.public_url.strip()).hostname)

    @property
    def write_key_list(self) -> tuple[str, ...]:
        return tuple(key.strip() for key in self.write_keys.split(",") if key.strip())

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [entry.strip() for entry in self.trusted_proxies.split(",") if entry.strip()]

    def secret_problem(self) -> str | None:
        """Why RAPPORT_SECRET must not sign or verify unsubscribe tokens here, if it must not:
        the public development value or a short one, unless the public URL is this machine."""
        if self.public_url_is_loopback:
            return None
        secret = self.secret.get_secret_value()
        if secret == DEV_SECRET:
            why = "is the public development value"
        elif len(secret.encode()) < MIN_SECRET_BYTES:
            why = f"is shorter than {MIN_SECRET_BYTES} bytes"
        else:
            return None
        return (
            f"RAPPORT_SECRET {why}, so anyone could forge unsubscribe links for "
            f"RAPPORT_PUBLIC_URL {self.public_url.strip()}: set it to a random value of at least "
            f"{MIN_SECRET_BYTES} bytes (e.g. python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')"
        )

    def configuration_problems(self) -> list[str]:
        """Every problem of the configuration, one line each naming the variable (`CHECKS`)."""
        return [problem for check in CHECKS for problem in check(self)]

    def serving_problems(self, *, api_host: str | None = None) -> list[str]:
        """What forbids starting a server that signs or verifies tokens (the worker, the API,
        the stack). With `api_host`, the interface an API will listen on: an API other
        machines can reach — it listens off loopback, or RAPPORT_PUBLIC_URL (where providers
        and people reach it, perhaps through a proxy or tunnel) is not this machine — needs
        write keys, as without them it trusts whoever seems to connect from this machine."""
        secret = self.secret_problem()
        problems = [secret] if secret else []
        if api_host is not None and not self.write_key_list:
            if not is_loopback_host(api_host):
                problems.append(
                    f"the API would listen on {api_host}, reachable from other machines, "
                    "without write keys: set RAPPORT_WRITE_KEYS (comma-separated), or listen on "
                    "127.0.0.1"
                )
            elif not self.public_url_is_loopback:
                problems.append(
                    f"RAPPORT_PUBLIC_URL {self.public_url.strip()} makes the API reachable "
                    "from other machines (through a proxy or tunnel), but RAPPORT_WRITE_KEYS "
                    "is not set: set write keys (comma-separated)"
                )
        if api_host is not None:
            problems += self.admin_token_problems()
        return problems

    def admin_token_problems(self) -> list[str]:
        """The dashboard's token must be hard to guess, and not also a write key (each opens
        only its own side: the dashboard, or the ingest API)."""
        token = self.admin_token.get_secret_value().strip() if self.admin_token else ""
        if not token:
            return []
        problems = []
        if len(token.encode()) < MIN_ADMIN_TOKEN_BYTES:
            problems.append(
                f"RAPPORT_ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_BYTES} bytes: use a long "
                "random value (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        if token in self.write_key_list:
            problems.append("RAPPORT_ADMIN_TOKEN is also one of RAPPORT_WRITE_KEYS: use another")
        return problems

    def check_serving(self, *, api_host: str | None = None) -> None:
        """`ConfigurationError` listing every `serving_problems`."""
        problems = self.serving_problems(api_host=api_host)
        if problems:
            raise ConfigurationError(problems)


# ---------------------------------------------------------------------------------------------
# Checks of the whole configuration, run when it is loaded (`get_settings`), before anything
# starts. Each takes the settings and yields its problems, one line each naming the variable;
# to check something more, write one and add it to `CHECKS`.
# ---------------------------------------------------------------------------------------------

Check = Callable[[Settings], Iterable[str]]


def http_base_url_problem(url: str, variable: str) -> str | None:
    """Why `url` is not an absolute http(s) base URL (no query or fragment), if it is not."""
    parts = urlsplit(url.strip())
    if (
        parts.scheme in ("http", "https")
        and parts.netloc
        and not parts.query
        and not parts.fragment
    ):
        return None
    return f"{variable} must be an http(s) base URL, e.g. https://host[:port]: {url!r}"


def port_problem(text: str) -> str | None:
    """Why `text` is not a TCP port, if it is not."""
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return "the port must be a number from 1 to 65535"
    return None


def check_twilio(settings: Settings) -> Iterable[str]:
    sid = settings.twilio_account_sid or None
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    if sid is None and not token:
        return
    if sid is None or not token:
        missing, present = (
            ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
            if sid is None
            else ("TWILIO_AUTH_TOKEN", "TWILIO_ACCOUNT_SID")
        )
        yield (
            f"{missing} is not set but {present} is: set both to send SMS through Twilio, "
            "or neither to use the local outbox"
        )
    elif not settings.twilio_from and not settings.twilio_messaging_service_sid:
        yield (
            "Twilio credentials are set but no sender: set TWILIO_FROM or "
            "TWILIO_MESSAGING_SERVICE_SID"
        )


def check_provider_urls(settings: Settings) -> Iterable[str]:
    for url, variable in (
        (settings.sendgrid_api_host, "SENDGRID_API_HOST"),
        (settings.twilio_api_base, "TWILIO_API_BASE"),
        (settings.public_url, "RAPPORT_PUBLIC_URL"),
    ):
        problem = http_base_url_problem(url, variable)
        if problem and variable == "RAPPORT_PUBLIC_URL":  # a path prefix is fine there
            parts = urlsplit(url.strip())
            problem = None if parts.scheme in ("http", "https") and parts.netloc else problem
        if problem:
            yield problem


def check_database_url(settings: Settings) -> Iterable[str]:
    if not settings.database_url:
        return
    from sqlalchemy.engine import make_url  # imported here: most commands never need it
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(settings.database_url)
        url.port  # noqa: B018 (parsed lazily: a port that is not a number raises here)
        url.get_dialect().import_dbapi()
    except (ArgumentError, ValueError):
        yield (
            "RAPPORT_DATABASE_URL is not a database URL: use e.g. "
            "postgresql+psycopg://user@127.0.0.1:5432/rapport or sqlite:///path/to/rapport.db"
        )
    except (NoSuchModuleError, ImportError):
        yield (
            f"RAPPORT_DATABASE_URL names a database this installation cannot use "
            f"({settings.database_url.split(':', 1)[0]!r}): use postgresql+psycopg:// or sqlite://"
        )


def check_temporal(settings: Settings) -> Iterable[str]:
    address = settings.temporal_address
    if address is not None:
        host, colon, port = address.strip().rpartition(":")
        problem = port_problem(port) if colon else "no port"
        if problem is None and not host.strip("[]"):
            problem = "no host"
        if problem:
            yield f"TEMPORAL_ADDRESS must be HOST:PORT like 127.0.0.1:7233 ({problem}): {address!r}"
    cert, key = settings.temporal_tls_cert, settings.temporal_tls_key
    if (cert is None) != (key is None):
        given, missing = ("TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY")
        if cert is None:
            given, missing = missing, given
        yield f"{missing} is not set but {given} is: mutual TLS needs both"
    for path, variable in ((cert, "TEMPORAL_TLS_CERT"), (key, "TEMPORAL_TLS_KEY")):
        if path is not None and not path.is_file():
            yield f"{variable}: no such file {str(path)!r}"


def check_trusted_proxies(settings: Settings) -> Iterable[str]:
    for entry in settings.trusted_proxy_list:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            yield (
                f"RAPPORT_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/8, or * for any)"
            )


LOG_FORMATS = ("text", "json")
OTEL_EXPORTERS = ("none", "console", "otlp")


def check_log_format(settings: Settings) -> Iterable[str]:
    if settings.log_format not in LOG_FORMATS:
        yield f"RAPPORT_LOG_FORMAT must be text or json: {settings.log_format!r}"
    if settings.otel_exporter not in OTEL_EXPORTERS:
        yield f"RAPPORT_OTEL_EXPORTER must be none, console or otlp: {settings.otel_exporter!r}"


CHECKS: list[Check] = [
    check_log_format,
    check_twilio,
    check_provider_urls,
    check_database_url,
    check_temporal,
    check_trusted_proxies,
]


def _validation_problem(error: ErrorDetails) -> str:
    variable = ".".join(str(part) for part in error["loc"]) or "configuration"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{variable}: {message}"


def check_ports(**ports: int) -> None:
    """`ConfigurationError` naming each option (`api_port` is `--api-port`) out of range."""
    problems = [
        f"--{option.replace('_', '-')}: {problem}"
        for option, port in ports.items()
        if (problem := port_problem(str(port)))
    ]
    if problems:
        raise ConfigurationError(problems)


def load_settings() -> Settings:
    """The settings from the environment and `.env`, checked whole: a
    `ConfigurationError` lists every problem (bad values, then what does not fit together)."""
    try:
        settings = Settings()
    except ValidationError as error:
        errors = error.errors(include_url=False)
        problems = [_validation_problem(e) for e in errors]
        # Check the rest too, the bad values at their defaults: every problem at once.
        bad = {str(e["loc"][0]) for e in errors if e["loc"]}
        defaults = {
            name: field.get_default(call_default_factory=True)
            for name, field in Settings.model_fields.items()
            if field.validation_alias in bad
        }
        # (A value pydantic could not tie to a field fails again: its problem is listed.)
        with contextlib.suppress(ValidationError):
            problems += Settings(**defaults).configuration_problems()
        raise ConfigurationError(problems) from None
    problems = settings.configuration_problems()
    if problems:
        raise ConfigurationError(problems)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
