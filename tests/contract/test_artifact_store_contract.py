"""The ArtifactStore contract: fake, folder, S3 and Blob stores behave the same."""

from __future__ import annotations

import hashlib

import pytest

from modelpilot.exceptions import AlreadyExists, ArtifactMissing, DataError


def test_write_read_stat_list(artifact_store):
    store, base = artifact_store
    a = store.join(base, "pkg", "model.bin")
    b = store.join(base, "pkg", "sub dir", "ünï côde.txt")
    store.write_bytes(a, b"abc")
    store.write_bytes(b, b"hello world")
    assert store.read_bytes(a) == b"abc"
    assert store.read_bytes(b) == b"hello world"
    assert store.stat(a).size == 3
    listed = [o.uri for o in store.list(store.join(base, "pkg"))]
    assert listed == sorted([a, b])
    assert store.list(store.join(base, "nothing-here")) == []


def test_streaming_sha256_matches(artifact_store):
    store, base = artifact_store
    data = bytes(range(256)) * 40_000  # ~10 MB, several chunks
    uri = store.join(base, "big.bin")
    store.write_bytes(uri, data)
    digest, size = store.sha256(uri)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert b"".join(store.open_chunks(uri, chunk_size=1 << 20)) == data


def test_missing_objects_raise_artifact_missing(artifact_store):
    store, base = artifact_store
    uri = store.join(base, "missing.bin")
    with pytest.raises(ArtifactMissing):
        store.read_bytes(uri)
    with pytest.raises(ArtifactMissing):
        store.stat(uri)
    with pytest.raises(ArtifactMissing):
        list(store.open_chunks(uri))


def test_read_bytes_refuses_large_objects(artifact_store):
    store, base = artifact_store
    uri = store.join(base, "large.bin")
    store.write_bytes(uri, b"x" * 2048)
    with pytest.raises(DataError):
        store.read_bytes(uri, max_bytes=1024)


def test_write_once(artifact_store):
    store, base = artifact_store
    uri = store.join(base, "reports", "r1.json")
    store.write_bytes(uri, b"{}", write_once=True)
    store.write_bytes(uri, b"{}", write_once=True)  # identical: idempotent
    with pytest.raises(AlreadyExists):
        store.write_bytes(uri, b'{"other": 1}', write_once=True)
    assert store.read_bytes(uri) == b"{}"
    store.write_bytes(uri, b"[]")  # plain writes overwrite
    assert store.read_bytes(uri) == b"[]"


def test_read_if_changed_is_a_conditional_read(artifact_store):
    """The policy loader's conditional read: the content and its etag, then "unchanged" for that etag."""
    store, base = artifact_store
    uri = store.join(base, "modelpilot.yaml")
    store.write_bytes(uri, b"environments: [dev]\n")
    data, etag = store.read_if_changed(uri, None)
    assert data == b"environments: [dev]\n" and etag
    assert store.read_if_changed(uri, etag) == (None, etag)
    store.write_bytes(uri, b"environments: [dev, prod]\n")
    changed, other = store.read_if_changed(uri, etag)
    assert changed == b"environments: [dev, prod]\n" and other and other != etag
    with pytest.raises(DataError):
        store.read_if_changed(uri, None, max_bytes=4)
    with pytest.raises(ArtifactMissing):
        store.read_if_changed(store.join(base, "missing.yaml"), etag)
