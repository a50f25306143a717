import subprocess
import sys

import pytest

from bot.config import ConfigError, load


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
