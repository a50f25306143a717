"""The kinds of submission as job descriptions (bot/usecases/jobs.py): each kind's one API
call, sent to the simulator, and the kinds read back from stored names. (/video's options
are the studio's: tests/test_studio*.py.)"""

from __future__ import annotations

import pytest

from bot.mj.client import MjClient
from bot.usecases import jobs
from bot.usecases.jobs import Kind, Sent
from mjsim import SimConfig, Simulator
from tests.harness import API_KEY

URI = "data:image/png;base64,iVBORw0KGgo="  # the simulator takes any data URI
OTHER = "data:image/png;base64,iVBORw0KGgoA="


@pytest.fixture
async def api():
    sim = Simulator(SimConfig(api_key=API_KEY, time_scale=0.01))
    await sim.start()
    client = MjClient(sim.base_url, API_KEY)
    yield sim, client
    await client.aclose()
    await sim.stop()


CASES = [
    (jobs.imagine("a fox --ar 3:2", checked="a fox"), 0, "imagine", {"prompt": "a fox --ar 3:2"}),
    (jobs.describe(""), 1, "describe", {"base64": URI}),
    (
        jobs.blend("", "PORTRAIT"),
        2,
        "blend",
        {"base64Array": [URI, OTHER], "dimensions": "PORTRAIT"},
    ),
    (jobs.swap(""), 2, "swap", {"sourceBase64": URI, "targetBase64": OTHER}),
    (jobs.shorten("a long prompt"), 0, "shorten", {"prompt": "a long prompt"}),
    (jobs.edit("", "make it blue", check=True), 1, "edits", {"prompt": "make it blue"}),
]


@pytest.mark.parametrize(("job", "photos", "route", "body"), CASES, ids=[c[2] for c in CASES])
async def test_each_job_makes_its_one_request(api, job, photos, route, body):
    sim, client = api
    uris = [URI, OTHER, URI][:photos]
    submission = await job.call(client, uris, Sent("relax", "", "k123456789"))
    assert submission.task_id
    (sent,) = sim.submits(route)
    assert {name: sent.body[name] for name in body} == body
    assert sent.body["state"] == "k123456789"
    assert sent.prefix == "/relax"
    assert len(sim.submits()) == 1


def test_photo_counts_and_what_the_prompt_rules_check():
    assert jobs.imagine("a b --x", checked="a b").checked == "a b"
    assert jobs.describe("").photos == (1, 1) and jobs.describe("").checked is None
    assert jobs.blend("", "SQUARE").photos == (2, 5)
    assert jobs.swap("").photos == (2, 2)
    assert jobs.shorten("p").photos is None and jobs.shorten("p").checked == "p"
    # Without its photo an edit asks for it first: the prompt is checked after.
    assert jobs.edit("", "p", check=False).checked is None
    assert jobs.edit("", "p", check=True).checked == "p"


def test_a_stored_name_becomes_a_kind_or_nothing():
    assert [Kind.of(k.value) for k in Kind] == list(Kind)
    assert Kind.of("imagine") is Kind.IMAGINE
    assert Kind.of("__class__") is None and Kind.of("") is None
