"""Conformance runner: ably-js's own mocha suite against the relay (not part of `make test`).

    .venv/bin/python tests/compat/run_ably_js.py /path/to/ably-js [--jobs 4] [--out DIR]
        [--files test/rest/time.test.js ...] [--known tests/compat/known_failures_ably_js.json]

It starts `relay serve --sandbox --memory` on a free port, then runs each test file of the
checkout (by default test/unit, test/rest and test/realtime without liveobjects and transports)
with `ABLY_LOCAL_SANDBOX_URL` pointing at the relay and `ABLY_TEST_TRANSPORTS=web_socket`, one
mocha process per file, and writes DIR/report.json (every test: file, title, status pass/fail/
skip, error) and DIR/summary.md (the tally). The known-failures list (one reason per entry:
"internet host", "environment" or "not yet built", and a note naming the host or the cause) is
checked against the report: a failure not listed is a regression, a listed test that passes is
reported so the list can shrink. Exit status 1 on a regression.

Tests listed for "internet host" or "environment" are left out of the main pass by title (with
mocha's --grep/--invert: those reaching for echo.ably.io offline each wait out a 60 s timeout),
then each is run on its own, all of them at once (they mostly wait), so the tally says how many
of them pass anyway; --run-environment runs them in the main pass instead.

The checkout must be built and installed (`npm install` runs the build); see README.md,
"Conformance runner", for preparing one without network access to git dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REPORTER = HERE / "reporter.js"
KNOWN = HERE / "known_failures_ably_js.json"
DEFAULT_DIRS = ("test/unit", "test/rest", "test/realtime")
# LiveObjects (objects, a non-goal for now) and the transport tests (comet, xhr: the relay
# serves WebSocket only) are left out, as comparable servers' published selections do.
EXCLUDED = {
    "test/realtime/liveobjects.test.js",
    "test/realtime/transports.test.js",
    "test/rest/liveobjects.test.js",
}
REASONS = ("internet host", "environment", "not yet built")
_LEFT_OUT = ("internet host", "environment")
# Left-out tests run at once in the second pass: mostly timers waiting on unreachable hosts.
_LEFT_OUT_JOBS = 24
_LISTENING = re.compile(r"relay listening on (http://\S+)")


@dataclass(slots=True)
class FileRun:
    path: str
    results: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int | None = None
    note: str = ""


def _test_files(checkout: Path, files: list[str] | None) -> list[str]:
    if files:
        return files
    found = []
    for folder in DEFAULT_DIRS:
        for path in sorted((checkout / folder).glob("*.test.js")):
            rel = path.relative_to(checkout).as_posix()
            if rel not in EXCLUDED:
                found.append(rel)
    return found


async def _start_relay(log_path: Path) -> tuple[asyncio.subprocess.Process, str]:
    """`relay serve --sandbox --memory` on a free port of localhost; its base URL."""
    log = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        "serve",
        "--sandbox",
        "--memory",
        "--host",
        "localhost",
        "--port",
        "0",
        "--log-level",
        "WARNING",
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        while True:
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"the relay exited early; see {log_path}")
            match = _LISTENING.search(line)
            if match:
                url = match.group(1).replace("127.0.0.1", "localhost")
                break
    # Keep draining stdout so the relay never blocks on a full pipe.
    asyncio.get_running_loop().create_task(_drain(proc.stdout))
    return proc, url


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


def _left_out_titles(known_path: Path) -> list[str]:
    known = json.loads(known_path.read_text()) if known_path.exists() else []
    return [entry["test"] for entry in known if entry.get("reason") in _LEFT_OUT]


def _file_of(title: str) -> str:
    """The test file a full title comes from: its outer describe ("realtime/auth") names it."""
    return f"test/{title.split(' ', 1)[0]}.test.js"


def _grep(titles: list[str]) -> str:
    return "|".join("^" + re.escape(title) + "$" for title in titles)


async def _run_file(
    checkout: Path,
    url: str,
    path: str,
    out_dir: Path,
    limit_s: float,
    grep: list[str],
    name: str = "",
) -> FileRun:
    """Run one test file (`grep`: mocha's selection arguments); `name` tells the report and
    log files of several runs of one file apart."""
    run = FileRun(path)
    stem = path.replace("/", "__") + name
    report = out_dir / "raw" / (stem + ".jsonl")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.unlink(missing_ok=True)
    port = url.rsplit(":", 1)[1]
    env = {
        **os.environ,
        "ABLY_LOCAL_SANDBOX_URL": url,
        "ABLY_ENDPOINT": "localhost",
        "ABLY_PORT": port,
        "ABLY_TLS_PORT": port,
        "ABLY_USE_TLS": "false",
        "ABLY_TEST_TRANSPORTS": "web_socket",
        "COMPAT_REPORT": str(report),
    }
    log = (out_dir / "logs" / (stem + ".log")).open("wb")
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        "node",
        "node_modules/.bin/mocha",
        "--reporter",
        str(REPORTER),
        *grep,
        path,
        cwd=str(checkout),
        env=env,
        stdout=log,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(limit_s):
            run.exit_code = await proc.wait()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        run.note = f"killed after {limit_s:.0f} s"
    finally:
        log.close()
    run.seconds = time.monotonic() - started
    if report.exists():
        for line in report.read_text().splitlines():
            if line.strip():
                run.results.append(json.loads(line))
    if not run.results and not run.note:
        run.note = f"no results (exit status {run.exit_code}); see logs/"
    return run


def _check_known(
    results: list[dict[str, Any]],
    known_path: Path,
    left_out: list[str],
    alone: list[dict[str, Any]],
    files: list[str],
) -> dict[str, Any]:
    """Compare the main pass (`results`) and the left-out tests run alone (`alone`) with the
    known-failures list."""
    known = json.loads(known_path.read_text()) if known_path.exists() else []
    for entry in known:
        if entry.get("reason") not in REASONS:
            raise SystemExit(f"{known_path}: {entry.get('test')!r} needs a reason in {REASONS}")
    listed = {entry["test"]: entry for entry in known}
    failed = {r["title"] for r in results if r["status"] == "fail"}
    passed = {r["title"] for r in results if r["status"] == "pass"}
    alone_passed = {r["title"] for r in alone if r["status"] == "pass"}
    seen = {r["title"] for r in results} | {r["title"] for r in alone}
    still = sorted(set(listed) & failed)
    return {
        "regressions": sorted(failed - set(listed)),
        "now_passing": sorted(set(listed) & passed),
        "known_failing": [
            {"test": t, "reason": listed[t]["reason"], "note": listed[t].get("note", "")}
            for t in still
        ],
        "by_reason": dict(Counter(listed[t]["reason"] for t in still)),
        "left_out": sorted(left_out),
        "left_out_passing": sorted(set(left_out) & alone_passed),
        # Entries whose file ran but which no test answered to: renamed or removed upstream.
        "stale": sorted(t for t in listed if t not in seen and _file_of(t) in files),
    }


def _summary(runs: list[FileRun], check: dict[str, Any], seconds: float) -> str:
    lines = [
        "| file | pass | fail | skip | seconds | note |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    total: Counter[str] = Counter()
    for run in runs:
        tally = Counter(r["status"] for r in run.results if not r.get("hook"))
        tally["fail"] += sum(1 for r in run.results if r.get("hook") and r["status"] == "fail")
        total.update(tally)
        lines.append(
            f"| {run.path} | {tally['pass']} | {tally['fail']} | {tally['skip']} "
            f"| {run.seconds:.0f} | {run.note} |"
        )
    lines.append(
        f"| **total** | **{total['pass']}** | **{total['fail']}** | **{total['skip']}** "
        f"| {seconds:.0f} | |"
    )
    left_out = check["left_out"]
    lines += [
        "",
        f"Left out by title (internet host, environment): {len(left_out)}; "
        f"run alone, {len(check['left_out_passing'])} of them pass",
        f"Known failures still failing: {len(check['known_failing'])} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(check['by_reason'].items()))})",
        f"Regressions (failing, not in the known list): {len(check['regressions'])}",
        f"Listed as known but now passing: {len(check['now_passing'])}",
        f"Listed but not found in the suite: {len(check['stale'])}",
    ]
    lines += [f"- regression: {t}" for t in check["regressions"]]
    lines += [f"- now passing: {t}" for t in check["now_passing"]]
    lines += [f"- left out, passes alone: {t}" for t in check["left_out_passing"]]
    lines += [f"- not found: {t}" for t in check["stale"]]
    lines += [
        f"- still failing ({e['reason']}): {e['test']}: {e['note']}" for e in check["known_failing"]
    ]
    return "\n".join(lines) + "\n"


async def _main(
    args: argparse.Namespace, checkout: Path, out_dir: Path, files: list[str], left_out: list[str]
) -> int:
    relay, url = await _start_relay(out_dir / "relay.log")
    started = time.monotonic()
    try:
        limit = asyncio.Semaphore(args.jobs)
        main_grep = ["--grep", _grep(left_out), "--invert"] if left_out else []

        async def one(path: str) -> FileRun:
            async with limit:
                run = await _run_file(checkout, url, path, out_dir, args.timeout, main_grep)
                print(f"{path}: {Counter(r['status'] for r in run.results)} {run.note}")
                return run

        runs = await asyncio.gather(*(one(path) for path in files))
        seconds = time.monotonic() - started

        at_once = asyncio.Semaphore(_LEFT_OUT_JOBS)

        async def alone(index: int, title: str) -> FileRun:
            async with at_once:
                grep = ["--grep", _grep([title])]
                path = _file_of(title)
                return await _run_file(
                    checkout, url, path, out_dir, args.timeout, grep, name=f".alone{index}"
                )

        chosen = [t for t in left_out if _file_of(t) in files]
        alone_runs = await asyncio.gather(*(alone(i, t) for i, t in enumerate(chosen)))
    finally:
        relay.terminate()
        await relay.wait()
    results = [{"file": run.path, **r} for run in runs for r in run.results]
    alone_results = [{"file": run.path, **r} for run in alone_runs for r in run.results]
    check = _check_known(results, Path(args.known), left_out, alone_results, files)
    report = {
        "checkout": str(checkout),
        "seconds": round(seconds),
        "files": [
            {"path": r.path, "seconds": round(r.seconds), "exit": r.exit_code, "note": r.note}
            for r in runs
        ],
        "tests": results,
        "left_out_alone": alone_results,
        "known": check,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    summary = _summary(runs, check, seconds)
    (out_dir / "summary.md").write_text(summary)
    print(summary)
    return 1 if check["regressions"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", help="an installed ably-js checkout (tag 2.26 or later)")
    parser.add_argument("--files", nargs="*", help="test files relative to the checkout")
    parser.add_argument("--jobs", type=int, default=4, help="test files run at once")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test file")
    parser.add_argument("--out", default="compat-report", help="where report.json goes")
    parser.add_argument("--known", default=str(KNOWN), help="the known-failures list (JSON)")
    parser.add_argument(
        "--run-environment",
        action="store_true",
        help="run the tests listed for 'internet host' and 'environment' in the main pass",
    )
    args = parser.parse_args(argv)
    checkout = Path(args.checkout).resolve()
    if not (checkout / "node_modules" / ".bin" / "mocha").exists():
        raise SystemExit(f"{checkout}: not an installed ably-js checkout (npm install first)")
    out_dir = Path(args.out).resolve()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    files = _test_files(checkout, args.files)
    left_out = [] if args.run_environment else _left_out_titles(Path(args.known))
    return asyncio.run(_main(args, checkout, out_dir, files, left_out))


if __name__ == "__main__":
    sys.exit(main())
