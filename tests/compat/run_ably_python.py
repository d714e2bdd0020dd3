"""Conformance runner: ably-python's own pytest suite against the relay (not part of `make test`).

    .venv/bin/python tests/compat/run_ably_python.py /path/to/ably-python --python VENV/bin/python
        [--host 127.0.0.5] [--out DIR] [--known tests/compat/known_failures_ably_python.json]

ably-python's test set-up (test/ably/testapp.py) provisions its app with `POST /apps` at
`ABLY_ENDPOINT`, always on port 443 with TLS (80 without, and then its Basic-auth tests refuse to
run), and its realtime client connects to `wss://<endpoint>` with no port at all. So the relay
serves here on port 443 of a loopback address of its own (default 127.0.0.5, which nothing else
on the machine uses; binding 443 needs the privilege to), with a certificate from a test CA made
for the run, and the suite trusts that CA through SSL_CERT_FILE (read by httpx and by OpenSSL's
defaults, which websockets uses). The suite's files are run as they are: nothing is patched.

The suite runs from a copy of the checkout made in DIR/suite without the tree's top-level `ably/`
package (test/ably, the tests, stays): pytest puts the suite's root on sys.path, so run in the
checkout itself the tree's own package shadows the installed one, and the tree's version (3.1.2
for the GitHub tree here), not `--python`'s, would be what is tested. The report names the
package that ran (its version and path). Each test file runs in a pytest process of its own,
without the tests named in ISOLATED, which run alone (they leave state behind when they fail).

`--python` is an interpreter with `ably[crypto,vcdiff]` (the version under test) and the suite's
test dependencies (pytest<8, pytest-asyncio, pytest-timeout, mock, respx, tokenize_rt)
installed. The report (DIR/report.json: every test with its outcome and message; DIR/summary.md:
the tally) is checked against the known-failures list as run_ably_js.py does: a failure not
listed is a regression (exit status 1), a listed test that passes is reported. Each entry has
one reason: "internet host", "environment", "not yet built", or "relay" (a divergence from
Ably the relay has not fixed yet), and a note.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KNOWN = HERE / "known_failures_ably_python.json"
REASONS = ("internet host", "environment", "not yet built", "relay")
# Tests that change process-wide state and restore it only if they pass: one failing makes the
# rest of its file fail with it, so each runs in a pytest process of its own (its file without it).
ISOLATED = (
    # Sets Defaults.connection_state_ttl to 10 ms, restored after its asserts; a loopback connect
    # can beat that timer (see the known-failures list), and the later tests then suspend.
    "test/ably/realtime/realtimeconnection_test.py::TestRealtimeConnection::test_connection_state_ttl",
)


def _make_tls(folder: Path, host: str) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for `host` signed by it: (ca.pem, cert.pem, key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.pem", folder / "ca.key"
    cert, key, csr, ext = (folder / n for n in ("relay.pem", "relay.key", "relay.csr", "ext.cnf"))
    ext.write_text(f"subjectAltName=IP:{host},DNS:localhost\nbasicConstraints=CA:FALSE\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "2",
        "-subj",
        "/CN=channel-relay conformance test CA",
    )
    openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={host}",
    )
    openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-out",
        str(cert),
        "-days",
        "2",
        "-extfile",
        str(ext),
    )
    return ca, cert, key


def _suite_copy(checkout: Path, out_dir: Path) -> Path:
    """The checkout without its top-level `ably/` package: `import ably` gets the installed one."""
    suite = out_dir / "suite"
    shutil.rmtree(suite, ignore_errors=True)

    def skip(folder: str, names: list[str]) -> set[str]:
        return {"ably", ".git"} & set(names) if Path(folder) == checkout else set()

    shutil.copytree(checkout, suite, ignore=skip, symlinks=True)
    return suite


def _package(python: str, suite: Path) -> str:
    """The ably package the suite imports: its version and path."""
    probe = "import ably; print(ably.lib_version, ably.__file__)"
    found = subprocess.run(
        [python, "-c", probe], cwd=suite, capture_output=True, text=True, check=True
    )
    return found.stdout.strip()


async def _start_relay(host: str, cert: Path, key: Path, log: Path) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "channel_relay",
        "serve",
        "--sandbox",
        "--memory",
        "--host",
        host,
        "--port",
        "443",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--log-level",
        "WARNING",
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=log.open("wb"),
    )
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        while "relay listening on" not in (line := (await proc.stdout.readline()).decode()):
            if not line:
                raise RuntimeError(f"the relay exited early (port 443 needs privileges); see {log}")
    asyncio.get_running_loop().create_task(_drain(proc.stdout))
    return proc


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


def _results(junit: Path, path: str) -> list[dict[str, Any]]:
    """Every test case of one file's JUnit XML report: title (Class::name), status, message."""
    tests = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        cls = case.get("classname", "").rpartition(".")[2]
        name = str(case.get("name"))
        status, message = "pass", ""
        for tag, outcome in (("failure", "fail"), ("error", "fail"), ("skipped", "skip")):
            element = case.find(tag)
            if element is not None:
                status, message = outcome, (element.get("message") or "")[:500]
                break
        title = f"{cls}::{name}" if cls.startswith("Test") else name
        tests.append({"file": path, "title": title, "status": status, "error": message})
    return tests


def _check(tests: list[dict[str, Any]], known_path: Path) -> dict[str, Any]:
    known = json.loads(known_path.read_text()) if known_path.exists() else []
    for entry in known:
        if entry.get("reason") not in REASONS:
            raise SystemExit(f"{known_path}: {entry.get('test')!r} needs a reason in {REASONS}")
    listed = {entry["test"]: entry for entry in known}
    failed = {f"{t['file']}::{t['title']}" for t in tests if t["status"] == "fail"}
    passed = {f"{t['file']}::{t['title']}" for t in tests if t["status"] == "pass"}
    still = sorted(set(listed) & failed)
    return {
        "regressions": sorted(failed - set(listed)),
        "now_passing": sorted(set(listed) & passed),
        "known_failing": [
            {"test": t, "reason": listed[t]["reason"], "note": listed[t].get("note", "")}
            for t in still
        ],
        "by_reason": dict(Counter(listed[t]["reason"] for t in still)),
    }


def _summary(tests: list[dict[str, Any]], check: dict[str, Any], seconds: float) -> str:
    lines = ["| file | pass | fail | skip |", "| --- | ---: | ---: | ---: |"]
    by_file: dict[str, Counter[str]] = {}
    for test in tests:
        by_file.setdefault(test["file"], Counter())[test["status"]] += 1
    total: Counter[str] = Counter()
    for path in sorted(by_file):
        tally = by_file[path]
        total.update(tally)
        lines.append(f"| {path} | {tally['pass']} | {tally['fail']} | {tally['skip']} |")
    lines.append(f"| **total** | **{total['pass']}** | **{total['fail']}** | **{total['skip']}** |")
    lines += [
        "",
        f"{seconds:.0f} s",
        f"Known failures still failing: {len(check['known_failing'])} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(check['by_reason'].items()))})",
        f"Regressions (failing, not in the known list): {len(check['regressions'])}",
        f"Listed as known but now passing: {len(check['now_passing'])}",
    ]
    lines += [f"- regression: {t}" for t in check["regressions"]]
    lines += [f"- now passing: {t}" for t in check["now_passing"]]
    lines += [
        f"- still failing ({e['reason']}): {e['test']}: {e['note']}" for e in check["known_failing"]
    ]
    return "\n".join(lines) + "\n"


async def _run_pytest(
    args: argparse.Namespace,
    suite_dir: Path,
    out_dir: Path,
    target: str,
    env: dict[str, str],
    deselect: list[str],
) -> list[dict[str, Any]]:
    """One pytest process (a crash loses only its target): a test file, or one test; its results."""
    path = target.partition("::")[0]
    stem = target.replace("/", "__").replace("::", "--")
    junit = out_dir / "raw" / f"{stem}.xml"
    junit.parent.mkdir(parents=True, exist_ok=True)
    junit.unlink(missing_ok=True)
    with (out_dir / "logs" / f"{stem}.log").open("wb") as log:
        suite = await asyncio.create_subprocess_exec(
            args.python,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rA",
            # Native tracebacks: pytest's own re-parse source with `ast`, which CPython 3.11 can
            # fail inside ("AST constructor recursion depth mismatch") when a websocket
            # coroutine is finalised meanwhile, ending the whole session.
            "--tb=native",
            f"--junitxml={junit}",
            *(f"--deselect={test}" for test in deselect),
            target,
            cwd=str(suite_dir),
            env=env,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with asyncio.timeout(args.timeout):
                await suite.wait()
        except TimeoutError:
            suite.kill()
            await suite.wait()
    if not junit.exists():
        return [{"file": path, "title": "(session)", "status": "fail", "error": "no report"}]
    return _results(junit, path)


def _targets(files: list[str]) -> list[tuple[str, list[str]]]:
    """Each file without its ISOLATED tests, then each of those alone: (target, deselected)."""
    targets = []
    for path in files:
        alone = [test for test in ISOLATED if test.partition("::")[0] == path]
        targets += [(path, alone), *((test, []) for test in alone)]
    return targets


async def _main(args: argparse.Namespace, checkout: Path, out_dir: Path) -> int:
    suite = _suite_copy(checkout, out_dir)
    package = _package(args.python, suite)
    print(f"ably package under test: {package}")
    ca, cert, key = _make_tls(out_dir / "tls", args.host)
    relay = await _start_relay(args.host, cert, key, out_dir / "relay.log")
    files = args.tests or sorted(
        p.relative_to(suite).as_posix() for p in (suite / "test").rglob("*_test.py")
    )
    env = {**os.environ, "ABLY_ENDPOINT": args.host, "ABLY_TLS": "true", "SSL_CERT_FILE": str(ca)}
    started = time.monotonic()
    try:
        limit = asyncio.Semaphore(args.jobs)

        async def one(target: str, deselect: list[str]) -> list[dict[str, Any]]:
            async with limit:
                results = await _run_pytest(args, suite, out_dir, target, env, deselect)
                print(f"{target}: {Counter(r['status'] for r in results)}")
                return results

        runs = await asyncio.gather(*(one(*target) for target in _targets(files)))
        tests = [t for results in runs for t in results]
    finally:
        relay.terminate()
        await relay.wait()
    seconds = time.monotonic() - started
    check = _check(tests, Path(args.known))
    report = {
        "checkout": str(checkout),
        "package": package,
        "seconds": round(seconds),
        "tests": tests,
        "known": check,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    summary = f"ably package: {package}\n\n" + _summary(tests, check, seconds)
    (out_dir / "summary.md").write_text(summary)
    print(summary)
    return 1 if check["regressions"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", help="an ably-python source tree (its test/ folder is run)")
    parser.add_argument("--python", required=True, help="interpreter with ably and the test deps")
    parser.add_argument("--host", default="127.0.0.5", help="loopback address to serve 443 on")
    parser.add_argument("--tests", nargs="*", help="test files (default: every test/**/*_test.py)")
    parser.add_argument("--jobs", type=int, default=2, help="test files run at once")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per test file")
    parser.add_argument("--out", default="compat-report-python", help="where report.json goes")
    parser.add_argument("--known", default=str(KNOWN), help="the known-failures list (JSON)")
    args = parser.parse_args(argv)
    checkout = Path(args.checkout).resolve()
    if not (checkout / "test" / "ably" / "testapp.py").exists():
        raise SystemExit(f"{checkout}: not an ably-python source tree (no test/ably/testapp.py)")
    out_dir = Path(args.out).resolve()
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    return asyncio.run(_main(args, checkout, out_dir))


if __name__ == "__main__":
    sys.exit(main())
