"""`make bench`: the issue 13 figures in one run on one machine, written to `bench/results.json`.

Method (each part reuses a bench script; their docstrings have the details):

- `engine_overhead` — one Temporal dev server started as `rapport run` starts it (WAL SQLite,
  `start_latency.server_command`), one temporary SQLite store, the worker in this process. At
  C = 1 and then C = 8 lanes (each lane starts a run and waits for its mark before the next):
  (a) the empty yardstick (`start_latency.raw_phase`: start → its first activity started);
  (b) the hand-written workflow (`handwritten.py`: one activity loads the contact, renders
  `onboarding/welcome`, writes the outbox file and the ledger row; start → ledger row `sent`);
  (c) the engine (`start_latency.engine_phase`: `start_run` of `onboarding` → the welcome's
  ledger row `sent`). (a) and (b) on a worker with the engine worker's sandbox and options, (c)
  on `build_worker`'s; the heap settled before each phase as `rapport worker` settles it
  (`runtime.workers.settle_heap`). (b) and (c) run twice each, in the order b c c b, and each
  side's figures are over both of its phases (twice `runs` runs). Ratios: engine runs/s ÷
  hand-written runs/s (target ≥ 0.8), engine p99 ÷ hand-written p99 (target ≤ 1.25); and the
  same against the yardstick.
- `render` — `onboarding/welcome` (layout, components, filters, text part) rendered with
  `message_variables` for distinct contacts, in one thread: emails per CPU-second of this process
  (`time.process_time`), i.e. per core; the wall rate is recorded beside it. Target ≥ 2,000/s.
- `history_bytes` — `history_bytes.py`: each sample path's history JSON on the time-skipping
  server. Target (issue 8): ≤ 12 KB for `onboarding_converts`.
- `event_to_send`, `enrolment`, `waiting_runs`, `wake_up_capacity`, `scale_out` — on live
  processes (`rapport run`, `rapport worker`, the provider stand-in); each module's docstring
  has its method (`bench/event_to_send.py`, `bench/enrolment.py`, `bench/waiting_runs.py` for
  both of the wake-up figures: `waiting_runs` starts its 10,000 runs at a steady 20 a second,
  `wake_up_capacity` its 10,000 as fast as the engine takes them, `bench/scale_out.py`).
- `crash_restart` — `crash_restart.py`: the whole `rapport run` stack SIGKILLed mid-broadcast
  of 150 emails and started again; restart → the last message sent (issue 8: ≤ 30 s, exactly
  once).

The 1/5/15-minute load average is recorded before and after each figure: on a shared machine
it says how much of the CPU the bench had. Quick mode (`BENCH_QUICK=1` or `--quick`): fewer runs
and renders, a few minutes in all.

    make bench [BENCH_QUICK=1]        # or: .venv/bin/python bench/suite.py [--quick]
    .venv/bin/python bench/suite.py --only event_to_send [--only scale_out]   # some figures:
        # measured again and merged into the existing results.json (each figure has its date)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import crash_restart  # noqa: E402
import start_latency as sl  # noqa: E402
from enrolment import enrolment  # noqa: E402
from event_to_send import event_to_send  # noqa: E402
from handwritten import STEP_ID, HandwrittenWelcome, WelcomeActivity  # noqa: E402
from scale_out import scale_out  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402
from waiting_runs import waiting_runs  # noqa: E402

from providers import email_provider  # noqa: E402
from rendering.context import message_variables  # noqa: E402
from rendering.render import render_email  # noqa: E402
from runtime.stack import ChildProcess, wait_for_temporal  # noqa: E402
from runtime.workers import settle_heap, workflow_runner  # noqa: E402
from settings import Settings  # noqa: E402
from store import Store  # noqa: E402
from workflows.contracts import ContactSnapshot  # noqa: E402
from workflows.plan import template_key  # noqa: E402
from workflows.project import compile_project  # noqa: E402

RESULTS = ROOT / "bench" / "results.json"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


# --- engine_overhead ----------------------------------------------------------------------------


async def hand_phase(
    client: Client, store: Store, settings: Settings, contacts: list[str], warmup: int, lanes: int
) -> sl.Phase:
    """The hand-written workflow, timed from `start_workflow` to its ledger row `sent`."""
    phase = sl.Phase(mark="ledger row sent")
    loop = asyncio.get_running_loop()
    plan = compile_project(settings).plans[sl.JOURNEY]
    bundle = plan.templates[template_key("email", "onboarding/welcome")]
    welcome = WelcomeActivity(store, bundle, email_provider(settings), settings)
    sent: dict[str, asyncio.Future[float]] = {}
    mark_sent = store.ledger.mark_sent

    def timed_mark_sent(*args: Any, **kwargs: Any) -> Any:
        entry = mark_sent(*args, **kwargs)
        waiter = sent.get(entry.contact_id)
        if waiter is not None and entry.step_id == STEP_ID:
            loop.call_soon_threadsafe(sl._resolve, waiter, time.perf_counter())
        return entry

    store.ledger.mark_sent = timed_mark_sent  # type: ignore[method-assign]
    task_queue = "rapport-bench-hand"

    async def one(contact_id: str, record: bool) -> None:
        sent[contact_id] = loop.create_future()
        started = time.perf_counter()
        await client.start_workflow(
            HandwrittenWelcome.run, contact_id, id=f"hand-{contact_id}", task_queue=task_queue
        )
        done = await asyncio.wait_for(sent[contact_id], 60)
        if record:
            phase.add(started, {"ledger row sent": done})

    try:
        async with Worker(
            client,
            task_queue=task_queue,
            workflows=[HandwrittenWelcome],
            activities=[welcome.send_welcome],
            workflow_runner=workflow_runner(),  # the engine worker's sandbox and options
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
            max_concurrent_activities=64,
        ):
            await sl.lanes(contacts[:warmup], lanes, lambda c: one(c, False))
            await sl.lanes(contacts[warmup:], lanes, lambda c: one(c, True))
    finally:
        store.ledger.mark_sent = mark_sent  # type: ignore[method-assign]
    return phase


def pooled(phases: list[sl.Phase]) -> dict[str, Any]:
    """Runs/s, p50 and p99 over one or more phases of the same kind: their runs together, their
    rate the runs over the phases' measured time together; each phase's own rate beside it."""
    values = [value for phase in phases for value in phase.series[phase.mark]]
    seconds = sum(phase.last_mark - phase.first_start for phase in phases)
    return {
        "runs": len(values),
        "runs_per_s": round(len(values) / seconds, 2),
        "p50_ms": round(sl.pct(values, 50) * 1000, 1),
        "p99_ms": round(sl.pct(values, 99) * 1000, 1),
        "runs_per_s_by_phase": [round(phase.per_s, 2) for phase in phases],
    }


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else float("nan")


async def engine_overhead(runs: int, tmp: Path) -> dict[str, Any]:
    port, ui_port = sl.free_port(), sl.free_port()
    address = f"{sl.HOST}:{port}"
    settings = sl.settings_for(tmp, address)
    server = ChildProcess(
        "Temporal dev server", sl.server_command("wal", tmp, port, ui_port), tmp / "temporal.log"
    )
    server.start()
    store: Store | None = None
    by_lanes: dict[str, Any] = {}
    try:
        client = await wait_for_temporal(settings, address, server)
        starts = sl.ActivityStarts()
        config = client.config()
        config["interceptors"] = [*config["interceptors"], starts]
        client = Client(**config)
        store = Store.open(settings.database)
        for lanes in (1, 8):
            warmup = max(10, 2 * lanes)
            load_before = load_average()
            settle_heap()  # as the composition roots do before their worker runs
            raw = await sl.raw_phase(client, starts, runs, warmup, lanes)
            hands: list[sl.Phase] = []
            engines: list[sl.Phase] = []
            # Hand-written and engine in turn, A B B A: the machine's drift over the minute
            # falls on both alike, and each p99 is over 2 x `runs` runs (the p99 of one phase
            # of 200 is its second-slowest run, which varied more between runs than the gap).
            for which in ("hand", "engine", "engine", "hand"):
                settle_heap()
                contacts = sl.seed(store, runs + warmup)
                if which == "hand":
                    hands.append(await hand_phase(client, store, settings, contacts, warmup, lanes))
                else:
                    engines.append(
                        await sl.engine_phase(
                            client, starts, store, settings, contacts, warmup, lanes
                        )
                    )
            e, h, r = pooled(engines), pooled(hands), pooled([raw])
            by_lanes[f"C={lanes}"] = {
                "engine": e,
                "handwritten": h,
                "yardstick": r,
                "vs_handwritten": {
                    "runs_per_s_ratio": ratio(e["runs_per_s"], h["runs_per_s"]),
                    "p99_ratio": ratio(e["p99_ms"], h["p99_ms"]),
                },
                "vs_yardstick": {
                    "runs_per_s_ratio": ratio(e["runs_per_s"], r["runs_per_s"]),
                    "p99_ratio": ratio(e["p99_ms"], r["p99_ms"]),
                },
                "load_average": {"before": load_before, "after": load_average()},
            }
    finally:
        if store is not None:
            store.close()
        server.stop()
    met = all(
        figures["vs_handwritten"]["runs_per_s_ratio"] >= 0.8
        and figures["vs_handwritten"]["p99_ratio"] <= 1.25
        for figures in by_lanes.values()
    )
    return {
        "target": "engine ÷ hand-written: runs/s ratio ≥ 0.8 and p99 ratio ≤ 1.25, at C=1 and C=8",
        "met": met,
        "measured_runs_per_phase": runs,
        "phases": "yardstick once; hand-written and engine twice each (b c c b), pooled",
        "mark": "engine and hand-written: start call → welcome ledger row sent; "
        "yardstick: start call → first activity started",
        **by_lanes,
    }


# --- render -----------------------------------------------------------------------------------


def render(count: int, tmp: Path) -> dict[str, Any]:
    settings = sl.settings_for(tmp, "127.0.0.1:0")
    plan = compile_project(settings).plans[sl.JOURNEY]
    bundle = plan.templates[template_key("email", "onboarding/welcome")].for_locale("en_US")
    now = datetime.now(UTC)
    snapshots = [
        ContactSnapshot(
            found=True,
            contact={
                "id": f"render-{n}",
                "email": f"render-{n}@example.com",
                "first_name": f"Alice{n}",
                "plan": ("starter", "pro", "team")[n % 3],
                "locale": "en_US",
                "timezone": "America/New_York",
            },
        )
        for n in range(count)
    ]
    load_before = load_average()

    def one(snapshot: ContactSnapshot) -> None:
        variables = message_variables(
            snapshot,
            journey_data={},
            trigger=None,
            steps={},
            now=now,
            settings=settings,
            message_key=f"render:{uuid.uuid4().hex}",
        )
        render_email(bundle, variables, locale="en_US")

    one(snapshots[0])  # warm: template compilation is cached per bundle
    cpu, wall = time.process_time(), time.perf_counter()
    for snapshot in snapshots:
        one(snapshot)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    per_cpu_s = count / cpu
    return {
        "target": "≥ 2,000 personalised emails/s on one core",
        "met": per_cpu_s >= 2000,
        "emails": count,
        "emails_per_cpu_s": round(per_cpu_s, 1),
        "emails_per_wall_s": round(count / wall, 1),
        "load_average": {"before": load_before, "after": load_average()},
    }


# --- history_bytes ------------------------------------------------------------------------------


async def history_bytes() -> dict[str, Any]:
    from runtime.temporal import quiet_runtime, start_time_skipping
    from tests.workflows.sample_paths import run_all

    load_before = load_average()
    paths: dict[str, Any] = {}
    async with await start_time_skipping(quiet_runtime()) as env:
        async for path, history in run_all(env):
            paths[path.name] = {
                "journey": path.journey,
                "events": len(history.events),
                "bytes": len(history.to_json().encode()),
            }
    converts = paths.get("onboarding_converts", {}).get("bytes", 0)
    return {
        "target": "≤ 12,000 bytes for onboarding_converts (issue 8); the others reported",
        "met": 0 < converts <= 12_000,
        "paths": paths,
        "load_average": {"before": load_before, "after": load_average()},
    }


# --- the run ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "cpu_model": sl.cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "temporal": sl.temporal_version(),
    }


def timed(name: str, work: Callable[[], Any]) -> Any:
    print(f"… {name}", flush=True)
    began = time.perf_counter()
    result = work()
    result["seconds"] = round(time.perf_counter() - began, 1)
    return result


def rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    out: list[tuple[str, str, str, str, str]] = []
    for name, figure in results["figures"].items():
        if figure.get("status") == "not measured":
            out.append((name, "not measured", figure["target"].split(":")[0][:40], "-", "-"))
            continue
        verdict = "met" if figure["met"] else "MISSED"
        load = f"{figure.get('load_average', {}).get('before', ['?'])[0]}"
        if name == "engine_overhead":
            for lanes in ("C=1", "C=8"):
                f = figure[lanes]
                hand, yard = f["vs_handwritten"], f["vs_yardstick"]
                measured = (
                    f"{lanes}: engine {f['engine']['runs_per_s']}/s p99 {f['engine']['p99_ms']} ms;"
                    f" hand {f['handwritten']['runs_per_s']}/s p99 {f['handwritten']['p99_ms']} ms;"
                    f" ratio {hand['runs_per_s_ratio']} runs/s, {hand['p99_ratio']} p99"
                    f" (vs yardstick {yard['runs_per_s_ratio']}, {yard['p99_ratio']})"
                )
                load = str(f["load_average"]["before"][0])
                out.append((name, measured, "≥ 0.8 runs/s, ≤ 1.25 p99", verdict, load))
        elif name == "render":
            measured = f"{figure['emails_per_cpu_s']}/CPU-s ({figure['emails_per_wall_s']}/wall-s)"
            out.append((name, measured, "≥ 2000/s", verdict, load))
        elif name == "history_bytes":
            for path, info in figure["paths"].items():
                target = "≤ 12000" if path == "onboarding_converts" else "-"
                mark = verdict if path == "onboarding_converts" else "-"
                out.append((f"{name} {path}", f"{info['bytes']} B", target, mark, load))
        elif "summary" in figure:  # the live figures say what to print
            out.append((name, figure["summary"], figure["target_short"], verdict, load))
    return out


def print_table(results: dict[str, Any]) -> None:
    table = rows(results)
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    header = ("figure", "measured", "target", "verdict", "load")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    print()
    print(
        f"{results['date']} · {results['machine']['cpus']} CPUs {results['machine']['cpu_model']}"
        f" · load average at start {results['load_average']['start']}"
        f"{' · QUICK' if results['quick'] else ''}"
    )
    for row in (header, *table):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def figure_work(name: str, quick: bool, tmp: Path) -> Callable[[], Any]:
    """What measures figure `name`; quick mode's sizes are small enough for a few minutes."""
    runs, renders = (30, 500) if quick else (200, 5000)
    work: dict[str, Callable[[], Any]] = {
        "engine_overhead": lambda: asyncio.run(engine_overhead(runs, tmp / "e")),
        "render": lambda: render(renders, tmp / "r"),
        "history_bytes": lambda: asyncio.run(history_bytes()),
        "event_to_send": lambda: asyncio.run(
            event_to_send(200 if quick else 1000, 20.0, tmp / "events")
        ),
        "enrolment": lambda: asyncio.run(enrolment(5_000 if quick else 100_000, tmp / "enrol")),
        # Paced: wake-ups fall due at event_to_send's steady 20 a second, below what one
        # worker serves. The burst: starts (and so wake-ups) as fast as the engine takes them.
        "waiting_runs": lambda: asyncio.run(
            waiting_runs(300 if quick else 10_000, 1 if quick else 10, tmp / "wait", rate=20.0)
        ),
        "wake_up_capacity": lambda: asyncio.run(
            waiting_runs(300 if quick else 10_000, 1 if quick else 10, tmp / "burst")
        ),
        "scale_out": lambda: asyncio.run(scale_out(40 if quick else 200, tmp / "scale")),
        "crash_restart": lambda: crash_restart.measure(150),
    }
    return work[name]


FIGURES = (
    "engine_overhead",
    "render",
    "history_bytes",
    "event_to_send",
    "enrolment",
    "waiting_runs",
    "wake_up_capacity",
    "scale_out",
    "crash_restart",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", default=bool(os.getenv("BENCH_QUICK")))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--only",
        action="append",
        choices=FIGURES,
        help="measure only this figure (repeatable); the others stay as --out has them",
    )
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "load_average": {"start": load_average()},
        "figures": {},
    }
    if args.only and args.out.exists():
        kept = json.loads(args.out.read_text())
        results["figures"] = kept.get("figures", {})
        for figure in results["figures"].values():  # when each kept figure was measured
            figure.setdefault("date", kept.get("date"))
            figure.setdefault("quick", kept.get("quick"))
    figures = results["figures"]
    with tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp:
        for name in args.only or FIGURES:
            figures[name] = timed(name, figure_work(name, args.quick, Path(tmp)))
            if args.only:
                figures[name]["date"] = results["date"]
                figures[name]["quick"] = args.quick
    results["load_average"]["end"] = load_average()
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print_table(results)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
