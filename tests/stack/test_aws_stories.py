"""The stories on the deployed AWS stack (tests/stack/aws_harness.py), every function under its own role,
and every permission of template.yaml needed by a story.

The stories run once, in one test, because they share a stack (and its server) and the permission
check needs the calls all of them made: for every statement of every function's role (as deployed
from template.yaml, with the dead-letter statement SAM adds), the role's recorded calls are
re-evaluated by moto's IAM evaluator against the role's policy without that statement; the
statement is needed when one of those calls would be refused. Removing a statement and running
a story again is shown end to end in test_aws_permission_removal.py for the statements the
issue names; here it is re-evaluated for all of them, which takes seconds instead of a rerun of
every story per statement.
"""

from __future__ import annotations

import json
import traceback
import uuid

import pytest

from tests.stack import aws_stories

#: (function or "*", statement) -> why removing it cannot fail a story on the harness
NOT_PROVABLE = {
    ("*", "DataKey"): "moto does not check the caller's use of the KMS key behind S3, DynamoDB, SNS and SQS encryption",
    ("SageMakerRegistryFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    ("AlarmFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    ("OperatorApiFunction", "DeadLetterQueuePolicy"): "the HTTP API invokes synchronously: nothing is dead-lettered",
    ("MlflowWebhookFunction", "DeadLetterQueuePolicy"): "the HTTP API invokes synchronously: nothing is dead-lettered",
    ("MlflowWebhookFunction", "ListModelBucket"): (
        "needed when modelpilot.yaml is absent (404, not 403); the MLflow story writes a policy file"
    ),
    ("PromoteFunction", "DeadLetterQueuePolicy"): "the story invokes the console function synchronously",
    ("RollbackFunction", "DeadLetterQueuePolicy"): "the story invokes the console function synchronously",
    ("DriftBatchFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    ("SloCheckFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    (
        "DriftPartialFunction",
        "DeadLetterQueuePolicy",
    ): "the state machine invokes synchronously: nothing is dead-lettered",
    (
        "DriftMergeFunction",
        "DeadLetterQueuePolicy",
    ): "the state machine invokes synchronously: nothing is dead-lettered",
    ("DriftPartialFunction", "ListModelBucket"): (
        "needed when a planned capture vanished before the child reads it (404, not 403); no story deletes one"
    ),
    ("DriftMergeFunction", "SageMakerWriteBack"): (
        "only the SageMaker function's and operator API's write-backs are a story"
    ),
    ("QualityBatchFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    ("QualityFeedbackFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    ("AlarmFunction", "ListModelBucket"): (
        "needed when modelpilot.yaml is absent (404, not 403); the alarm story needs a policy file (its rollback policy)"
    ),
    # the SageMaker function's and the operator API's write-backs are a story (sagemaker_approved); these functions
    # write back only when they promote, block or roll back a version registered from SageMaker, which their
    # stories do not do
    ("AlarmFunction", "SageMakerWriteBack"): "only the SageMaker function's and operator API's write-backs are a story",
    (
        "PromoteFunction",
        "SageMakerWriteBack",
    ): "only the SageMaker function's and operator API's write-backs are a story",
    (
        "RollbackFunction",
        "SageMakerWriteBack",
    ): "only the SageMaker function's and operator API's write-backs are a story",
    (
        "SloCheckFunction",
        "SageMakerWriteBack",
    ): "only the SageMaker function's and operator API's write-backs are a story",
    (
        "DriftBatchFunction",
        "SageMakerWriteBack",
    ): "only the SageMaker function's and operator API's write-backs are a story",
    (
        "QualityBatchFunction",
        "SageMakerWriteBack",
    ): "only the SageMaker function's and operator API's write-backs are a story",
    ("SloCheckFunction", "ListModelBucket"): (
        "needed when modelpilot.yaml is absent (404, not 403); the SLO story needs a policy file (its SLOs)"
    ),
    ("CanaryTickFunction", "DeadLetterQueuePolicy"): "only the upload function's dead-lettering is a story",
    ("CanaryTickFunction", "SageMakerWriteBack"): (
        "the tick writes back when it promotes a version registered from SageMaker at 100 %; the canary story's "
        "versions are uploads, and its last step is an operator's promote"
    ),
    # the serving manifest is written after a promotion or rollback; these functions roll back only under a rollback
    # policy for critical drift or degraded quality, which their stories do not set
    ("DriftBatchFunction", "WriteServingManifests"): "written when the drift batch rolls back; its story does not",
    ("DriftMergeFunction", "WriteServingManifests"): "written when the drift merge rolls back; its story does not",
    ("QualityBatchFunction", "WriteServingManifests"): "written when the quality batch rolls back; its story does not",
}


def run_clean(stack, story, work) -> None:
    """Run a story; no call of any function may be refused, and no invocation may fail unless the story meant it."""
    stack.server.clear_denials()
    start = len(stack.invocations)
    story(stack, work, uuid.uuid4().hex[:6])
    denied = stack.server.denials()
    assert not denied, denied
    failed = [i for i in stack.invocations[start:] if i.failed and not i.expected]
    assert not failed, [(i.function, i.reply, i.errors) for i in failed]


def _permitted(documents: list[dict], action: str, resource: str) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    from tests.stack.moto_server import patch_iam_wildcards

    patch_iam_wildcards()
    results = [IAMPolicy(json.dumps(d)).is_action_permitted(action, resource) for d in documents]
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


@pytest.mark.timeout(1800)  # every story of the stack runs in this one test
def test_the_stories_pass_on_the_deployed_stack_and_need_every_statement(aws_stack, tmp_path):
    aws_stack.server.clear_calls()
    failures = {}
    for name, story in aws_stories.STORIES.items():
        work = tmp_path / name
        work.mkdir()
        try:
            run_clean(aws_stack, story, work)
        except Exception:
            failures[name] = traceback.format_exc(limit=-3)
    assert not failures, "\n\n".join(f"{name}:\n{text}" for name, text in failures.items())

    calls = aws_stack.server.calls()
    ran = {f for functions in aws_stories.STORY_FUNCTIONS.values() for f in functions}
    assert ran == set(aws_stack.functions), "a function of the template is run by no story"
    unexplained, listed_but_needed, needed_count = [], [], 0
    for function in sorted(aws_stack.functions):
        key = aws_stack.function(function).credentials["aws_access_key_id"]
        made = {(c["action"], c["resource"]) for c in calls if c["access_key"] == key}
        assert made, f"{function} made no call"
        policies = aws_stack.role_policy(function)
        for name, document in policies.items():
            for index, statement in enumerate(document["Statement"]):
                sid = statement.get("Sid") or name
                reduced = [d for n, d in policies.items() if n != name]
                rest = [s for i, s in enumerate(document["Statement"]) if i != index]
                if rest:
                    reduced.append({**document, "Statement": rest})
                refused = sorted(c for c in made if not _permitted(reduced, *c))
                reason = NOT_PROVABLE.get((function, sid)) or NOT_PROVABLE.get(("*", sid))
                if refused:
                    needed_count += 1
                    if reason:
                        listed_but_needed.append((function, sid, refused[:2]))
                elif not reason:
                    unexplained.append((function, sid))
    assert not unexplained, f"statements no story needs (remove them, or add the story that needs them): {unexplained}"
    assert not listed_but_needed, f"statements listed as not provable that a story needs: {listed_but_needed}"
    assert needed_count >= 40
