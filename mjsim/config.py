"""Simulator settings (one frozen value object, shared by every part of the simulator)."""

from __future__ import annotations

from dataclasses import dataclass

from .flavours import Flavour, get_flavour

# The fixed "account" every answer names, as in the Java/Plus docs (§4.2).
INSTANCE_ID = "1118138338562560102"

# Path prefixes that select a speed mode (§2.1, §2.3); "" is the plain /mj/... route.
MODE_PREFIXES: dict[str, str] = {
    "": "",
    "/fast": "FAST",
    "/relax": "RELAX",
    "/mj-fast": "FAST",
    "/mj-relax": "RELAX",
    "/mj-turbo": "TURBO",
}

# How much longer a step takes per mode (relax jobs are slow, turbo ones fast).
MODE_SLOWDOWN: dict[str, float] = {"FAST": 1.0, "RELAX": 3.0, "TURBO": 0.5}


@dataclass
class SimConfig:
    """How the simulated Midjourney proxy behaves.

    ``flavour`` picks the provider it imitates (mjsim/flavours.py): "superset" (the default:
    the Plus/trueai superset, any auth scheme and prefix), "plus", "openai-hk", "java",
    "trueai" or "new-api".
    """

    api_key: str = ""  # non-empty: enforce auth (the schemes the flavour accepts)
    time_scale: float = 1.0  # real seconds per simulated second; 0 freezes the clock (advance())
    step_s: float = 3.0  # simulated seconds between progress steps
    concurrency: int = 3  # tasks running at once; more wait as NOT_START
    queue_size: int = 10  # waiting tasks beyond this -> code 23
    banned_words: tuple[str, ...] = ("nude", "gore")  # -> code 24
    remix: bool = False  # variation/reroll/pan/animate answer code 21 (MODAL) too
    fail_words: tuple[str, ...] = ("fail",)  # accepted, then FAILURE "[Invalid parameter] ..."
    preview: bool = True  # IN_PROGRESS tasks carry a preview imageUrl (null at 0%)
    image_size: int = 1024  # short side of a grid in pixels
    public_url: str = ""  # base of image URLs; default: the server's own http://host:port
    stall_words: tuple[str, ...] = ("stall",)  # stops at 46%, then FAILURE "任务超时"
    timeout_s: float = 300.0  # simulated seconds after start before a stalled task fails
    flavour: str = "superset"  # which provider's differences to reproduce
    # False: no account runs turbo, and a turbo submit is refused as trueai refuses one no
    # account can take (code 3 "无可用的账号实例", its ChooseInstance finding none).
    turbo: bool = True

    def __post_init__(self) -> None:
        get_flavour(self.flavour)  # fail now on an unknown name

    @property
    def spec(self) -> Flavour:
        return get_flavour(self.flavour)
