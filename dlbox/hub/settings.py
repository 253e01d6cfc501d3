"""Where the hub keeps files and how it reaches the network: ``$DLBOX_HOME``, ``config.toml``, environment.

Precedence: defaults < ``$DLBOX_HOME/config.toml`` (or the file ``DLBOX_CONFIG`` names) < environment
(``DLBOX_MIRROR``, ``DLBOX_OFFLINE``, ``DLBOX_S3_ENDPOINT``, the standard ``AWS_*`` variables). Keys are read
here and handed to boto3 only; every string shown to a person goes through :func:`redact`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from dlbox.base.errors import UserError


def home() -> Path:
    """The dlbox cache and config directory: ``$DLBOX_HOME``, default ``~/.cache/dlbox``."""
    return Path(os.environ.get("DLBOX_HOME") or Path.home() / ".cache" / "dlbox").expanduser()


def config_path() -> Path:
    return Path(os.environ.get("DLBOX_CONFIG") or home() / "config.toml").expanduser()


@dataclass
class S3Settings:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def describe(self) -> dict[str, str | None]:
        """For people and --json: where, never the keys themselves."""
        return {"endpoint_url": self.endpoint_url, "region": self.region,
                "access_key_id": "<set>" if self.access_key_id else None,
                "secret_access_key": "<set>" if self.secret_access_key else None}  # fmt: skip

    def secrets(self) -> list[str]:
        return [s for s in (self.access_key_id, self.secret_access_key, self.session_token) if s]


@dataclass
class HubSettings:
    mirrors: list[str] = field(default_factory=list)
    offline: bool = False
    workers: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 3
    backoff: float = 1.0
    s3: S3Settings = field(default_factory=S3Settings)

    def validate(self) -> None:
        if self.workers < 1:
            raise UserError(f"hub setting workers must be >= 1, got {self.workers}")
        if self.retries < 0 or self.connect_timeout <= 0 or self.read_timeout <= 0 or self.backoff < 0:
            raise UserError("hub settings: retries and backoff must be >= 0, timeouts > 0",
                            f"check {config_path()}")  # fmt: skip

    def describe(self) -> dict:
        return {"mirrors": [redact(m) for m in self.mirrors], "offline": self.offline, "workers": self.workers,
                "connect_timeout": self.connect_timeout, "read_timeout": self.read_timeout,
                "retries": self.retries, "s3": self.s3.describe()}  # fmt: skip


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _env_bool(name: str) -> bool | None:
    v = os.environ.get(name)
    if v is None:
        return None
    if v.strip().lower() in _TRUE:
        return True
    if v.strip().lower() in _FALSE:
        return False
    raise UserError(f"{name}={v!r} is not a boolean", f"set {name}=1 or {name}=0")


def split_mirrors(text: str) -> list[str]:
    """``DLBOX_MIRROR``: bases separated by commas and/or spaces."""
    return [m for m in re.split(r"[,\s]+", text.strip()) if m]


def _read_file(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"config file {str(path)!r} is not valid TOML: {e}", "fix or remove it") from None
    except OSError as e:
        raise UserError(f"cannot read config file {str(path)!r}: {e.strerror}") from None


def load() -> HubSettings:
    """Settings from the config file and the environment (read on every call: tests and users change env)."""
    from dlbox.config import from_dict

    data: dict = {}
    path = config_path()
    if path.is_file():
        data = _read_file(path)
    elif os.environ.get("DLBOX_CONFIG"):
        raise UserError(f"DLBOX_CONFIG names {str(path)!r}, which does not exist", "unset it or create the file")
    s3_data = data.pop("s3", {}) or {}
    if not isinstance(s3_data, dict):
        raise UserError(f"config file {str(path)!r}: [s3] must be a table")
    try:
        settings = from_dict(HubSettings, {k: v for k, v in data.items()})
        settings.s3 = from_dict(S3Settings, s3_data)
    except UserError as e:
        raise UserError(f"config file {str(path)!r}: {e.message}", e.hint) from None
    mirrors = os.environ.get("DLBOX_MIRROR")
    if mirrors is not None:
        settings.mirrors = split_mirrors(mirrors)
    offline = _env_bool("DLBOX_OFFLINE")
    if offline is not None:
        settings.offline = offline
    s3 = settings.s3
    env = os.environ
    s3.endpoint_url = env.get("DLBOX_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") \
        or s3.endpoint_url  # fmt: skip
    s3.region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or s3.region
    if env.get("AWS_ACCESS_KEY_ID"):  # keys travel as a pair: never mix an env id with a config secret
        s3.access_key_id, s3.secret_access_key = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        s3.session_token = env.get("AWS_SESSION_TOKEN")
    settings.validate()
    return settings


def with_overrides(settings: HubSettings, **kw) -> HubSettings:
    return dataclasses.replace(settings, **{k: v for k, v in kw.items() if v is not None})


_USERINFO = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:x-amz-signature|x-amz-credential|x-amz-security-token|signature|token|"
                           r"awsaccesskeyid|access_key|secret)[^=]*=)[^&]*")  # fmt: skip


def redact(text: str, secrets: list[str] | None = None) -> str:
    """A URL or message safe to show: no user:password@, no signed-query secrets, no known key values."""
    text = _USERINFO.sub(r"\1***@", str(text))
    text = _QUERY_SECRET.sub(r"\1***", text)
    for s in secrets or ():
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text
