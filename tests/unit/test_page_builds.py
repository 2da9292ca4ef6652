"""One build per page at a time: waiters share it, a waiter leaving cancels nothing, and a
failure reaches every waiter without sticking."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pallet.index.cache import Builds


async def _until(condition, limit: float = 10.0) -> None:  # noqa: ANN001
    for _ in range(int(limit / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def test_concurrent_misses_share_one_build():
    builds, release, calls = Builds(), threading.Event(), []

    def build() -> str:
        calls.append(1)
        assert release.wait(10)
        return "page"

    async def main() -> list[str]:
        waiters = [asyncio.ensure_future(builds.run("k", build)) for _ in range(20)]
        await _until(lambda: calls)
        await asyncio.sleep(0)  # every waiter has joined by now: they started before the build
        release.set()
        return await asyncio.gather(*waiters)

    assert asyncio.run(main()) == ["page"] * 20
    assert len(calls) == 1


def test_other_keys_build_on_their_own():
    builds = Builds()

    async def main() -> list[str]:
        return await asyncio.gather(*(builds.run(k, lambda k=k: k * 2) for k in ("a", "b")))

    assert asyncio.run(main()) == ["aa", "bb"]


def test_a_waiter_that_leaves_does_not_cancel_the_build_for_the_others():
    builds, release = Builds(), threading.Event()

    async def main() -> str:
        first = asyncio.ensure_future(builds.run("k", lambda: release.wait(10) and "page"))
        second = asyncio.ensure_future(builds.run("k", lambda: "another build"))
        await asyncio.sleep(0)
        first.cancel()
        await asyncio.sleep(0)
        release.set()
        return await second

    assert asyncio.run(main()) == "page"


def test_a_failed_build_fails_its_waiters_and_the_next_request_builds_again():
    builds, attempts = Builds(), []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("database went away")
        return "page"

    async def main() -> str:
        with pytest.raises(RuntimeError):
            await builds.run("k", build)
        return await builds.run("k", build)

    assert asyncio.run(main()) == "page"
    assert len(attempts) == 2
