"""Project configuration from the environment and `.env`, via pydantic-settings (SPEC §9)."""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(Path(".rapport"), validation_alias="RAPPORT_DATA_DIR")
    journeys_dir: Path = Field(Path("journeys"), validation_alias="RAPPORT_JOURNEYS_DIR")
    templates_dir: Path = Field(Path("templates"), validation_alias="RAPPORT_TEMPLATES_DIR")
    contacts_dir: Path = Field(Path("contacts"), validation_alias="RAPPORT_CONTACTS_DIR")
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
    secret: SecretStr = Field(
        SecretStr("rapport-dev-secret-change-me"), validation_alias="RAPPORT_SECRET"
    )
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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
