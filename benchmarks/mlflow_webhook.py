"""MLflow webhook round trips against a real ``mlflow server`` (SQLite, 127.0.0.1) and ``modelpilot serve``.

Three numbers, each a median and p95 over ``--runs`` rounds:

* ``receiver``: a signed delivery POSTed straight to the receiver until its answer (signature, payload, the
  idempotency store, the handler: a tag that is not an approval), i.e. ModelPilot's own share;
* ``alias_to_promotion``: from the ``set_registered_model_alias`` call returning in MLflow's client until
  ModelPilot's alias has moved (MLflow's asynchronous delivery, the signature check, the promotion and its
  commit); the MLflow write-back (tags) follows the commit and is in ``alias_to_writeback``;
* ``version_to_registration``: from ``create_model_version`` returning until ModelPilot has registered the version
  (REST reads of the version and run, artifacts copied and hashed, the package verified again);
* ``version_to_reply``: the same until the receiver has answered MLflow's ``model_version.created`` delivery
  (registered and replied: the whole webhook round trip as MLflow sees it, its asynchronous send included);
* ``created_handling``: the receiver's share of that, from the delivery's arrival (signature check) to its answer.

Usage: ``python benchmarks/mlflow_webhook.py [--runs 20] [--versions 20]`` (needs the dev extra: it brings mlflow).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the test support's MLflow server runner

from modelpilot.bootstrap import bootstrap  # noqa: E402
from modelpilot.cli.serve import webhook_server  # noqa: E402
from modelpilot.config import Settings  # noqa: E402
from tests.support.mlflow_server import CLIENT_ENV, MlflowServer  # noqa: E402

SECRET_NAME = "modelpilot-mlflow-webhook"
POLICY = "version: 1\nenvironments: [staging, prod]\nmlflow:\n  aliases: {staging: challenger, prod: champion}\n"


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": round(statistics.median(ordered) * 1000, 2), "p95_ms": round(p95 * 1000, 2), "n": len(ordered)}


REPLIES: list[dict] = []
#: (delivery id, seconds from the delivery's arrival to its answer, perf_counter when answered)
HANDLED: list[tuple[str, float, float]] = []


def _wait(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the webhook never arrived; the receiver answered: {REPLIES[-3:]}")
        time.sleep(0.002)


def _time_the_receiver() -> None:
    """Time each ``model_version.created`` delivery inside the receiver (the edge ``modelpilot serve`` calls)."""
    from modelpilot.cli import serve

    edge = serve.receive

    def timed(bus, headers, body, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return edge(bus, headers, body, **kwargs)
        finally:
            if b'"model_version"' in body and b'"created"' in body:
                done = time.perf_counter()
                HANDLED.append((headers.get("X-MLflow-Delivery-Id", ""), done - start, done))

    serve.receive = timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--versions", type=int, default=20, help="model versions created (registration round trips)")
    args = parser.parse_args()
    import os

    os.environ.update(CLIENT_ENV)
    import mlflow
    from mlflow import MlflowClient
    from mlflow.webhooks.delivery import _generate_hmac_signature

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        server = MlflowServer(root / "mlflow")
        server.start()
        try:
            home = root / "home"
            (home / "secrets").mkdir(parents=True)
            secret = uuid.uuid4().hex
            (home / "secrets" / SECRET_NAME).write_text(secret)
            (home / "secrets" / SECRET_NAME).chmod(0o600)
            (home / "modelpilot.yaml").write_text(POLICY)
            bus = bootstrap(Settings(home=str(home), mlflow_tracking_uri=server.url))
            receiver = webhook_server(
                bus, host="127.0.0.1", port=0, secret_name=SECRET_NAME, observe=lambda *a: REPLIES.append(a[3])
            )
            _time_the_receiver()
            threading.Thread(target=receiver.serve_forever, daemon=True).start()
            url = f"http://127.0.0.1:{receiver.server_address[1]}/mlflow/webhook"
            client = MlflowClient(server.url)
            events = ["model_version.created", "model_version_alias.created", "model_version_tag.set"]
            client.create_webhook(name="modelpilot", url=url, events=events, secret=secret)
            mlflow.set_tracking_uri(server.url)
            name = "bench"
            client.create_registered_model(name)
            folder = root / "model"
            folder.mkdir()
            (folder / "MLmodel").write_text("flavors: {}\n")
            (folder / "weights.bin").write_bytes(b"\x01" * 256 * 1024)

            registration, replied, handling = [], [], []
            for i in range(max(3, args.versions)):
                with mlflow.start_run() as run:
                    mlflow.log_metric("auc", 0.8 + i / 1000)
                    mlflow.log_artifacts(str(folder), artifact_path="model")
                seen = len(HANDLED)
                mv = client.create_model_version(name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
                start = time.perf_counter()
                _wait(lambda v=mv.version: bus.services.registry.find_version(name, external_id=f"{name}/{v}"))
                registration.append(time.perf_counter() - start)
                _wait(lambda n=seen: len(HANDLED) > n)
                _, took, answered = HANDLED[seen]
                replied.append(answered - start)
                handling.append(took)

            promotion, writeback = [], []
            for i in range(args.runs):
                target = str(1 + i % 2)
                start = time.perf_counter()
                client.set_registered_model_alias(name, "challenger", target)
                _wait(lambda t=int(target): (a := bus.services.registry.get_alias(name, "staging")) and a.version == t)
                promotion.append(time.perf_counter() - start)
                _wait(lambda t=target: client.get_model_version(name, t).tags.get("modelpilot.staging") == "promoted")
                writeback.append(time.perf_counter() - start)

            direct = []
            for _ in range(args.runs * 5):
                body = json.dumps(
                    {
                        "entity": "model_version_tag",
                        "action": "set",
                        "timestamp": "",
                        "data": {"name": name, "version": "1", "key": "team", "value": "churn"},
                    }
                ).encode()
                delivery, stamp = str(uuid.uuid4()), str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-MLflow-Delivery-Id": delivery,
                    "X-MLflow-Timestamp": stamp,
                    "X-MLflow-Signature": _generate_hmac_signature(secret, delivery, stamp, body.decode()),
                }
                start = time.perf_counter()
                with urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=10) as reply:
                    reply.read()
                direct.append(time.perf_counter() - start)
            receiver.shutdown()
        finally:
            server.stop()
    print(
        json.dumps(
            {
                "mlflow_version": version("mlflow"),
                "receiver": _stats(direct),
                "alias_to_promotion": _stats(promotion),
                "alias_to_writeback": _stats(writeback),
                "version_to_registration": _stats(registration),
                "version_to_reply": _stats(replied),
                "created_handling": _stats(handling),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
