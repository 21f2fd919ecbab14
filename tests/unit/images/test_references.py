import pytest
from node_agent.runtime.images import references
from node_agent.runtime.images.references import InvalidReference, familiar, normalize, parse


@pytest.mark.parametrize(
    ("text", "full", "short"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/library/busybox:1", "docker.io/library/busybox:1", "busybox:1"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("someone/app:v2", "docker.io/someone/app:v2", "someone/app:v2"),
        ("myreg:5000/x/y:1", "myreg:5000/x/y:1", "myreg:5000/x/y:1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("quay.io/a/b-c_d.e", "quay.io/a/b-c_d.e:latest", "quay.io/a/b-c_d.e:latest"),
    ],
)
def test_normalizes_like_docker(text, full, short):
    assert normalize(text) == full
    assert familiar(full) == short
    assert parse(text).familiar == short


def test_digest_reference_keeps_digest_and_has_no_default_tag():
    digest = "sha256:" + "ab" * 32
    ref = parse(f"busybox@{digest}")
    assert ref.digest == digest
    assert ref.tag is None
    assert str(ref) == f"docker.io/library/busybox@{digest}"
    both = parse(f"myreg:5000/x:1@{digest}")
    assert (both.domain, both.path, both.tag, both.digest) == ("myreg:5000", "x", "1", digest)


def test_port_is_not_mistaken_for_a_tag():
    ref = parse("myreg:5000/x")
    assert (ref.domain, ref.path, ref.tag) == ("myreg:5000", "x", "latest")


@pytest.mark.parametrize(
    "text",
    ["", "Busybox", "busybox:", "busybox@sha256:short", "a//b", "-bad", "busybox:has space",
     "busybox:" + "x" * 200, " busybox"],
)
def test_rejects_invalid(text):
    with pytest.raises(InvalidReference):
        parse(text)


def test_uppercase_hint():
    with pytest.raises(InvalidReference, match="lowercase"):
        parse("MyApp")


def test_is_digest():
    assert references.is_digest("sha256:" + "0" * 64)
    assert not references.is_digest("sha256:" + "0" * 63)
