"""The policy loader: fails closed on an empty or unreadable file, and re-reads a changed one after its TTL.

What these prove: the loader's rules on a local file and on an artifact-store URI (the in-memory store,
whose conditional read is the port's default). What they cannot prove: that S3 and Blob Storage answer
the conditional read with 304 (tests/entrypoints/test_aws_upload.py and
tests/integration/azure/test_azure_forward_only.py and tests/contract do, on moto and Azurite).
"""

from __future__ import annotations

import pytest

from modelpilot.config import Settings
from modelpilot.exceptions import PolicyError, TransientError
from modelpilot.policy import default_policy, load_policy_text
from modelpilot.policy.loader import DEFAULT_TTL_SECONDS, PolicyLoader
from modelpilot.testing import InMemoryArtifactStore

URI = "mem://models/modelpilot.yaml"
STRICT = "environments: [dev, prod]\ndefaults:\n  environments:\n    dev: {thresholds: ['auc >= 0.9']}\n"
LOOSE = "environments: [dev, prod]\ndefaults:\n  environments:\n    dev: {thresholds: ['auc >= 0.5']}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def threshold(policy) -> str:
    return str(policy.gates_for("churn", "dev").thresholds[0])


# -- 5. fails closed ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n", "null\n", "~\n"])
def test_an_empty_policy_text_is_an_error_not_the_default(text):
    with pytest.raises(PolicyError, match="empty"):
        load_policy_text(text, source="modelpilot.yaml")


@pytest.mark.parametrize("where", ["conventional", "named"])
@pytest.mark.parametrize("content", [b"", b"\n# emptied by a bad deploy\n", b"\xff\xfe not utf-8", b"environments: ["])
def test_an_empty_or_unreadable_policy_in_storage_is_an_error(where, content):
    store = InMemoryArtifactStore()
    store.objects[URI] = content
    loader = PolicyLoader(store, **{where: URI})
    with pytest.raises(PolicyError) as raised:
        loader()
    assert raised.value.details["source"] == URI
    with pytest.raises(PolicyError):  # every use, not only the first
        loader()


def test_an_empty_local_policy_file_is_an_error(tmp_path):
    path = tmp_path / "modelpilot.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(PolicyError, match="empty"):
        PolicyLoader(InMemoryArtifactStore(), conventional=str(path))()


def test_a_missing_conventional_policy_is_still_the_documented_default(tmp_path):
    assert PolicyLoader(InMemoryArtifactStore(), conventional=URI)() == default_policy()
    assert PolicyLoader(InMemoryArtifactStore(), conventional=str(tmp_path / "modelpilot.yaml"))() == default_policy()


def test_a_missing_named_policy_is_an_error(tmp_path):
    for location in (URI, str(tmp_path / "named.yaml")):
        with pytest.raises(PolicyError, match="does not exist"):
            PolicyLoader(InMemoryArtifactStore(), named=location)()


def test_a_policy_too_large_is_an_error():
    store = InMemoryArtifactStore()
    store.objects[URI] = b"#" * (2 * 1024 * 1024)
    with pytest.raises(PolicyError, match="cannot be read"):
        PolicyLoader(store, conventional=URI)()


# -- 7. a short TTL and a conditional read, not the life of the worker --------------------------------
def test_a_changed_policy_applies_after_the_ttl_and_an_unchanged_one_is_not_parsed_again():
    store, clock = InMemoryArtifactStore(), Clock()
    store.objects[URI] = LOOSE.encode()
    loader = PolicyLoader(store, conventional=URI, ttl_seconds=30, clock=clock)
    assert threshold(loader()) == "auc >= 0.5"
    store.objects[URI] = STRICT.encode()  # an operator tightens the threshold
    clock.now += 29
    assert threshold(loader()) == "auc >= 0.5"  # within the TTL: the policy read
    clock.now += 1
    assert threshold(loader()) == "auc >= 0.9"  # the TTL passed: the new policy
    assert loader.parses == 2
    clock.now += 300
    assert threshold(loader()) == "auc >= 0.9"
    assert loader.parses == 2  # checked again, unchanged: not parsed again


def test_a_local_file_is_checked_again_after_the_ttl(tmp_path):
    path, clock = tmp_path / "modelpilot.yaml", Clock()
    path.write_text(LOOSE, encoding="utf-8")
    loader = PolicyLoader(InMemoryArtifactStore(), conventional=str(path), ttl_seconds=30, clock=clock)
    assert threshold(loader()) == "auc >= 0.5"
    path.write_text(STRICT + "# tightened\n", encoding="utf-8")
    clock.now += 31
    assert threshold(loader()) == "auc >= 0.9"
    clock.now += 31
    loader()
    assert loader.parses == 2


def test_a_policy_that_breaks_fails_closed_and_a_fix_applies_after_the_ttl():
    store, clock = InMemoryArtifactStore(), Clock()
    store.objects[URI] = STRICT.encode()
    loader = PolicyLoader(store, conventional=URI, ttl_seconds=30, clock=clock)
    loader()
    store.objects[URI] = b""
    clock.now += 30
    with pytest.raises(PolicyError):
        loader()  # never the last good policy, never the default
    store.objects[URI] = LOOSE.encode()
    clock.now += 30
    assert threshold(loader()) == "auc >= 0.5"


def test_a_policy_created_where_none_was_applies_after_the_ttl():
    store, clock = InMemoryArtifactStore(), Clock()
    loader = PolicyLoader(store, conventional=URI, ttl_seconds=30, clock=clock)
    assert loader() == default_policy()
    store.objects[URI] = STRICT.encode()
    clock.now += 30
    assert threshold(loader()) == "auc >= 0.9"


def test_a_ttl_of_zero_checks_on_every_use():
    store, clock = InMemoryArtifactStore(), Clock()
    store.objects[URI] = LOOSE.encode()
    loader = PolicyLoader(store, conventional=URI, ttl_seconds=0, clock=clock)
    loader()
    store.objects[URI] = STRICT.encode()
    assert threshold(loader()) == "auc >= 0.9"


def test_a_transient_read_failure_is_raised_and_not_cached():
    class Flaky(InMemoryArtifactStore):
        fail = True

        def read_bytes(self, uri, *, max_bytes=16 * 1024 * 1024):
            if self.fail:
                raise TransientError("S3 is throttling")
            return super().read_bytes(uri, max_bytes=max_bytes)

    store = Flaky()
    store.objects[URI] = LOOSE.encode()
    loader = PolicyLoader(store, conventional=URI, ttl_seconds=30, clock=Clock())
    with pytest.raises(TransientError):
        loader()
    store.fail = False
    assert threshold(loader()) == "auc >= 0.5"  # at once: the failure was not kept for the TTL


def test_the_ttl_is_a_setting_with_a_safe_default():
    assert Settings.from_env({}).policy_ttl_seconds == DEFAULT_TTL_SECONDS == 30.0
    assert Settings.from_env({"MODELPILOT_POLICY_TTL_SECONDS": "5"}).policy_ttl_seconds == 5.0
    for bad in ("soon", "-3", "inf", "nan"):
        assert Settings.from_env({"MODELPILOT_POLICY_TTL_SECONDS": bad}).policy_ttl_seconds in (0.0, 30.0)
