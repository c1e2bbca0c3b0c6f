"""Plain text derived from email HTML."""

from __future__ import annotations

from rendering.text import html_to_text


def test_paragraphs_become_blank_line_separated() -> None:
    assert html_to_text("<p>One</p><p>Two</p>") == "One\n\nTwo\n"


def test_br_becomes_a_line_break() -> None:
    assert html_to_text("<p>Warmly,<br>The team</p>") == "Warmly,\nThe team\n"


def test_links_show_their_url() -> None:
    assert html_to_text('<p><a href="https://x.example/shop">Shop now</a></p>') == (
        "Shop now (https://x.example/shop)\n"
    )


def test_link_whose_text_is_its_url_is_not_repeated() -> None:
    assert html_to_text('<a href="https://x.example">https://x.example</a>') == (
        "https://x.example\n"
    )


def test_mailto_links_show_the_address() -> None:
    assert html_to_text('<a href="mailto:care@x.example">Write to us</a>') == (
        "Write to us (care@x.example)\n"
    )


def test_head_style_and_script_are_dropped() -> None:
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head>"
        "<body><script>alert(1)</script><p>Body</p></body></html>"
    )
    assert html_to_text(html) == "Body\n"


def test_hidden_preheader_is_dropped() -> None:
    html = '<div style="display: none; max-height:0">Preview text</div><p>Visible</p>'
    assert html_to_text(html) == "Visible\n"


def test_whitespace_is_collapsed() -> None:
    assert html_to_text("<p>\n   Hello\n      world   </p>\n\n\n<p>again</p>") == (
        "Hello world\n\nagain\n"
    )


def test_entities_are_decoded() -> None:
    assert html_to_text("<p>Tom &amp; Jerry &middot; &lt;3</p>") == "Tom & Jerry · <3\n"


def test_list_items_become_dashed_lines() -> None:
    assert html_to_text("<ul><li>One</li><li>Two</li></ul>") == "- One\n- Two\n"


def test_table_rows_become_lines() -> None:
    html = (
        "<table><tr><td>When</td><td>Friday</td></tr><tr><td>Where</td><td>Here</td></tr></table>"
    )
    assert html_to_text(html) == "When Friday\nWhere Here\n"


def test_empty_html_gives_empty_text() -> None:
    assert html_to_text("<html><head><title>x</title></head></html>") == ""
