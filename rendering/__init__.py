"""Message templates (SPEC §4): collecting, checking, rendering email and SMS."""

from rendering.bundle import TemplateBundle, TemplateNotFound, collect_template
from rendering.lints import lint_template
from rendering.render import RenderedEmail, RenderedSms, RenderError, render_email, render_sms
from rendering.sms import SmsSegments, count_segments

__all__ = [
    "RenderError",
    "RenderedEmail",
    "RenderedSms",
    "SmsSegments",
    "TemplateBundle",
    "TemplateNotFound",
    "collect_template",
    "count_segments",
    "lint_template",
    "render_email",
    "render_sms",
]
