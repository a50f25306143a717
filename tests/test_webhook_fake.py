"""The fake Bot API's webhook delivery behaves as Telegram's: the secret header on every post,
a failed post (non-2xx) retried, each chat's updates one at a time and in order, other chats not
held up by one that fails, and getWebhookInfo telling the last error."""

from __future__ import annotations

import telegram
from aiohttp import web

from tests.fakes.telegram import FakeTelegram

ALICE, BOB = 7001, 7002


async def test_retries_per_chat_order_and_other_chats_flow() -> None:
    posts: list[tuple[str | None, int, str]] = []  # (secret, chat, text) in arrival order
    failing = {"left": 2}  # Alice's first update fails twice

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        message = update["message"]
        chat, text = message["chat"]["id"], message["text"]
        posts.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), chat, text))
        if text == "a1" and failing["left"]:
            failing["left"] -= 1
            return web.Response(status=500)
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with FakeTelegram() as fake:
            fake.user(ALICE, "Alice")
            fake.user(BOB, "Bob")
            bot = telegram.Bot(**fake.bot_kwargs())
            async with bot:
                await bot.set_webhook(
                    f"http://127.0.0.1:{port}/hook",
                    secret_token="s3cret",
                    allowed_updates=["message"],
                )
                await fake.send_text(ALICE, ALICE, "a1")
                await fake.send_text(ALICE, ALICE, "a2")
                await fake.send_text(BOB, BOB, "b1")
                await fake.wait_for(lambda: len([p for p in posts if p[2] != "a1"]) == 2)
                info = await bot.get_webhook_info()
                assert info.last_error_message == (
                    "Wrong response from the webhook: 500 Internal Server Error"
                )
                assert info.allowed_updates == ("message",)
                assert {secret for secret, _, _ in posts} == {"s3cret"}
                texts = [text for _, _, text in posts]
                assert texts.count("a1") == 3  # two failures, then delivered
                # Alice's second update only after her first got its 2xx; Bob not held up.
                assert texts.index("a2") > len(texts) - 1 - texts[::-1].index("a1")
                assert texts.index("b1") < texts.index("a2")
                assert [s for u, s in fake.webhook_posts][-1] == 200
                assert (await bot.get_webhook_info()).pending_update_count == 0
                # setWebhook without allowed_updates keeps the previous list (Bot API).
                await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
                assert (await bot.get_webhook_info()).allowed_updates == ("message",)
                await bot.delete_webhook()
    finally:
        await runner.cleanup()
