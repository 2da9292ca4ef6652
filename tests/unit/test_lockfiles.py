"""What a lockfile pins: pylock.toml (PEP 751), uv.lock and requirements.txt with hashes."""

from __future__ import annotations

import pytest

from pallet.core.lockfiles import LockfileError, Pin, read

A, B, C = "a" * 64, "b" * 64, "c" * 64

PYLOCK = f"""
lock-version = "1.0"
created-by = "pip"
[[packages]]
name = "Six"
version = "1.17.0"
wheels = [{{ name = "six-1.17.0-py2.py3-none-any.whl", hashes = {{ sha256 = "{A}" }} }}]
sdist = {{ name = "six-1.17.0.tar.gz", hashes = {{ sha256 = "{B}" }} }}
[[packages]]
name = "local-thing"
directory = {{ path = "." }}
"""

UV_LOCK = f"""
version = 1
[[package]]
name = "idna"
version = "3.20"
source = {{ registry = "https://example/simple" }}
sdist = {{ url = "https://example/idna-3.20.tar.gz", hash = "sha256:{A}" }}
wheels = [{{ url = "https://example/idna-3.20-py3-none-any.whl", hash = "sha256:{C}" }}]
[[package]]
name = "me"
version = "0.1.0"
source = {{ editable = "." }}
"""

REQUIREMENTS = f"""# pinned
six==1.17.0 \\
    --hash=sha256:{A} \\
    --hash=sha256:{B}
Django_Thing==1.0 --hash sha256:{C}  # a comment
--index-url https://example/simple/
./local/path
unhashed==1.0
"""


def test_pylock() -> None:
    assert read("pylock.toml", PYLOCK) == [Pin("six", A), Pin("six", B)]
    assert read("pylock.dev.toml", PYLOCK) == [Pin("six", A), Pin("six", B)]


def test_uv_lock() -> None:
    assert read("uv.lock", UV_LOCK) == [Pin("idna", A), Pin("idna", C)]


def test_requirements_with_hashes() -> None:
    assert read("requirements.txt", REQUIREMENTS) == [
        Pin("django-thing", C), Pin("six", A), Pin("six", B)
    ]  # fmt: skip


@pytest.mark.parametrize(("name", "text"), [("uv.lock", "[[package"), ("pylock.toml", "x = ")])
def test_unreadable_lockfiles_are_refused(name: str, text: str) -> None:
    with pytest.raises(LockfileError):
        read(name, text)


def test_entries_without_a_sha256_pin_nothing() -> None:
    text = 'version = 1\n[[package]]\nname = "x"\nsdist = { url = "u", hash = "md5:abc" }\n'
    assert read("uv.lock", text) == []
