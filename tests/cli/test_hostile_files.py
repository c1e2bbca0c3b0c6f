"""Journey files built to exhaust the machine (issue 14 items 5 and 6): `rapport validate` reports
each as a diagnostic and exits 1, without a traceback, and without using much memory."""

from __future__ import annotations

import resource
import subprocess

from tests.cli.conftest import RAPPORT, Project

BILLION_LAUGHS = """\
name: Laughs
trigger: manual
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
steps:
  - exit: completed
"""

CYCLE = """\
name: Cycle
trigger: manual
data:
  loop: &loop
    - 1
    - *loop
steps:
  - exit: completed
"""

DEEP = "name: Deep\ntrigger: manual\ndata:\n  x: " + "[" * 5000 + "]" * 5000 + "\nsteps: []\n"
HUGE = "name: Huge\ntrigger: manual\nsteps:\n  - exit: completed\n" + "#" * 1_000_000 + "\n"
MEMORY_LIMIT = 1_500_000_000  # bytes of address space: far more than validate needs


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def validate(project: Project, *files: str) -> subprocess.CompletedProcess[str]:
    """`rapport validate FILES` in the project, with its memory bounded (a bomb fails fast)."""
    return subprocess.run(
        [*RAPPORT, "validate", *files],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=_limited,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_alias_bombs_cycles_deep_nesting_and_huge_files_are_diagnostics(project: Project) -> None:
    project.write("journeys/laughs.yaml", BILLION_LAUGHS)
    project.write("journeys/cycle.yaml", CYCLE)
    (project.root / "journeys" / "deep.yaml").write_text(DEEP)
    (project.root / "journeys" / "huge.yaml").write_text(HUGE)
    result = validate(
        project, "journeys/laughs.yaml", "journeys/cycle.yaml", "journeys/deep.yaml",
        "journeys/huge.yaml",
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines() == [  # in file name order
        "journeys/cycle.yaml:6:7: YAML alias refers to a mapping or list that contains it "
        "(a cycle)",
        "journeys/deep.yaml:4:1352: YAML nested too deeply: at most 64 levels of mappings and "
        "lists",
        "journeys/huge.yaml:1:1: the file is 1,000,055 bytes; files here are read up to 1 MB "
        "(1,000,000 bytes)",
        "journeys/laughs.yaml:9:10: YAML aliases expand to more than 100,000 values here "
        "(an alias bomb?); write the values out instead of nesting aliases",
    ]
    assert result.stdout == "0 journey(s) valid, 4 error(s), 0 warning(s)\n"


EXPENSIVE = """\
name: Expensive
trigger:
  event: signed_up
  when: 9**(9**9) > 1
steps:
  - id: check
    branch:
      - when: '"a" * 10**9 == "b"'
        goto: deep
    else: deep
  - id: deep
    branch:
      - when: NESTED > 0
        goto: sms
    else: sms
  - id: sms
    send: sms
    template: boom/hi
""".replace("NESTED", "(" * 40 + "1" + ")" * 40)


def test_expressions_too_expensive_to_compute_are_diagnostics(project: Project) -> None:
    project.write("journeys/expensive.yaml", EXPENSIVE)
    project.write("templates/boom/hi.sms.j2", "Hi {{ range(10**9) | list | length }}!\n")
    result = validate(project, "journeys/expensive.yaml")
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "journeys/expensive.yaml:4:9: invalid expression: 9 ** 387420489 is too large "
        "(about 1,549,681,956 bits; at most 4,096)",
        "journeys/expensive.yaml:8:15: invalid expression: repeating a value would make "
        "1,000,000,000 characters or items; at most 1,000,000 are allowed",
        "journeys/expensive.yaml:13:15: invalid expression: nested too deeply: 40 levels of "
        "brackets (at most 32)",
        "templates/boom/hi.sms.j2:1:1: range() would make 1,000,000,000 items; at most 10,000 "
        "are allowed",
    ]
    assert result.stdout == "0 journey(s) valid, 4 error(s), 0 warning(s)\n"
