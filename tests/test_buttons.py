from bot import buttons
from bot.mj.models import Button, Task

HASH = "03ee7a3e-b4d2-4465-9165-b93c99cb6617"


def grid() -> list[Button]:
    ups = [Button(f"MJ::JOB::upsample::{i}::{HASH}", f"U{i}") for i in range(1, 5)]
    reroll = Button(f"MJ::JOB::reroll::0::{HASH}::SOLO", "", "🔄")
    vs = [Button(f"MJ::JOB::variation::{i}::{HASH}", f"V{i}") for i in range(1, 5)]
    return [*ups, reroll, *vs]


def test_token_round_trip_and_size():
    data = buttons.encode("abcdefghjk", 12)
    assert data == "m1:abcdefghjk:12"
    assert len(data.encode()) < 20
    token = buttons.decode(data)
    assert token is not None and token.key == "abcdefghjk" and token.index == 12


def test_forged_tokens_are_rejected():
    for forged in (
        "",
        "m1:short:1",
        "m2:abcdefghjk:1",
        "m1:abcdefghjk:1;drop",
        "x" * 64,
        "m1:ABCDEFGHJK:1",
        "m1:abcdefghjk:123",
        None,
    ):
        assert buttons.decode(forged) is None


def test_grid_layout_keeps_api_order_in_two_rows():
    rows = buttons.layout("abcdefghjk", grid(), "en")
    labels = [[c.label for c in row] for row in rows]
    assert labels == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    assert rows[0][1].token == "m1:abcdefghjk:1"
    assert rows[1][0].token == "m1:abcdefghjk:5"


def test_upscale_layout_groups_families_and_translates():
    raw = [
        {
            "customId": f"MJ::JOB::upsample_v7_2x_subtle::1::{HASH}::SOLO",
            "label": "Upscale (Subtle)",
            "emoji": "upscale_1",
        },
        {
            "customId": f"MJ::JOB::upsample_v7_2x_creative::1::{HASH}::SOLO",
            "label": "Upscale (Creative)",
            "emoji": "upscale_1",
        },
        {
            "customId": f"MJ::JOB::low_variation::1::{HASH}::SOLO",
            "label": "Vary (Subtle)",
            "emoji": "🪄",
        },
        {"customId": f"MJ::Inpaint::1::{HASH}::SOLO", "label": "Vary (Region)", "emoji": "🖌️"},
        {"customId": f"MJ::Outpaint::50::1::{HASH}::SOLO", "label": "Zoom Out 2x", "emoji": "🔍"},
        {"customId": f"MJ::CustomZoom::{HASH}", "label": "Custom Zoom", "emoji": "🔍"},
        {"customId": f"MJ::JOB::pan_left::1::{HASH}::SOLO", "label": "", "emoji": "⬅️"},
        {"customId": f"MJ::JOB::pan_right::1::{HASH}::SOLO", "label": "", "emoji": "➡️"},
        {
            "customId": f"MJ::JOB::animate_high::1::{HASH}::SOLO",
            "label": "Animate (High motion)",
            "emoji": "🎞️",
        },
        {"customId": f"MJ::BOOKMARK::{HASH}", "label": "", "emoji": ""},
        {"customId": "", "label": "Web", "style": 5},
    ]
    task = Task.from_json({"id": "1", "status": "SUCCESS", "buttons": raw})
    assert task is not None
    rows = buttons.layout("abcdefghjk", task.buttons, "en")
    labels = [[c.label for c in row] for row in rows]
    assert labels == [
        ["Upscale (Subtle)", "Upscale (Creative)"],  # custom emoji names are not shown
        ["🪄 Vary (Subtle)", "🖌️ Vary (Region)"],
        ["🔍 Zoom Out 2x", "🔍 Custom Zoom"],
        ["⬅️", "➡️"],
        ["🎞️ Animate (High motion)"],
        ["Like"],
    ]
    zh = [[c.label for c in row] for row in buttons.layout("abcdefghjk", task.buttons, "zh")]
    assert zh[0] == ["放大（细微）", "放大（创意）"]


def test_hidden_families_are_left_out_and_long_groups_wrap():
    many = [Button(f"MJ::Job::PicReader::{i}", "", f"{i}️⃣") for i in range(1, 8)]
    rows = buttons.layout("abcdefghjk", many, "en", hidden=("MJ::Job::PicReader::7",))
    assert [len(r) for r in rows] == [5, 1]
