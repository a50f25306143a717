"""bot.mj.transport on its own: one request with the retry policy, decoded or mapped to an error.

The client's tests (test_mj_client.py) cover every error shape through the API's methods; these
check the transport's own promises: reads are retried and submits are not, the key never leaves
in an error, an injected pool stays open, and counting."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from bot.mj.transport import ErrorKind, MjError, Reply, Transport

BASE = "https://api.example.com"
SECRET = "sk-transport-0123456789"

Make = Callable[..., tuple[Transport, list[httpx.Request]]]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    opened: list[httpx.AsyncClient] = []

    def factory(*answers: httpx.Response | Exception) -> tuple[Transport, list[httpx.Request]]:
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            answer = answers[min(len(seen), len(answers)) - 1]
            if isinstance(answer, Exception):
                raise answer
            return answer

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        opened.append(http)
        headers = {"Authorization": f"Bearer {SECRET}"}
        transport = Transport(BASE, headers=headers, secret=SECRET, retry_delay_s=0, http=http)
        return transport, seen

    yield factory
    for http in opened:
        await http.aclose()


async def test_a_reply_is_the_status_and_the_parsed_body(make: Make) -> None:
    transport, seen = make(httpx.Response(200, json={"id": "1"}))
    reply = await transport.call("GET", "/mj/task/1/fetch", idempotent=True)
    assert reply == Reply(200, {"id": "1"}) and reply.ok
    assert seen[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert transport.counts.requests == 1 and transport.counts.errors == {}


async def test_an_envelope_with_4xx_is_an_answer_not_an_error(make: Make) -> None:
    envelope = {"code": 3, "description": "关联任务不存在或已失效"}
    transport, _ = make(httpx.Response(404, json=envelope))
    reply = await transport.call("POST", "/mj/submit/action", body={}, idempotent=False)
    assert reply.status == 404 and not reply.ok and reply.body == envelope


async def test_reads_are_retried_and_submits_are_not(make: Make) -> None:
    transport, seen = make(httpx.Response(502), httpx.Response(200, json=[]))
    assert (await transport.call("POST", "/list", body={}, idempotent=True)).body == []
    assert len(seen) == 2 and transport.counts.errors == {ErrorKind.SERVER: 1}
    transport, seen = make(httpx.ReadTimeout("slow"))
    with pytest.raises(MjError) as caught:
        await transport.call("POST", "/mj/submit/imagine", body={}, idempotent=False)
    assert caught.value.kind is ErrorKind.TIMEOUT and len(seen) == 1


async def test_a_submit_that_never_left_is_sent_once_more(make: Make) -> None:
    transport, seen = make(httpx.ConnectError("refused"), httpx.Response(200, json={"code": 1}))
    reply = await transport.call("POST", "/mj/submit/imagine", body={}, idempotent=False)
    assert reply.body == {"code": 1} and len(seen) == 2


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (httpx.Response(401, text=f"bad key {SECRET}"), ErrorKind.AUTH),
        (httpx.Response(429, headers={"Retry-After": "7"}), ErrorKind.RATE_LIMITED),
        (httpx.Response(404, text="no such route"), ErrorKind.NOT_FOUND),
        (httpx.Response(200, text="<html>"), ErrorKind.BAD_RESPONSE),
        (httpx.Response(503, text=f"down {SECRET}"), ErrorKind.SERVER),
    ],
)
async def test_errors_are_mapped_in_one_place_and_the_key_is_masked(
    make: Make, answer: httpx.Response, kind: ErrorKind
) -> None:
    transport, _ = make(answer)
    with pytest.raises(MjError) as caught:
        await transport.call("GET", "/mj/task/1/fetch", idempotent=False)
    assert caught.value.kind is kind and SECRET not in str(caught.value)
    if kind is ErrorKind.RATE_LIMITED:
        assert caught.value.retry_after == 7.0


async def test_an_injected_pool_is_the_callers(make: Make) -> None:
    transport, _ = make(httpx.Response(200))
    await transport.aclose()
    assert not transport.is_closed
    owned = Transport(BASE, headers={})
    await owned.aclose()
    assert owned.is_closed


def test_error_texts_are_bounded() -> None:
    error = Transport(BASE, headers={}, secret=SECRET).error(ErrorKind.SERVER, SECRET + "x" * 999)
    assert len(error.detail) == 500 and error.detail.startswith("***")
