import ast
import asyncio
import json
import re
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest

from bot.chat import MessageRef
from bot.mj.models import Task
from bot.mj.prompt import Model, RefKind
from bot.store import (
    ActiveReference,
    Charge,
    ChatSettings,
    InstanceRow,
    Preset,
    Store,
    TaskRow,
    Usage,
    UserSettings,
    new_key,
)
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SQLiteStore
from tests.dbrows import stored

# Each implementation of bot.store.Store, opened fresh in a test's directory: the tests that take
# the ``store`` fixture hold for all of them (the next one joins here).
OPENERS: dict[str, Callable[[Path, pytest.FixtureRequest], Awaitable[Store]]] = {
    "sqlite": lambda tmp, _: SQLiteStore.open(tmp / "db" / "mjbot.db"),
    "postgresql": lambda _, request: PostgresStore.open(
        request.getfixturevalue("pg_server").database()
    ),
}


@pytest.fixture(params=sorted(OPENERS))
async def store(request, tmp_path):
    store = await OPENERS[request.param](tmp_path, request)
    yield store
    await store.close()


def row(**kw) -> TaskRow:
    values = {
        "key": new_key(),
        "platform": "telegram",
        "chat_id": "-1",
        "user_id": "7",
        "kind": "imagine",
        "prompt": "a fox",
    }
    values.update(kw)
    return TaskRow(**values)


def task(status: str, progress: str = "", **kw) -> Task:
    data = {"id": "1712205491372224", "status": status, "progress": progress, **kw}
    parsed = Task.from_json(data)
    assert parsed is not None
    return parsed


async def test_migrations_set_user_version_and_wal(tmp_path):
    path = tmp_path / "m.db"
    store = await SQLiteStore.open(path)
    await store.close()
    db = sqlite3.connect(path)
    newest = max(
        int(p.name[:4])
        for p in resources.files("bot.store.migrations").iterdir()
        if p.name.endswith(".sql")
    )
    assert db.execute("PRAGMA user_version").fetchone()[0] == newest
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    store = await SQLiteStore.open(path)  # reopening applies nothing twice
    await store.close()


async def test_merge_only_moves_forward(store):
    r = await store.add_task(row(task_id="1712205491372224", status="NOT_START"))

    async def merge(update: Task) -> TaskRow | None:
        merged = await store.merge([update])
        return merged[0][0] if merged else None

    assert await merge(task("IN_PROGRESS", "46%", imageUrl="http://p/1")) is not None
    assert await merge(task("IN_PROGRESS", "31%", imageUrl="http://p/0")) is None
    assert await merge(task("SUBMITTED", "0%")) is None
    assert await merge(task("IN_PROGRESS", "46%", imageUrl="http://p/1")) is None
    # same rank with a new preview image is still news
    assert await merge(task("IN_PROGRESS", "46%", imageUrl="http://p/2")) is not None
    done = await merge(task("SUCCESS", "100%"))
    assert done is not None and done.status == "SUCCESS" and done.finished_at
    assert await merge(task("FAILURE")) is None  # final stays final
    stored = await store.task(r.key)
    assert stored is not None and stored.status == "SUCCESS" and stored.progress == 100


async def test_merge_applies_one_poll_answer_in_one_go(store):
    running = await store.add_task(row(task_id="10", status="IN_PROGRESS", progress=46))
    finishing = await store.add_task(row(task_id="11", status="IN_PROGRESS"))
    await store.merge([task("IN_PROGRESS", "46%", id="10", imageUrl="http://p/46")])
    answer = [
        task("IN_PROGRESS", "31%", id="10", imageUrl="http://p/31"),  # stale: dropped
        task("IN_PROGRESS", "62%", id="10", imageUrl="http://p/62"),  # same id, further: kept
        task("IN_PROGRESS", "93%", id="11", imageUrl="http://p/93"),
        task("SUCCESS", "100%", id="11", imageUrl="http://p/done"),  # further still
        task("SUCCESS", "100%", id="99"),  # not ours
    ]
    merged = await store.merge(answer)
    # finished first, so its result does not queue behind progress steps
    assert [(r.key, t.status.value, t.progress) for r, t in merged] == [
        (finishing.key, "SUCCESS", 100),
        (running.key, "IN_PROGRESS", 62),
    ]
    assert (await store.task(finishing.key)).status == "SUCCESS"
    assert (await store.task(running.key)).task.image_url == "http://p/62"
    assert await store.merge(answer) == []  # the same answer again changes nothing
    assert await store.merge([]) == []


async def test_unsent_results_are_found_once_released_and_idle(store):
    done = await store.add_task(row(task_id="20", status="SUCCESS"))
    live = await store.add_task(row(task_id="21", status="IN_PROGRESS"))
    assert [r.key for r in await store.unsent(idle_s=0)] == [done.key]
    assert await store.unsent(idle_s=60) == []  # just finished: its own delivery is under way
    assert await store.claim_delivery(done.key)
    assert await store.unsent(idle_s=0) == []  # being posted right now
    await store.release_delivery(done.key)  # posting failed
    assert [r.key for r in await store.unsent(idle_s=0)] == [done.key]
    await store.delivered(done.key, MessageRef("telegram", "-1", "9", "photo"))
    assert await store.unsent(idle_s=0) == []
    assert [r.key for r in await store.live_tasks()] == [live.key]
    old = await store.add_task(row(task_id="22", status="FAILURE"))
    await store.update(old.key, finished_at=time.time() - 2 * 86400)  # refused for two days
    assert await store.unsent(idle_s=0, within_s=86400) == []


async def test_delivery_is_claimed_once(store):
    r = await store.add_task(row(task_id="1", status="SUCCESS"))
    results = await asyncio.gather(*(store.claim_delivery(r.key) for _ in range(10)))
    assert results.count(True) == 1
    await store.release_delivery(r.key)  # sending failed: the next round may try again
    assert await store.claim_delivery(r.key)
    await store.delivered(r.key, MessageRef("telegram", "-1", "9", "photo"))
    assert not await store.claim_delivery(r.key)
    assert await store.undelivered() == []
    assert (await store.task(r.key)).result_ref == "telegram|-1|9|photo"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_claim_of_a_dead_process_is_taken_over(tmp_path, request, kind):
    if kind == "sqlite":
        where = str(tmp_path / "t.db")
        reopen: Callable[[], Awaitable[Store]] = lambda: SQLiteStore.open(where)  # noqa: E731
    else:
        where = request.getfixturevalue("pg_server").database()
        reopen = lambda: PostgresStore.open(where)  # noqa: E731
    first = await reopen()
    r = await first.add_task(row(task_id="1", status="SUCCESS"))
    assert await first.claim_delivery(r.key)
    await first.close()  # killed while posting
    await asyncio.sleep(0.01)
    second = await reopen()
    assert [u.key for u in await second.undelivered()] == [r.key]
    assert await second.claim_delivery(r.key)
    assert not await second.claim_delivery(r.key)
    await second.close()


async def test_events_are_acted_on_once(store):
    assert await store.first_time("telegram:u:41")
    assert not await store.first_time("telegram:u:41")
    assert await store.first_time("")


async def test_ten_presses_make_one_child(store):
    parent = await store.add_task(row(task_id="1", status="SUCCESS"))
    children = [row(kind="action", parent_key=parent.key) for _ in range(10)]
    claims = await asyncio.gather(*(store.add_child(c, parent.key, "1") for c in children))
    winners = [c for c, a in zip(children, claims, strict=True) if a.held_by is None]
    assert len(winners) == 1 and not any(a.again for a in claims)
    assert {a.held_by.key for a in claims if a.held_by is not None} == {winners[0].key}
    # once the child is final and posted, the same button may be pressed again
    await store.update(winners[0].key, status="SUCCESS", delivered_at=1.0)
    second = row(kind="action")
    again = await store.add_child(second, parent.key, "1")
    assert again.held_by is None and again.again
    await store.update(second.key, status="SUCCESS", delivered_at=2.0)
    # ...unless it is done once for good (a U): then the earlier child keeps the slot
    held = await store.add_child(row(kind="action"), parent.key, "1", again=False)
    assert held.held_by is not None and held.held_by.key == second.key


async def test_live_tasks_and_refs(store):
    live = await store.add_task(row(task_id="1", status="IN_PROGRESS"))
    await store.add_task(row(task_id="2", status="SUCCESS"))
    await store.add_task(row(task_id="3", status="MODAL"))
    await store.add_task(row(status="SUBMITTING"))
    ref = MessageRef("telegram", "-1", "42", "photo")
    await store.update(live.key, progress_ref=ref)
    rows = await store.live_tasks()
    assert [r.key for r in rows] == [live.key]
    assert rows[0].ref("progress") == ref


async def test_modal_answer_is_claimed_once(store):
    r = await store.add_task(row(task_id="9", status="MODAL"))
    await store.add_modal(r.key, "zoom", "a fox --zoom 2")
    await store.set_modal_ask(r.key, MessageRef("telegram", "-1", "77"))
    found = await store.modal_for_reply("telegram", "-1", "77")
    assert found is not None and found.prefill == "a fox --zoom 2"
    assert await store.modal_for_reply("telegram", "-2", "77") is None
    assert [await store.claim_modal(r.key) for _ in range(3)] == [True, False, False]


async def test_settings_are_typed_and_kept_per_person_and_chat(store):
    assert await store.user_settings("telegram", "7") == UserSettings()
    await store.change_user_settings("telegram", "7", lambda s: replace(s, mode="relax"))
    await store.change_user_settings("telegram", "7", lambda s: replace(s, lang="zh"))
    assert await store.user_settings("telegram", "7") == UserSettings(mode="relax", lang="zh")
    await store.change_user_settings("telegram", "7", lambda s: replace(s, mode=None))
    kept = await store.change_user_settings("telegram", "7", lambda s: replace(s, menus=("m",)))
    assert (
        kept == await store.user_settings("telegram", "7") == UserSettings(lang="zh", menus=("m",))
    )
    assert await store.user_settings("discord", "7") == UserSettings()  # per platform
    await store.change_chat_settings("telegram", "-1", lambda c: replace(c, buttons="chat"))
    assert await store.chat_settings("telegram", "-1") == ChatSettings(buttons="chat")
    assert await store.chat_settings("telegram", "-2") == ChatSettings()
    # The same documents on both stores: one JSON object a scope.
    (row,) = stored(store, "SELECT data FROM settings WHERE scope = 'user:telegram:7'")
    assert json.loads(row["data"]) == {"lang": "zh", "menus": ["m"]}
    secret = await store.keep_hook_secret("first")
    assert secret == "first" and await store.keep_hook_secret("second") == "first"


async def test_a_question_never_recorded_is_still_found_for_its_user(store):
    r = await store.add_task(row(task_id="9", status="MODAL"))
    await store.add_modal(r.key, "zoom", "a fox --zoom 2")
    found = await store.unrecorded_modal("telegram", "-1", "7")
    assert found is not None and found.key == r.key
    assert await store.unrecorded_modal("telegram", "-1", "8") is None  # someone else
    await store.set_modal_ask(r.key, MessageRef("telegram", "-1", "77"))
    assert await store.unrecorded_modal("telegram", "-1", "7") is None  # recorded now


# --- one store interface ----------------------------------------------------------------------

SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|PRAGMA|BEGIN|WITH)\s")
ROOT = Path(__file__).resolve().parents[1]


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for package in ("bot", "adapters", "mjsim"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append((module, ast.parse(path.read_text(), str(path))))
    return found


def test_every_sql_statement_is_in_the_store():
    """The store is the one place that speaks SQL (a second implementation is one class):
    no SQL text, no database driver and no store class anywhere else, except that the
    composition root and the CLI open the stores."""
    found = []
    for module, tree in _modules():
        if module.startswith("bot.store"):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if SQL.match(node.value):
                    found.append(f"{module}:{node.lineno} {node.value[:40]!r}")
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("sqlite3", "aiosqlite", "asyncpg"):
                    found.append(f"{module} imports {name}")
                if name in ("bot.store.sqlite", "bot.store.postgres") and module not in (
                    "bot.app",
                    "bot.cli",
                ):
                    found.append(f"{module} imports {name}")
    assert found == []


class _Refused(Exception):
    pass


async def test_payments_take_turns_so_a_limit_holds_under_a_burst(store):
    """Ten submits at once by one person allowed one job in flight: one task, one charge.
    (SQLite: one writer at a time; PostgreSQL: the ledger is locked by the first payment.)"""

    async def pay_one_at_a_time(ledger) -> str:
        if await ledger.running("telegram", "7") >= 1:
            raise _Refused
        await asyncio.sleep(0.01)  # a slow check: the others arrive meanwhile
        charge = Charge(new_key(), "k", "telegram", "7", "-1", "imagine", 1, "d", "m", 1.0)
        await ledger.record(charge)
        return charge.id

    outcomes = await asyncio.gather(
        *(store.add_task(row(), pay=pay_one_at_a_time) for _ in range(10)),
        return_exceptions=True,
    )
    won = [o for o in outcomes if isinstance(o, TaskRow)]
    assert len(won) == 1 and all(isinstance(o, _Refused) for o in outcomes if o not in won)
    assert len(stored(store, "SELECT * FROM tasks")) == 1
    (charge,) = stored(store, "SELECT * FROM ledger")
    assert charge["id"] == won[0].charge_id and charge["outcome"] == "pending"
    assert (await store.usage("telegram", "7", "d", "m")).running == 1


async def test_merges_of_one_task_from_two_sources_apply_in_order(store):
    """A poll and a callback for one task at once: the task ends at the furthest update, and
    each step is reported once."""
    r = await store.add_task(row(task_id="1712205491372224", status="SUBMITTED"))
    updates = [
        task("IN_PROGRESS", f"{p}%", imageUrl=f"http://x/{p}.png") for p in range(10, 100, 10)
    ]
    updates.append(task("SUCCESS", "100%", imageUrl="http://x/done.png"))
    results = await asyncio.gather(*(store.merge([u]) for u in updates * 2))
    final = [t for moved in results for _, t in moved if t.is_final]
    assert len(final) == 1
    assert (await store.task(r.key)).status == "SUCCESS"


async def test_prompting_settings_round_trip_and_old_documents_stay_readable(store):
    ref = ActiveReference(RefKind.OMNI, "https://cdn.example/p.png", 250.0, "photo#3")
    chosen = UserSettings(
        model=Model.NIJI7,
        raw=True,
        stylize="high",
        personalize=True,
        profile_code="m7abc",
        profile_codes=("m7abc", "x1"),
        style_codes=("1234",),
        variation="low",
        remix=True,
        mode="turbo",
        draft=True,
        hd=False,
        quality="2",
        references=(ref,),
        presets=(Preset("portrait", model=Model.V7, raw=True, stylize="low"),),
    )
    kept = await store.change_user_settings("telegram", "9", lambda s: chosen)
    assert kept == chosen == await store.user_settings("telegram", "9")
    (row,) = stored(store, "SELECT data FROM settings WHERE scope = 'user:telegram:9'")
    data = json.loads(row["data"])
    assert data["model"] == "niji7" and data["references"] == [
        {"kind": "oref", "url": "https://cdn.example/p.png", "weight": 250.0, "label": "photo#3"}
    ]
    assert data["presets"][0]["name"] == "portrait" and "menus" not in data
    # a document of an older version (and odd values of a newer or broken one) still reads
    old = {
        "mode": "relax",
        "suffix": "--ar 3:2",
        "model": "v99",
        "raw": "yes",
        "references": [{"kind": "oref"}, {"kind": "zz", "url": "u"}, 5],
        "presets": [{}],
        "someday": {"x": 1},
    }
    got = UserSettings.from_document(old)
    assert got == UserSettings(mode="relax", suffix="--ar 3:2")
    await store.change_chat_settings("telegram", "-9", lambda c: replace(c, model=Model.V7))
    assert (await store.chat_settings("telegram", "-9")).model is Model.V7


def test_presets_carry_the_prompting_choices():
    mine = UserSettings(model=Model.V7, raw=True, stylize="high", suffix="--ar 2:3", lang="zh")
    preset = mine.preset("portrait")
    assert preset == Preset("portrait", model=Model.V7, raw=True, stylize="high", suffix="--ar 2:3")
    applied = UserSettings(lang="en", draft=True).with_preset(preset)
    assert applied == UserSettings(
        lang="en", model=Model.V7, raw=True, stylize="high", suffix="--ar 2:3"
    )
    options = applied.options()
    assert (options.model, options.raw, options.stylize, options.suffix) == (
        Model.V7,
        True,
        250,
        "--ar 2:3",
    )


# --- leases: several instances on one database ----------------------------------------------


def instance(name: str) -> InstanceRow:
    return InstanceRow(name, "host-" + name, 4242, time.time(), 0.0, 0.0)


async def live_rows(store, n: int) -> list[str]:
    keys = []
    for i in range(n):
        r = await store.add_task(row(task_id=f"live-{i}", status="IN_PROGRESS"))
        keys.append(r.key)
    await store.add_task(row(task_id="done", status="SUCCESS"))  # final: nobody's to follow
    await store.add_task(row(task_id="asking", status="MODAL"))  # waits for an answer
    return keys


async def test_instances_leasing_at_once_never_share_a_task(store):
    keys = await live_rows(store, 40)
    names = [f"i{n}" for n in range(8)]
    for _ in range(3):  # rounds of eight instances asking at the same moment
        answers = await asyncio.gather(*(store.lease_tasks(n, 30.0, limit=5) for n in names))
        told = [r.key for rows in answers for r in rows]
        assert len(told) == len(set(told))  # no task handed to two instances
    held = {name: await store.lease_tasks(name, 30.0, limit=5) for name in names}
    taken = [r.key for rows in held.values() for r in rows]
    assert sorted(taken) == sorted(keys)  # each live task once, none twice
    assert all(r.lease_owner == name for name, rows in held.items() for r in rows)
    a, b = held["i0"], held["i1"]
    # Asked again, each keeps its own and takes nothing of the other's.
    again = await store.lease_tasks("i0", 30.0, limit=10)
    assert {r.key for r in again} >= {r.key for r in a} and not {r.key for r in b} & {
        r.key for r in again
    }
    assert await store.lease_tasks("c", 30.0, limit=10) == []


async def test_a_lapsed_lease_is_taken_and_a_heartbeat_keeps_it(store):
    keys = await live_rows(store, 2)
    await store.heartbeat(instance("a"), 0.3)
    assert len(await store.lease_tasks("a", 0.3, limit=10)) == 2
    await store.heartbeat(instance("a"), 5.0)  # alive: every lease of a is extended
    await asyncio.sleep(0.4)
    assert await store.lease_tasks("b", 5.0, limit=10) == []
    # a stops beating (killed): once its leases lapse, b takes its tasks.
    await store.heartbeat(instance("a"), 0.2)
    await asyncio.sleep(0.3)
    taken = await store.lease_tasks("b", 5.0, limit=10)
    assert {r.key for r in taken} == set(keys) and {r.lease_owner for r in taken} == {"b"}
    assert await store.lease_tasks("a", 5.0, limit=10) == []  # back, but b holds them now
    (a,) = [i for i in await store.instances() if i.id == "a"]
    assert a.host == "host-a" and not a.alive(time.time())


async def test_a_clean_stop_hands_its_tasks_over_at_once(store):
    keys = await live_rows(store, 3)
    await store.heartbeat(instance("a"), 60.0)
    assert len(await store.lease_tasks("a", 60.0, limit=10)) == 3
    await store.release_tasks("a")
    assert {r.key for r in await store.lease_tasks("b", 60.0, limit=10)} == set(keys)
    assert not [i for i in await store.instances() if i.id == "a" and i.alive(time.time())]


async def test_reports_people_and_access_read_the_same_on_every_store(store):
    """The admin page's and /stats' numbers, people and access rules: exact values, so both
    stores' SQL (aggregates, filters, intervals) must agree."""
    t0 = time.time()
    made = []
    for user, status in (
        ("7", "SUCCESS"),
        ("7", "FAILURE"),
        ("7", "IN_PROGRESS"),
        ("8", "SUCCESS"),
    ):
        made.append(await store.add_task(row(user_id=user, status=status, task_id=new_key())))
    await store.update(made[0].key, result_ref=MessageRef("telegram", "-1", "55", "photo"))
    per_user = await store.tasks_per_user(t0 - 1)
    assert [(u.user_id, u.tasks, u.succeeded, u.failed) for u in per_user] == [
        ("7", 3, 1, 1),
        ("8", 1, 1, 0),
    ]
    (interval,) = await store.tasks_per_interval(t0 - 1, 86400)
    assert (interval.tasks, interval.succeeded) == (4, 2)
    assert interval.start == int(made[0].created_at // 86400) * 86400  # a day's start
    assert await store.tasks_per_interval(time.time() + 10, 60) == []
    assert [r.key for r in await store.unfinished_tasks(10)] == [made[2].key]
    assert [r.key for r in await store.latest_tasks(2)] == [made[3].key, made[2].key]
    assert [r.key for r in await store.recent_tasks("telegram", "7", 10)] == [
        m.key for m in reversed(made[:3])
    ]
    found = await store.task_by_message(MessageRef("telegram", "-1", "55"))
    assert found is not None and found.key == made[0].key

    async def pay(units: int, user: str, day: str):
        async def paying(ledger) -> str:
            charge = Charge(new_key(), "k", "telegram", user, "-1", "imagine", units, day, "m", 1.0)
            await ledger.record(charge)
            return charge.id

        return await store.charge(paying)

    kept = await pay(3, "7", "2026-12-03")
    refunded = await pay(2, "7", "2026-12-03")
    await pay(5, "8", "2026-12-01")
    await store.settle_charge(kept, "success")
    await store.settle_charge(refunded, "refunded")
    await store.settle_charge(refunded, "success")  # settling twice changes nothing
    await store.remember_person("telegram", "8", "bob", "Bob")
    assert await store.usage("telegram", "7", "2026-12-03", "m") == Usage(3, 3, 0, 1, 1)
    stats = await store.stats("2026-12-03", "2026-11-27")
    assert (stats.today, stats.jobs_today, stats.week, stats.jobs_week, stats.failures_week) == (
        3,
        2,
        8,
        3,
        1,
    )
    assert [(s.user_id, s.handle, s.units) for s in stats.top] == [("8", "bob", 5), ("7", "", 3)]
    assert await store.person_by_handle("telegram", "bob") == "8"
    await store.remember_person("telegram", "8", "robert", "Bob")  # a new handle replaces it
    assert await store.person_by_handle("telegram", "bob") is None
    await store.set_access_rule("telegram", "user", "9", "ban", "7")
    await store.set_access_rule("telegram", "user", "9", "allow", "7")
    assert await store.access_rule("telegram", "user", "9") == "allow"
    await store.set_access_rule("telegram", "user", "9", None, "7")
    assert await store.access_rule("telegram", "user", "9") is None
