"""Removing a statement from template.yaml and deploying makes a story fail, end to end (on the fresh stack).

The statements of the seams the stack had: without s3:ListBucket a missing modelpilot.yaml answers
403 instead of 404, so the default policy never applies and the first promotion fails; without the
registry statement an upload cannot register.
"""

from __future__ import annotations

import copy
import uuid

import pytest

from tests.stack import aws_stories
from tests.stack.aws_harness import Denied


def _without(stack, function: str, sid: str):
    """Deploy the function's role without statement ``sid`` (as a template without it would); return a restorer."""
    for name, document in stack.role_policy(function).items():
        kept = [s for s in document["Statement"] if s.get("Sid") != sid]
        if len(kept) < len(document["Statement"]):
            original = copy.deepcopy(document)
            stack.put_role_policy(function, name, {**document, "Statement": kept})
            stack.restart()

            def restore() -> None:
                stack.put_role_policy(function, name, original)
                stack.restart()

            return restore
    raise AssertionError(f"{function} has no statement {sid}")


@pytest.mark.parametrize(
    ("function", "sid", "refused"),
    [
        ("OperatorApiFunction", "ListModelBucket", "modelpilot.yaml"),  # the missing policy file answers 403
        ("ModelUploadFunction", "ListModelBucket", "modelpilot.yaml"),
        ("ModelUploadFunction", "RegistryReadWrite", "GetItem"),
    ],
)
def test_a_story_fails_with_access_denied_without_the_statement(fresh_stack, tmp_path, function, sid, refused):
    restore = _without(fresh_stack, function, sid)
    fresh_stack.server.clear_denials()
    fresh_stack.watch = fresh_stack.function(function).credentials["aws_access_key_id"]
    try:
        with pytest.raises(Denied, match=refused):
            aws_stories.fresh_stack_default_policy(fresh_stack, tmp_path, uuid.uuid4().hex[:6])
    finally:
        fresh_stack.watch = None
        restore()
    aws_stories.fresh_stack_default_policy(fresh_stack, tmp_path, uuid.uuid4().hex[:6])  # and passes with it again


def test_a_fresh_stack_without_a_policy_file_promotes_with_the_default_policy(fresh_stack, tmp_path):
    from tests.stack.test_aws_stories import run_clean

    run_clean(fresh_stack, aws_stories.fresh_stack_default_policy, tmp_path)
