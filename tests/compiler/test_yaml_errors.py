"""YAML problems: reported at the line (and column) the file has them, never as a traceback."""

from __future__ import annotations

from tests.compiler.conftest import HEAD, Project


def test_yaml_syntax_error_points_at_the_line(project: Project) -> None:
    text = HEAD.replace("event: signed_up", "event: [signed_up") + "  - exit: completed\n"
    assert project.errors(text) == [
        "journeys/test.yaml:4:6: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)"
    ]


def test_a_step_key_indented_one_space_less_is_reported_at_its_line(project: Project) -> None:
    text = HEAD + "  - id: welcome\n    send: email\n   template: onboarding/welcome\n"
    assert project.errors(text) == [
        "journeys/test.yaml:7:4: YAML syntax error: bad indentation: this line does not line up "
        "with the lines above it"
    ]


def test_a_top_level_key_indented_one_space_less_is_reported_at_its_line(
    project: Project,
) -> None:
    text = "name: Test\ntrigger:\n  event: signed_up\n when: contact.vip\nsteps:\n  - exit: done\n"
    assert project.errors(text) == [
        "journeys/test.yaml:4:2: YAML syntax error: bad indentation: this line does not line up "
        "with the lines above it"
    ]


def test_a_key_indented_one_space_more_is_reported_at_its_line(project: Project) -> None:
    text = HEAD + "  - id: welcome\n    send: email\n     template: onboarding/welcome\n"
    assert project.errors(text) == [
        "journeys/test.yaml:7:14: YAML syntax error: mapping values are not allowed here; "
        "check the indentation of this line, or quote a value that contains ': '"
    ]


def test_a_tab_in_the_indentation_is_reported(project: Project) -> None:
    text = "name: Test\ntrigger:\n\tevent: signed_up\nsteps:\n  - exit: done\n"
    assert project.errors(text) == [
        "journeys/test.yaml:3:1: YAML syntax error: found character '\\t' that cannot start any "
        "token (while scanning for the next token)"
    ]


def test_an_unclosed_quote_is_reported_where_it_opens(project: Project) -> None:
    text = 'name: "Test\ntrigger: manual\nsteps:\n  - exit: done\n'
    assert project.errors(text) == [
        "journeys/test.yaml:1:7: YAML syntax error: unclosed quote: this string has no closing "
        "quote"
    ]


def test_a_duplicate_key_is_reported_at_the_second_one(project: Project) -> None:
    text = (
        HEAD
        + "  - id: welcome\n    send: email\n    template: onboarding/welcome\n"
        + ("    template: onboarding/tips\n")
    )
    assert project.errors(text) == ["journeys/test.yaml:8:5: duplicate key 'template'"]


def test_a_duplicate_top_level_key_is_reported(project: Project) -> None:
    text = HEAD + "  - exit: completed\nname: Again\n"
    assert project.errors(text) == ["journeys/test.yaml:6:1: duplicate key 'name'"]


def test_an_unquoted_template_value_is_reported_once(project: Project) -> None:
    text = HEAD + (
        "  - send: email\n    template: onboarding/welcome\n    to: {{ contact.email }}\n"
    )
    assert project.errors(text) == [
        "journeys/test.yaml:7:9: put {{ … }} in quotes: YAML reads an unquoted {{ … }} as a "
        'mapping, e.g. to: "{{ contact.email }}"'
    ]


def test_an_empty_file_is_not_a_journey(project: Project) -> None:
    assert project.errors("# nothing yet\n") == [
        "journeys/test.yaml:1:1: a journey is a mapping with at least `name`, `trigger` and `steps`"
    ]


def test_a_list_at_the_top_is_not_a_journey(project: Project) -> None:
    assert project.errors("- send: email\n") == [
        "journeys/test.yaml:1:1: a journey is a mapping with at least `name`, `trigger` and `steps`"
    ]


def test_a_missing_file_is_reported(project: Project) -> None:
    _, found = project.compile("absent")
    assert [str(d) for d in found] == ["journeys/absent.yaml:1:1: no such file"]


def test_a_value_with_a_bad_tag_is_reported_at_the_value(project: Project) -> None:
    text = HEAD + "  - wait: !!int 2d\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:11: YAML error: invalid literal for int() with base 10: '2d'"
    ]


def test_an_unknown_tag_is_reported_at_the_value(project: Project) -> None:
    text = HEAD + "  - exit: !!python/name:os.system\n"
    assert project.errors(text) == [
        "journeys/test.yaml:5:11: YAML error: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/name:os.system'"
    ]
