"""The /settings menu (bot/settings_menu.py): what it offers, what a press changes, what shows."""

from __future__ import annotations

import pytest

from bot import buttons
from bot.mj.prompt import Model, RefKind
from bot.settings_menu import CHOICES, choose, glance, menu, offered, references_line
from bot.store import ActiveReference, Preset, UserSettings


def labels(view) -> list[str]:
    return [c.label for row in view.rows for c in row]


def token_of(view, label: str) -> str:
    return next(c.token for row in view.rows for c in row if c.label == label)


def test_every_press_the_menu_draws_is_offered_and_applies() -> None:
    settings = UserSettings(presets=(Preset("portrait", model=Model.V7),))
    view = menu(settings, "en")
    for row in view.rows:
        for choice in row:
            decoded = buttons.decode_setting(choice.token)
            assert decoded is not None, choice.token
            assert offered(*decoded)
            choose(settings, *decoded)  # never raises for a drawn button


@pytest.mark.parametrize(
    ("name", "value", "changed"),
    [
        ("model", "niji7", {"model": Model.NIJI7}),
        ("model", "v8.1", {"model": Model.V8_1}),
        ("raw", "on", {"raw": True}),
        ("draft", "on", {"draft": True}),
        ("hd", "on", {"hd": True}),
        ("personalize", "on", {"personalize": True}),
        ("remix", "on", {"remix": True}),
        ("stylize", "very_high", {"stylize": "very_high"}),
        ("mode", "turbo", {"mode": "turbo"}),
        ("lang", "zh", {"lang": "zh"}),
    ],
)
def test_a_press_sets_one_setting(name: str, value: str, changed: dict[str, object]) -> None:
    assert choose(UserSettings(), name, value) == UserSettings(**changed)  # type: ignore[arg-type]


def test_pressing_again_goes_back_to_the_default() -> None:
    chosen = choose(UserSettings(), "model", "v7")
    assert choose(chosen, "model", "v7") == UserSettings()
    assert choose(choose(UserSettings(), "raw", "on"), "raw", "off") == UserSettings()
    assert choose(choose(UserSettings(), "stylize", "low"), "stylize", "low") == UserSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("model", "v9"), ("mode", "warp"), ("raw", "maybe"), ("admin", "on"), ("preset", "99")],
)
def test_forged_presses_are_not_offered(name: str, value: str) -> None:
    assert not offered(name, value)
    with pytest.raises(ValueError):
        choose(UserSettings(), name, value)


def test_presets_apply_in_one_tap() -> None:
    preset = Preset("portrait", model=Model.V7, raw=True, stylize="low", suffix="--ar 2:3")
    mine = UserSettings(lang="zh", draft=True, presets=(preset,))
    applied = choose(mine, "preset", "0")
    assert (applied.model, applied.raw, applied.stylize, applied.suffix, applied.draft) == (
        Model.V7,
        True,
        "low",
        "--ar 2:3",
        None,
    )
    assert applied.lang == "zh" and applied.presets == (preset,)
    with pytest.raises(ValueError):
        choose(mine, "preset", "1")  # offered by shape, but there is no second preset


def test_the_menu_marks_the_current_state_and_names_options_plainly() -> None:
    settings = UserSettings(model=Model.V7, raw=True, stylize="high", mode="relax")
    view = menu(settings, "en")
    shown = labels(view)
    assert "✅ V7" in shown and "V8.1" in shown and "niji 7" in shown
    assert "✅ Raw" in shown and "Draft mode" in shown
    assert "HD" not in shown  # V7 has no --hd
    assert "✅ Stylize high" in shown and "✅ relax" in shown
    # a toggle that is on turns off when pressed
    assert token_of(view, "✅ Raw") == buttons.setting("raw", "off")
    assert "Model: V7 · Raw: on · Stylize: Stylize high (250)" in view.text
    assert "HD" in labels(menu(UserSettings(model=Model.V8_1), "en"))


def test_the_menu_in_chinese_keeps_the_plain_name_beside() -> None:
    shown = labels(menu(UserSettings(), "zh"))
    assert "Draft mode 草稿模式" in shown and "Raw 原始风格" in shown
    assert "niji 7" in shown and "中文" in shown
    assert "模型：V8.1" in glance(UserSettings(), "zh")


def test_turbo_is_offered_only_where_the_provider_has_it() -> None:
    assert "turbo" in labels(menu(UserSettings(), "en", turbo=True))
    assert "turbo" not in labels(menu(UserSettings(), "en", turbo=False))


def test_references_at_a_glance() -> None:
    refs = (
        ActiveReference(RefKind.OMNI, "https://x/p.png", 100, "photo#3"),
        ActiveReference(RefKind.STYLE, "1234"),
    )
    assert references_line(refs, "en") == "🎯 oref photo#3 · ow 100 | sref 1234"
    assert references_line((), "en") == ""
    assert "🎯 oref photo#3" in glance(UserSettings(references=refs), "en")


def test_every_value_has_words_in_both_languages() -> None:
    from bot.i18n import catalog

    for lang in ("en", "zh"):
        keys = catalog(lang)
        for name, values in CHOICES.items():
            if name in ("model", "lang", "mode"):
                continue
            for value in values:
                toggle = name in ("raw", "personalize", "remix", "draft", "hd", "suffix")
                assert (f"menu.{name}" if toggle else f"menu.{name}.{value}") in keys
