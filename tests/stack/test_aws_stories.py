"""The stories on the deployed AWS stack (tests/stack/aws_harness.py): every function under its own role."""

from __future__ import annotations

import uuid

import pytest

from tests.stack import aws_stories


@pytest.mark.parametrize("name", list(aws_stories.STORIES))
def test_story(aws_stack, workdir, name):
    aws_stories.STORIES[name](aws_stack, workdir, uuid.uuid4().hex[:6])
    denied = aws_stack.server.denials()
    assert not denied, denied


def test_a_fresh_stack_without_a_policy_file_promotes_with_the_default_policy(fresh_stack, workdir):
    aws_stories.fresh_stack_default_policy(fresh_stack, workdir, uuid.uuid4().hex[:6])
    assert not fresh_stack.server.denials()
