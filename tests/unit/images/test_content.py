import hashlib
import io
import os

import pytest
from node_agent.runtime.images.content import BlobNotFound, ContentStore, DigestMismatch


def test_put_is_addressed_by_sha256_and_read_back(tmp_path):
    store = ContentStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == "sha256:" + hashlib.sha256(b"hello").hexdigest()
    assert store.path(digest) == tmp_path / "blobs" / "sha256" / digest[7:]
    assert store.read(digest) == b"hello"
    assert store.size(digest) == 5
    assert list(store.digests()) == [digest]


def test_stream_put_verifies_expected_digest(tmp_path):
    store = ContentStore(tmp_path)
    good = "sha256:" + hashlib.sha256(b"x" * 3_000_000).hexdigest()
    assert store.put(io.BytesIO(b"x" * 3_000_000), good) == good
    bad = "sha256:" + hashlib.sha256(b"other").hexdigest()
    with pytest.raises(DigestMismatch, match="expected"):
        store.put(io.BytesIO(b"tampered"), bad)
    assert not store.has(bad)
    assert os.listdir(tmp_path / "blobs" / "tmp") == []  # no partial blob left behind


def test_rejects_malformed_digests_and_missing_blobs(tmp_path):
    store = ContentStore(tmp_path)
    with pytest.raises(ValueError):
        store.put(b"x", "md5:abc")
    with pytest.raises(BlobNotFound):
        store.read("sha256:" + "0" * 64)
    assert store.delete("sha256:" + "0" * 64) is False
