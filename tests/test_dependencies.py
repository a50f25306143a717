"""Dependencies: floors past the releases with published advisories, and a constraints file
that pins every package mjbot[test] installs (CI installs with it: .ci/run)."""

from __future__ import annotations

import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.harness import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DIRECT = [Requirement(r) for r in PROJECT["dependencies"]]
TEST = [Requirement(r) for r in PROJECT["optional-dependencies"]["test"]]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            found[canonicalize_name(name)] = version
    return found


@pytest.mark.parametrize(
    ("name", "vulnerable"),
    [
        ("aiohttp", "3.12.13"),  # request smuggling through chunked trailers
        ("aiohttp", "3.14.2"),  # smuggling through a WebSocket upgrade (CVE-2026-69243)
        ("pillow", "11.2.1"),  # DDS encoder heap overflow (CVE-2025-48379)
        ("pillow", "12.2.0"),  # fixed in 12.3.0 with thirteen others
    ],
)
def test_no_release_with_a_known_advisory_is_allowed(name, vulnerable):
    (requirement,) = [r for r in DIRECT if canonicalize_name(r.name) == name]
    assert vulnerable not in requirement.specifier


def test_every_dependency_is_pinned_within_its_range():
    pinned = pins()
    for requirement in DIRECT + TEST:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in constraints.txt: run .ci/freeze_constraints.py"
        assert pinned[name] in requirement.specifier, f"{name}=={pinned[name]} vs {requirement}"
