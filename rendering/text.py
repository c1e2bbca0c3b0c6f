"""Plain text from email HTML, for templates without a `.text.j2` part.

Drops `<head>`, `<style>`, `<script>` and hidden elements (the preheader), turns paragraphs and
other blocks into blank-line separated paragraphs, `<br>` into line breaks, list items into
`- item` lines, table rows into lines and links into `text (url)`; collapses whitespace.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP = {"head", "style", "script", "title", "template", "noscript"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}  # fmt: skip
_BLOCK = {
    "p", "div", "table", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote",
    "section", "article", "header", "footer", "main", "nav", "aside", "pre", "hr", "address",
    "center", "body", "html", "dl", "dt", "dd", "figure", "figcaption", "tbody", "thead",
}  # fmt: skip
# Break markers, resolved after whitespace is collapsed: a block needs a blank line before the
# next text, a row or list item a line break; each <br> adds one line break.
_PARAGRAPH = "\x00P"
_LINE = "\x00L"
_BR = "\x00B"
_MARKER = re.compile("(\x00[PLB])")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all", re.I)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip_depth = 0  # inside head/style/script or a hidden element
        self.skip_stack: list[str] = []
        self.links: list[tuple[str, int]] = []  # (href, index in out where the link text starts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        if self.skip_depth:
            if tag not in _VOID:
                self.skip_stack.append(tag)
                self.skip_depth += 1
            return
        hidden = (
            "hidden" in attributes
            or attributes.get("aria-hidden") == "true"
            or bool(_HIDDEN_STYLE.search(attributes.get("style", "")))
        )
        if tag in _SKIP or (hidden and tag not in _VOID):
            self.skip_stack.append(tag)
            self.skip_depth = 1
            return
        if tag == "br":
            self.out.append(_BR)
        elif tag == "li":
            self.out.append(_LINE + "- ")
        elif tag == "tr":
            self.out.append(_LINE)
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCK:
            self.out.append(_PARAGRAPH)
        elif tag == "a":
            self.links.append((attributes.get("href", "").strip(), len(self.out)))
        elif tag == "img" and attributes.get("alt"):
            self.out.append(attributes["alt"])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            # Close up to the matching open tag (tolerates unclosed inner tags).
            if tag in self.skip_stack:
                while self.skip_stack:
                    self.skip_depth -= 1
                    if self.skip_stack.pop() == tag:
                        break
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = re.sub(r"\s+", " ", "".join(self.out[start:]).replace("\x00", "")).strip()
            if href and not href.startswith(("#", "javascript:")):
                shown = href.removeprefix("mailto:").removeprefix("tel:")
                if label and label not in (href, shown):
                    self.out.append(f" ({shown})")
                elif not label:
                    self.out.append(shown)
        elif tag in ("li", "tr"):
            self.out.append(_LINE)
        elif tag in _BLOCK:
            self.out.append(_PARAGRAPH)

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML email."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    raw = re.sub(r"[ \t\r\n\f\v]+", " ", "".join(parser.out))  # collapse (keeps nbsp)
    pieces: list[str] = []
    pending = 0  # line breaks owed before the next text
    for part in _MARKER.split(raw):
        if part == _PARAGRAPH:
            pending = max(pending, 2)
        elif part == _LINE:
            pending = max(pending, 1)
        elif part == _BR:
            pending = min(pending + 1, 2)
        elif part.strip(" "):
            if pieces and pending:
                pieces[-1] = pieces[-1].rstrip(" ")
                pieces.append("\n" * pending)
                part = part.lstrip(" ")
            elif not pieces:
                part = part.lstrip(" ")
            pieces.append(part)
            pending = 0
    text = "".join(pieces).rstrip(" ")
    return f"{text}\n" if text else ""
