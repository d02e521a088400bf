"""Model upload: modelpilot.json lands under models/ (S3 notification or EventBridge) → register, promote."""

from __future__ import annotations

from typing import Any

from modelpilot.bootstrap import get_bus
from modelpilot.entrypoints.aws import s3 as aws_s3
from modelpilot.entrypoints.aws.runtime import lambda_entry, reply, run_once


@lambda_entry("model_upload")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Register every uploaded package (newest per key, in ``sequencer`` order); ignore other objects."""
    results = []
    for upload in aws_s3.parse_uploads(event):
        command = aws_s3.to_command(upload)
        if command is None:
            results.append({"status": "ignored", "message": f"{upload.uri} is not a package manifest"})
            continue
        results.append(
            run_once("upload", upload.idempotency_key(), lambda c=command: reply(get_bus().handle(c)), context)
        )
    status = "ignored" if all(r["status"] == "ignored" for r in results) else "ok"
    return {"status": status, "results": results}
