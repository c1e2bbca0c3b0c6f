"""Logs as JSON lines (`RAPPORT_LOG_FORMAT=json`), each record of an activity carrying the run it
belongs to: `workflow_id`, `run_id`, `journey`, `contact_id` (and `activity`).

An activity interceptor (`RunLogContext`) puts the run into a context variable for the time of
the activity, and logs each send's outcome; the formatter adds whatever run is in context, or
the Temporal SDK's own `temporal_workflow`/`temporal_activity` extras, to every record.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from workflows.contracts import SendOutcome, SendRequest

RUN: ContextVar[dict[str, str] | None] = ContextVar("rapport_run", default=None)
sends_log = logging.getLogger("rapport.sends")


def run_fields(workflow_id: str, run_id: str, args: Any = ()) -> dict[str, str]:
    """The run's ids; `contact_id` and `journey` from the activity's argument when it names
    them, else from the workflow id (`journey:<journey>:<contact>[:<key>]`)."""
    fields = {"workflow_id": workflow_id, "run_id": run_id}
    parts = workflow_id.split(":")
    if len(parts) >= 3 and parts[0] == "journey":
        fields.update(journey=parts[1], contact_id=parts[2])
    [argument] = args if len(args) == 1 else [None]
    for name in ("journey", "contact_id"):
        value = getattr(argument, name, None)
        if isinstance(value, str):
            fields[name] = value
    return fields


class RunLogContext(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _RunActivity(next)


class _RunActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        fields = run_fields(info.workflow_id or "", info.workflow_run_id or "", input.args)
        token = RUN.set({**fields, "activity": info.activity_type})
        try:
            result = await super().execute_activity(input)
            [request] = input.args if len(input.args) == 1 else [None]
            if isinstance(request, SendRequest) and isinstance(result, SendOutcome):
                sends_log.info(
                    "%s %s: %s%s",
                    request.channel or info.activity_type.removeprefix("send_"),
                    request.step_id,
                    result.status,
                    f" ({result.reason})" if result.reason else "",
                )
            return result
        finally:
            RUN.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, the run's ids when known,
    and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(RUN.get() or self._sdk_run(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)

    @staticmethod
    def _sdk_run(record: logging.LogRecord) -> dict[str, str]:
        # workflow.logger and activity.logger put the run in these extras.
        for extra in ("temporal_workflow", "temporal_activity"):
            details = getattr(record, extra, None)
            if isinstance(details, dict) and details.get("workflow_id"):
                run_id = details.get("run_id") or details.get("workflow_run_id") or ""
                return run_fields(str(details["workflow_id"]), str(run_id))
        return {}


def json_handler(stream: Any) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler
