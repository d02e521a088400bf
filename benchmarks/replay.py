"""Replay benchmark: uploads and operator requests, duplicated and reordered; what was lost or doubled.

The workload (seeded): ``--n`` package uploads spread over ``n // 100`` models (at least
one), then ``--n`` operator requests (promote to prod, approve for prod, roll prod
back), each with its own ``Idempotency-Key``. About ``--dup`` of the deliveries of
each phase are delivered again (the same S3 event; the same key), and each phase is
shuffled. Uploads go first so every version a request names exists.

* ``local``: the local backend (SQLite in a temporary home) through the same dispatch
  path the functions use (``handle_once`` with the upload's business key; operator
  commands carry ``api:<key>`` as their trigger, as both operator APIs do).
* ``moto``: the AWS Lambda handlers (``model_upload`` with S3 notifications,
  ``operator_api`` with API Gateway requests and the ``Idempotency-Key`` header)
  against moto's server on 127.0.0.1, every call over HTTP.

Then the final registry is compared with the expected set: every distinct upload is one
version (lost: none; doubled: no package registered twice, no second ``register``
record); every distinct operator key that was applied has exactly one audit record
(lost: an applied key without one; doubled: a key with two or more), and no
duplicate delivery applied anything; ``audit verify``'s check passes. It prints
throughput, p50/p99 latency per delivery, and the counts (the target is zero).

Usage: ``python benchmarks/replay.py [--n 1000] [--dup 0.2] [--backend local|moto|both] [--seed 7]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

POLICY = """\
version: 1
environments: [dev, prod]
"""
APPLIED = {"promoted", "rolled_back", "approved"}


@dataclass
class Upload:
    model: str
    index: int
    key: str = ""


@dataclass
class Request:
    key: str
    action: str
    model: str
    version: int | None = None
    approver: str = "alice"


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    wall: float = 0.0


def workload(n: int, dup: float, seed: int) -> tuple[list[Upload], list[Upload], list[Request], list[Request]]:
    """Return (distinct uploads, upload deliveries, distinct requests, request deliveries)."""
    rng = random.Random(seed)
    models = [f"m{i:02d}" for i in range(max(1, n // 100))]
    per_model: Counter[str] = Counter()
    uploads = []
    for i in range(n):
        model = models[i % len(models)]
        per_model[model] += 1
        uploads.append(Upload(model, per_model[model]))
    upload_deliveries = uploads + [rng.choice(uploads) for _ in range(int(n * dup))]
    rng.shuffle(upload_deliveries)
    requests = []
    for i in range(n):
        model = rng.choice(models)
        action = rng.choices(["promote", "approve", "rollback"], weights=[5, 2, 3])[0]
        # a promotion names a version (often refused: prod takes what dev holds) or, half the time, none (dev's)
        version = rng.randint(1, per_model[model]) if action == "approve" or rng.random() < 0.5 else None
        version = None if action == "rollback" else version
        approver = rng.choice(["alice", "bob", "carol"])
        requests.append(Request(f"req-{seed}-{i:05d}", action, model, version, approver))
    request_deliveries = requests + [rng.choice(requests) for _ in range(int(n * dup))]
    rng.shuffle(request_deliveries)
    return uploads, upload_deliveries, requests, request_deliveries


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def drive(deliveries: list[Any], key: Callable[[Any], str], run: Callable[[Any], dict[str, Any]], tally: Tally) -> None:
    start = time.perf_counter()
    for item in deliveries:
        t0 = time.perf_counter()
        reply = run(item)
        tally.latencies.append(time.perf_counter() - t0)
        tally.replies.setdefault(key(item), []).append(reply)
    tally.wall += time.perf_counter() - start


def check(
    bus: Any, uploads: list[Upload], uris: dict[str, str], requests: list[Request], tally: Tally
) -> dict[str, Any]:
    """Compare the final registry with the expected set."""
    from modelpilot.service.audit import verify_audit

    registry = bus.services.registry
    registered: Counter[str] = Counter()
    register_records: Counter[str] = Counter()
    by_trigger: Counter[str] = Counter()
    for model in registry.list_models():
        for version in registry.list_versions(model):
            registered[version.package_uri] += 1
        for record in registry.audit_records(model):
            if record.trigger:
                by_trigger[record.trigger] += 1
            if record.action == "register":
                register_records[f"{model}#{record.to_version}"] += 1
    expected = {uris[u.key] for u in uploads}
    lost_uploads = sorted(expected - set(registered))
    doubled_uploads = sorted(uri for uri, count in registered.items() if count > 1)
    doubled_uploads += sorted(k for k, c in register_records.items() if c > 1)
    lost_requests, doubled_requests, applied, refused, duplicate_applied = [], [], 0, Counter(), 0
    for request in requests:
        replies = tally.replies[request.key]
        first, again = replies[0], replies[1:]
        status = str(first.get("status"))
        count = by_trigger[f"api:{request.key}"]
        if status in APPLIED:
            applied += 1
            if count == 0:
                lost_requests.append(request.key)
        else:
            refused[str(first.get("error") or status)] += 1
        if count > 1:
            doubled_requests.append(request.key)
        duplicate_applied += sum(
            1 for r in again if r.get("status") in APPLIED and "already" not in str(r.get("message", ""))
        )
    envs = list(bus.services.policy.environments)
    return {
        "uploads distinct": len(uploads),
        "versions registered": sum(registered.values()),
        "uploads lost": len(lost_uploads),
        "uploads doubled": len(doubled_uploads),
        "requests distinct": len(requests),
        "requests applied": applied,
        "requests answered without a change": dict(refused),
        "requests lost": len(lost_requests),
        "requests doubled": len(doubled_requests),
        "duplicate deliveries that applied again": duplicate_applied,
        "audit verify ok": verify_audit(registry, environments=envs).ok,
        "examples": {"lost": (lost_uploads + lost_requests)[:5], "doubled": (doubled_uploads + doubled_requests)[:5]},
    }


# -- packages ------------------------------------------------------------------------------
def write_packages(root: Path, uploads: list[Upload]) -> dict[str, Path]:
    from modelpilot.package.builder import write_package

    folders = {}
    for u in uploads:
        u.key = f"models/{u.model}/v{u.index:04d}"
        folder = root / u.key
        write_package(
            folder,
            files={"model.bin": f"weights-{u.model}-{u.index}".encode()},
            name=u.model,
            framework="bench",
            metrics={"auc": 0.8},
        )
        folders[u.key] = folder
    return folders


# -- local ---------------------------------------------------------------------------------
def run_local(n: int, dup: float, seed: int) -> dict[str, Any]:
    from modelpilot.bootstrap import bootstrap
    from modelpilot.config import Settings
    from modelpilot.domain.commands import ApproveModel, PromoteModel, RegisterModel, RollbackModel
    from modelpilot.exceptions import ModelPilotError
    from modelpilot.service.dispatch import Delivery, handle_once

    uploads, upload_deliveries, requests, request_deliveries = workload(n, dup, seed)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        (home / "modelpilot.yaml").write_text(POLICY)
        folders = write_packages(Path(tmp) / "packages", uploads)
        uris = {key: str(folder) for key, folder in folders.items()}
        bus = bootstrap(Settings(backend="local", home=str(home)))
        tally = Tally()

        def upload(u: Upload) -> dict[str, Any]:
            command = RegisterModel(package_uri=uris[u.key], actor="system:upload", trigger=u.key, auto_promote=True)
            return handle_once(bus, Delivery("upload", command, key=f"upload:{u.key}"), function="model_upload")

        def operate(r: Request) -> dict[str, Any]:
            trigger = f"api:{r.key}"
            command: Any
            if r.action == "promote":
                command = PromoteModel(r.model, "prod", "alice", version=r.version, trigger=trigger)
            elif r.action == "approve":
                command = ApproveModel(r.model, r.version or 1, "prod", r.approver, trigger=trigger)
            else:
                command = RollbackModel(r.model, "prod", "bob", "replay", trigger=trigger)
            try:
                outcome = bus.handle(command)
            except ModelPilotError as exc:
                return {"status": "failed", "error": exc.code, "message": exc.message}
            return {"status": outcome.status, "message": outcome.message}

        drive(upload_deliveries, lambda u: u.key, upload, tally)
        drive(request_deliveries, lambda r: r.key, operate, tally)
        return {
            **summary(tally, len(upload_deliveries) + len(request_deliveries)),
            **check(bus, uploads, uris, requests, tally),
        }


# -- moto ----------------------------------------------------------------------------------
def run_moto(n: int, dup: float, seed: int) -> dict[str, Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        return _run_moto(f"http://{host}:{port}", n, dup, seed)
    finally:
        server.stop()


def _run_moto(endpoint: str, n: int, dup: float, seed: int) -> dict[str, Any]:
    from modelpilot import bootstrap
    from tests.support import aws, aws_events

    ddb, s3, events, sns = (aws.client(s, endpoint) for s in ("dynamodb", "s3", "events", "sns"))
    stack = aws.Stack(
        endpoint,
        aws.create_table(ddb, "RegistryTable", aws.unique("registry")),
        aws.create_table(ddb, "IdempotencyTable", aws.unique("idem")),
        aws.create_bucket(s3, aws.unique("models")),
        aws.unique("events"),
        sns.create_topic(Name="replay")["TopicArn"],
        "",
    )
    events.create_event_bus(Name=stack.event_bus)
    os.environ.update(aws.stack_environment(stack))
    aws.put_policy(stack, POLICY)
    uploads, upload_deliveries, requests, request_deliveries = workload(n, dup, seed)
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_packages(Path(tmp), uploads)
        uris = {}
        for key, folder in folders.items():
            aws.upload_package(stack, folder, key)
            uris[key] = f"s3://{stack.bucket}/{key}"
    bootstrap.reset()
    upload_handler, api = aws_events.handler("model_upload"), aws_events.handler("operator_api")
    tally = Tally()

    def upload(u: Upload) -> dict[str, Any]:
        event = aws_events.s3_notification(stack.bucket, f"{u.key}/modelpilot.json", etag=f"etag-{u.key}")
        reply = upload_handler(event, aws_events.LambdaContext())
        return dict(reply["results"][0]) if reply.get("results") else reply

    def operate(r: Request) -> dict[str, Any]:
        path = f"/models/{r.model}/environments/prod/{r.action}"
        body: dict[str, Any] = {"reason": "replay"} if r.action == "rollback" else {"version": r.version}
        if r.action == "promote" and r.version is None:
            body = {}
        user = f"arn:aws:iam::123456789012:user/{r.approver if r.action == 'approve' else 'alice'}"
        if r.action == "approve":
            path = f"/models/{r.model}/versions/{r.version}/approve"
            body = {"environment": "prod"}
        event = aws_events.http_request("POST", path, body, user_arn=user)
        event.setdefault("headers", {})["idempotency-key"] = r.key
        response = api(event, aws_events.LambdaContext())
        return dict(json.loads(response["body"]))

    drive(upload_deliveries, lambda u: u.key, untracked(upload), tally)
    drive(request_deliveries, lambda r: r.key, untracked(operate), tally)
    result = summary(tally, len(upload_deliveries) + len(request_deliveries))
    return {**result, **check(bootstrap.get_bus(), uploads, uris, requests, tally)}


def untracked(run: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    """Wrap ``run`` so that moto forgets the DynamoDB objects it tracked during the delivery.

    Every ``TransactWriteItems`` leaves moto a tracked backup copy of the whole table
    (``tests.support.aws.forget_tracked_models``): without this the run's memory grows with
    transactions x table size, quadratically in ``--n`` (23.8 GB at ``--n 1000``).
    """
    from tests.support.aws import forget_tracked_models

    def wrapped(item: Any) -> dict[str, Any]:
        try:
            return run(item)
        finally:
            forget_tracked_models()

    return wrapped


def summary(tally: Tally, deliveries: int) -> dict[str, Any]:
    return {
        "deliveries": deliveries,
        "throughput per s": round(deliveries / tally.wall, 1) if tally.wall else 0.0,
        "p50 ms": round(pct(tally.latencies, 0.50), 2),
        "p99 ms": round(pct(tally.latencies, 0.99), 2),
        "median ms": round(statistics.median(tally.latencies) * 1000, 2) if tally.latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="distinct uploads, and distinct operator requests")
    parser.add_argument("--dup", type=float, default=0.2, help="share of deliveries sent again")
    parser.add_argument("--backend", choices=["local", "moto", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    os.environ.setdefault("MODELPILOT_LOG_LEVEL", "ERROR")
    runs = {"local": run_local, "moto": run_moto}
    for name in ["local", "moto"] if args.backend == "both" else [args.backend]:
        cpu = time.process_time()
        result = runs[name](args.n, args.dup, args.seed)
        result["cpu s"] = round(time.process_time() - cpu, 1)
        print(f"== {name}: --n {args.n} --dup {args.dup} --seed {args.seed}")
        for key, value in result.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
