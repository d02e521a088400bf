"""Cold start: import cost of ``modelpilot`` and every function module, then import, first call and warm call
of every AWS function against moto's server.

**Import.** Each measurement runs in a fresh interpreter (as a new Lambda / Functions worker
would) and times the import inside it with ``time.perf_counter``; the whole process time of
``python -c pass`` is printed for comparison. For each handler module, the third-party
packages it ended up loading are imported alone in another fresh process: the difference is
what ModelPilot's own code costs.

**Import, first call, warm call.** For every AWS function, a fresh interpreter gets the
function's environment as Lambda sets it (``MODELPILOT_*`` from the stack, ``AWS_LAMBDA_FUNCTION_NAME``,
credentials, the region) pointing at a moto server with the stack's tables, bucket, bus and
topic; it imports the handler module (Lambda's init phase), calls the handler with a real-shaped
event (the first invocation) and then with a second event of the same kind (a warm
invocation). Every call does its real work over HTTP (registry, idempotency table, S3,
EventBridge, SNS), so the numbers count requests and Python work; the difference between the
first and the warm call is what a cold container pays on its first event.

Usage: ``python benchmarks/cold_start.py [--runs 10] [--call-runs 5] [--no-imports] [--no-calls]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import sys, time, json
sys.path.insert(0, {root!r})
t = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t
ours = {{'modelpilot', 'functions', 'function_app', '__main__', '_distutils_hack', 'sitecustomize'}}
third = sorted(m for m in sys.modules if m.split('.')[0] not in ours and m.split('.')[0].isidentifier()
               and m.split('.')[0] not in sys.stdlib_module_names and not m.startswith('_'))
print(json.dumps({{"elapsed": elapsed, "third_party": third}}))
"""

#: one Lambda invocation in a fresh interpreter: init (import), first call, warm call; the context object is
#: defined here so that nothing of ModelPilot is imported before the handler module
CALL_PROBE = """
import json, sys, time, uuid
sys.path.insert(0, {root!r})
events = json.loads(open({events!r}, encoding="utf-8").read())

class Context:
    function_name = {function!r}
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + {function!r}
    log_group_name = "/aws/lambda/" + {function!r}
    log_stream_name = "2026/11/26/[$LATEST]0"
    identity = None
    client_context = None
    def __init__(self):
        self.aws_request_id = str(uuid.uuid4())
    def get_remaining_time_in_millis(self):
        return 60000

t = time.perf_counter()
import {module} as m
init = time.perf_counter() - t
t = time.perf_counter()
first = m.handler(events[0], Context())
first_s = time.perf_counter() - t
t = time.perf_counter()
warm = m.handler(events[1], Context())
warm_s = time.perf_counter() - t
open({out!r}, "w", encoding="utf-8").write(json.dumps({{"init": init, "first": first_s, "warm": warm_s,
    "replies": [first, warm]}}, default=str))
"""


def probe(statement: str) -> dict[str, object]:
    code = PROBE.format(root=str(ROOT), statement=statement)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def sdk_statement(modules: list[str]) -> str:
    """Import every third-party module a handler loaded (each on its own, errors ignored)."""
    return (
        "import importlib\nfor _m in " + repr(modules) + ":\n    try:\n        importlib.import_module(_m)\n"
        "    except Exception:\n        pass"
    )


def median_ms(statement: str, runs: int) -> tuple[float, list[str]]:
    samples, third = [], []
    for _ in range(runs):
        result = probe(statement)
        samples.append(float(result["elapsed"]) * 1000)  # type: ignore[arg-type]
        third = list(result["third_party"])  # type: ignore[call-overload]
    return statistics.median(samples), third


def bare_python_ms(runs: int) -> float:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def handler_modules() -> list[str]:
    modules = []
    for cloud in ("aws", "azure"):
        folder = ROOT / "functions" / cloud
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            modules.append(f"functions.{cloud}.{path.stem}")
    if (ROOT / "function_app.py").exists():
        modules.append("function_app")
    return modules


def import_report(runs: int) -> None:
    print(f"cold start, median of {runs} fresh processes, Python {sys.version.split()[0]}")
    print(f"{'what':52s} {'import ms':>10s} {'SDKs alone':>11s} {'ours':>8s}")
    bare = bare_python_ms(runs)
    print(f"{'python -c pass (whole process)':52s} {bare:10.1f}")
    core, third = median_ms("import modelpilot", runs)
    print(f"{'import modelpilot':52s} {core:10.1f} {'':>11s} {core:8.1f}  (target < 150)")
    for statement in (
        "import modelpilot.service.lifecycle",
        "import modelpilot.cli.app; modelpilot.cli.app.build_parser()",
    ):
        ms, third = median_ms(statement, runs)
        sdk, _ = median_ms(sdk_statement(third), runs) if third else (0.0, [])
        print(f"{statement[:52]:52s} {ms:10.1f} {sdk:11.1f} {ms - sdk:8.1f}")
    for module in handler_modules():
        try:
            ms, third = median_ms(f"import {module}", runs)
        except subprocess.CalledProcessError as exc:
            print(f"{module:52s} failed to import: {exc.stderr.strip().splitlines()[-1:]}")
            continue
        sdk, _ = median_ms(sdk_statement(third), runs) if third else (0.0, [])
        flag = "" if ms - sdk < 150 else "  OVER TARGET"
        print(f"{module:52s} {ms:10.1f} {sdk:11.1f} {ms - sdk:8.1f}{flag}")


# -- first call ----------------------------------------------------------------------------------
class CallBench:
    """A moto server with the stack's resources, and two events per function for every run."""

    def __init__(self, endpoint: str, work: Path) -> None:
        from tests.support import aws

        self.aws = aws
        self.work = work
        ddb, s3, events, sns = (aws.client(s, endpoint) for s in ("dynamodb", "s3", "events", "sns"))
        self.stack = aws.Stack(
            endpoint=endpoint,
            registry_table=aws.create_table(ddb, "RegistryTable", aws.unique("registry")),
            idempotency_table=aws.create_table(ddb, "IdempotencyTable", aws.unique("idem")),
            bucket=aws.create_bucket(s3, aws.unique("models")),
            event_bus=aws.unique("events"),
            topic_arn=sns.create_topic(Name=aws.unique("notifications"))["TopicArn"],
            queue_url="",
        )
        events.create_event_bus(Name=self.stack.event_bus)

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment as Lambda sets it (the template's variables and Lambda's own)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELPILOT_", "AWS_", "POWERTOOLS_"))}
        env.update(self.aws.stack_environment(self.stack))
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=function,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
            POWERTOOLS_LOG_LEVEL="WARNING",
            POWERTOOLS_METRICS_DISABLED="true",
        )
        return env

    def package(self, model: str) -> str:
        """Upload a package of ``model`` (a fresh version); return its manifest key."""
        from modelpilot.package.builder import write_package

        root = write_package(
            self.work / uuid.uuid4().hex / model,
            files={"model.bin": uuid.uuid4().bytes * 64},
            name=model,
            framework="numpy-logreg",
            metrics={"auc": 0.9},
        ).parent
        return self.aws.upload_package(self.stack, root, f"models/{model}/{uuid.uuid4().hex[:8]}")

    def registered(self, model: str, versions: int, *, to: tuple[str, ...] = ()) -> None:
        """Register ``versions`` versions of ``model`` through the stack's bus; promote the last ones along ``to``."""
        from modelpilot import bootstrap
        from modelpilot.config import Settings
        from modelpilot.domain.commands import PromoteModel, RegisterModel

        settings = Settings.from_env(self.aws.stack_environment(self.stack))
        bus = bootstrap.bootstrap(settings, clients=lambda service: self.aws.client(service, self.stack.endpoint))
        for n in range(1, versions + 1):
            key = self.package(model)
            uri = f"s3://{self.stack.bucket}/{key.rsplit('/', 1)[0]}"
            bus.handle(RegisterModel(package_uri=uri, actor="user:bench"))
            for environment in to:
                bus.handle(PromoteModel(model=model, environment=environment, actor="user:bench", version=n))

    def events(self, function: str) -> list[dict[str, Any]]:
        """Two events of the kind ``function`` receives, each doing real work."""
        from tests.support import aws_events

        model = f"bench{uuid.uuid4().hex[:8]}"
        bucket = self.stack.bucket
        if function == "model_upload":
            return [aws_events.object_created(bucket, self.package(model), etag=uuid.uuid4().hex) for _ in range(2)]
        if function == "sagemaker_registry":
            uris = [f"s3://{bucket}/{self.package(model).rsplit('/', 1)[0]}" for _ in range(2)]
            return [aws_events.sagemaker_change("Approved", uri, version=n + 1) for n, uri in enumerate(uris)]
        if function == "alarm":
            self.registered(model, 2, to=("dev", "staging", "prod"))
            return [
                aws_events.alarm_change(f"modelpilot/{model}/prod/errors", timestamp=f"2026-11-26T04:0{n}:00.000+0000")
                for n in range(2)
            ]
        if function == "operator_api":
            self.registered(model, 1, to=("dev",))
            return [aws_events.http_request("GET", f"/models/{model}/status") for _ in range(2)]
        if function == "promote":
            self.registered(model, 2)
            return [
                {"action": "promote", "model": model, "environment": "staging", "version": n, "reason": "bench"}
                for n in (1, 2)
            ]
        if function == "rollback":
            self.registered(model, 3, to=("dev", "staging", "prod"))
            return [
                {"action": "rollback", "model": model, "environment": "prod", "reason": f"bench {n}"} for n in (1, 2)
            ]
        if function in {"drift_batch", "slo_check"}:
            name = "modelpilot-drift" if function == "drift_batch" else "modelpilot-slo"
            return [aws_events.scheduler_input(name, at=f"2026-11-26T04:0{n}:00Z") for n in range(2)]
        raise ValueError(function)

    def run(self, function: str) -> dict[str, Any]:
        events = self.work / f"{function}-{uuid.uuid4().hex}.json"
        out = self.work / f"{function}-{uuid.uuid4().hex}.out.json"
        events.write_text(json.dumps(self.events(function)), encoding="utf-8")
        code = CALL_PROBE.format(
            root=str(ROOT), events=str(events), out=str(out), function=function, module=f"functions.aws.{function}"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=self.environment(function), capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"{function}: {done.stderr.strip()[-2000:]}")
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        for reply in result["replies"]:
            statuses = [r.get("status") for r in reply.get("results", [reply])]
            if "failed" in statuses:
                raise RuntimeError(f"{function} answered failed: {reply}")
        return result


AWS_FUNCTIONS = (
    "model_upload",
    "sagemaker_registry",
    "alarm",
    "operator_api",
    "promote",
    "rollback",
    "drift_batch",
    "slo_check",
)


def call_report(runs: int) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    sys.path.insert(0, str(ROOT))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench = CallBench(f"http://{host}:{port}", Path(tmp))
            print(f"\nAWS functions against moto's server, median of {runs} fresh processes")
            print(f"{'function':24s} {'init (import) ms':>17s} {'first call ms':>14s} {'warm call ms':>13s}")
            for function in AWS_FUNCTIONS:
                results = [bench.run(function) for _ in range(runs)]
                init, first, warm = (statistics.median(r[k] * 1000 for r in results) for k in ("init", "first", "warm"))
                print(f"{function:24s} {init:17.1f} {first:14.1f} {warm:13.1f}")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per import measurement")
    parser.add_argument("--call-runs", type=int, default=5, help="fresh processes per function call measurement")
    parser.add_argument("--no-imports", action="store_true", help="skip the import table")
    parser.add_argument("--no-calls", action="store_true", help="skip the first-call table (needs moto[server])")
    args = parser.parse_args()
    if not args.no_imports:
        import_report(args.runs)
    if not args.no_calls:
        call_report(args.call_runs)


if __name__ == "__main__":
    main()
