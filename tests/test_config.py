import dataclasses
import os
import subprocess
import sys
import typing

import pytest

from bot.config import Config, ConfigError, load
from tests.harness import ROOT


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_file_and_env_overrides(tmp_path):
    path = write(
        tmp_path,
        '[midjourney]\nbase_url = "https://api.example"\napi_key = "hk-file"\n'
        '[telegram]\ntoken = "1:file"\n[tracking]\npoll_interval_s = 2\n',
    )
    cfg = load(path, env={"MJBOT_TELEGRAM__TOKEN": "1:env", "MJBOT_MIDJOURNEY__MODE": "relax"})
    cfg.validate()
    assert cfg.telegram.token.reveal() == "1:env"
    assert cfg.midjourney.mode == "relax"
    assert cfg.tracking.poll_interval_s == 2.0
    assert "hk-file" not in repr(cfg)
    assert set(cfg.secrets()) == {"hk-file", "1:env"}


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        (
            "[midjourney]\nbase_url = 'https://x'\n[telegram]\ntoken='1:a'\n",
            {},
            "midjourney.api_key",
        ),
        (
            "[telegram]\ntoken='1:a'\n[midjourney]\nauth_header='basic'\n",
            {},
            "midjourney.auth_header",
        ),
        ("[tracking]\npoll_interval_s = 'soon'\n", {}, "tracking.poll_interval_s"),
        # an instance beating less often than its lease lasts would look dead to the others
        (
            "[telegram]\ntoken='1:a'\n[tracking]\nlease_ttl_s = 5\nheartbeat_s = 5\n",
            {},
            "tracking.heartbeat_s",
        ),
        ("[telegram]\ntokn = 'x'\n", {}, "telegram.tokn"),
        ("", {}, "telegram.token"),
        (
            "[telegram]\ntoken='1:a'\n",
            {"MJBOT_TRACKING__POLL_INTERVAL_S": "x"},
            "tracking.poll_interval_s",
        ),
    ],
)
def test_invalid_settings_name_the_key(tmp_path, text, env, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(write(tmp_path, text), env=env).validate()


def test_cli_prints_one_line_for_a_bad_config(tmp_path):
    path = write(tmp_path, "[telegram]\ntoken = 'x'\n[midjourney]\nauth_header = 'nope'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "midjourney.auth_header" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "nope.toml")


def run_cli(path, env=None):
    """``mjbot run`` as a subprocess with only the given MJBOT_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={**clean, **(env or {})},
    )


TOKEN = "[telegram]\ntoken = '1:a'\n"


@pytest.mark.parametrize(
    ("text", "env", "key"),
    [
        # numbers: finite, and in a range that cannot busy-loop or overflow
        ("[tracking]\npoll_interval_s = nan\n", {}, "tracking.poll_interval_s"),
        ("[tracking]\npoll_interval_s = inf\n", {}, "tracking.poll_interval_s"),
        ("[tracking]\npoll_interval_s = 0.001\n", {}, "tracking.poll_interval_s"),
        ("", {"MJBOT_TRACKING__POLL_INTERVAL_S": "NaN"}, "tracking.poll_interval_s"),
        ("[tracking]\nresend_after_s = -1\n", {}, "tracking.resend_after_s"),
        ("[midjourney]\ntimeout_s = 1e400\n", {}, "midjourney.timeout_s"),
        ("[simulator]\ntime_scale = 0\n", {}, "simulator.time_scale"),
        ("[quota]\ndaily_units = inf\n", {}, "quota.daily_units"),
        ("[quota]\ndaily_units = 1.5\n", {}, "quota.daily_units"),
        ("[quota]\nconcurrency = -1\n", {}, "quota.concurrency"),
        ("[quota.weights]\nvideo = 99999999999999999999\n", {}, "quota.weights.video"),
        ("group_messages_per_minute = -5\n", {}, "telegram.group_messages_per_minute"),
        # other values
        ("[logging]\nlevel = 'LOUD'\n", {}, "logging.level"),
        ("", {"MJBOT_LOGGING__LEVEL": "verbose"}, "logging.level"),
        ("[tracking]\nlisten = '127.0.0.1:99999'\n", {}, "tracking.listen"),
        ("webapp_listen = 'nowhere'\n", {}, "telegram.webapp_listen"),
        ("[midjourney]\nhooks = 5\n", {}, "midjourney.hooks"),
        # environment keys deeper than the tables they name
        ("[quota]\nweights = 3\n", {"MJBOT_QUOTA__WEIGHTS__IMAGINE": "2"}, "quota.weights"),
        ("", {"MJBOT_TRACKING__POLL_INTERVAL_S__X": "1"}, "tracking.poll_interval_s"),
        (
            "[tracking]\npoll_interval_s = 2\n",
            {"MJBOT_TRACKING__POLL_INTERVAL_S__X__Y": "1"},
            "tracking.poll_interval_s",
        ),
    ],
)
def test_every_config_error_is_one_line_naming_the_key(tmp_path, text, env, key):
    proc = run_cli(write(tmp_path, TOKEN + text), env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mjbot: ") and key in lines[0]


def test_an_unreadable_config_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff\xfe[telegram]\n")
    for path in (bad, tmp_path):  # not UTF-8; a directory
        proc = run_cli(path)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("mjbot: config file") and proc.stderr.count("\n") == 1


def test_every_number_has_a_range():
    """A new int or float setting without bounds would accept nan or a busy-looping 0."""

    def numbers(cls, where=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from numbers(hints[f.name], f"{where}{f.name}.")
            elif hints[f.name] in (int, float):
                yield f"{where}{f.name}", f

    found = dict(numbers(Config))
    assert "tracking.poll_interval_s" in found and "quota.weights.video" in found
    assert [key for key, f in found.items() if "range" not in f.metadata] == []
    for key, f in found.items():  # the defaults lie inside their own ranges
        low, high = f.metadata["range"]
        value: typing.Any = Config()
        for part in key.split("."):
            value = getattr(value, part)
        assert low <= value <= high, key


def test_numbers_inside_their_ranges_load(tmp_path):
    cfg = load(
        write(tmp_path, "[tracking]\npoll_interval_s = 0.1\n[quota]\ndaily_units = 10.0\n"),
        env={"MJBOT_QUOTA__WEIGHTS__VIDEO": "0", "MJBOT_TRACKING__SEND_INTERVAL_S": "0"},
    )
    cfg.validate(need_chat=False)
    assert cfg.tracking.poll_interval_s == 0.1 and cfg.quota.daily_units == 10
    assert cfg.quota.weights.video == 0 and cfg.tracking.send_interval_s == 0.0


def test_settings_without_effect_are_accepted_and_named_in_one_warning(tmp_path):
    """banned_late and unknown_fetch were documented and never did anything: a config that
    sets them keeps loading, and the CLI says once that they are ignored."""
    path = write(
        tmp_path,
        '[midjourney]\nbanned_late = true\nunknown_fetch = "204"\n'
        f'[tracking]\nlisten = "127.0.0.1:1"\n[storage]\npath = "{tmp_path / "none.db"}"\n',
    )
    assert load(path, env={}).ignored == ("midjourney.banned_late", "midjourney.unknown_fetch")
    (tmp_path / "other").mkdir()
    env = {"MJBOT_MIDJOURNEY__BANNED_LATE": "maybe"}
    assert load(None, env=env).ignored == ("midjourney.banned_late",)
    assert load(None, env={}).ignored == ()
    with pytest.raises(ConfigError, match="unknown setting ignored"):
        load(write(tmp_path / "other", "ignored = ['x']\n"), env={})
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "status", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env=clean,
    )
    assert proc.stderr.count("accepted and ignored") == 1, proc.stderr
    assert "midjourney.banned_late, midjourney.unknown_fetch" in proc.stderr


def test_bot_types_and_turbo_override_the_provider_profile(tmp_path):
    from bot.mj.profiles import profile_for

    path = write(
        tmp_path,
        '[midjourney]\nbase_url = "https://api.example"\napi_key = "hk-1"\n'
        'provider = "openai-hk"\nbot_types = true\nturbo = true\n[telegram]\ntoken = "1:a"\n',
    )
    cfg = load(path, env={})
    cfg.validate()
    overrides = cfg.midjourney.profile_overrides()
    assert overrides["bot_types"] is True and overrides["turbo"] is True
    profile = profile_for("openai-hk", **overrides)
    assert profile.bot_types and profile.turbo
    assert not profile_for("openai-hk").bot_types and not profile_for("openai-hk").turbo
