"""The arguments of the `dlbox track` commands (torch- and mlflow-free: the CLI builds its parser from them)."""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.config import REQUIRED, opt, positional


@dataclass(kw_only=True)
class ServerArgs:
    port: int = opt(5000, "port to listen on, 0 for any free one (default: 5000)", ge=0, le=65535)
    ip: str = opt("127.0.0.1", "address to listen on (default: 127.0.0.1, this machine only); any other needs "
                  "the token")
    token: bool = opt(False, "require a token on localhost too (always required for a non-local --ip)")
    timeout: float = opt(180.0, "seconds to wait for the server to answer (default: 180)", gt=0, le=3600)

    @property
    def with_token(self) -> bool:
        from dlbox.services.server import is_local

        return self.token or not is_local(self.ip)

    def validate(self) -> None:
        self.with_token  # noqa: B018  # a bad --ip is refused here


@dataclass(kw_only=True)
class RunsArgs:
    experiment: str | None = opt(None, "only this experiment (default: all)", metavar="E")
    sort: str | None = opt(None, "order by this metric, best first (default: newest first), e.g. val/top1",
                           metavar="METRIC")
    ascending: bool = opt(False, "smallest --sort value first (losses)")
    limit: int = opt(20, "at most N runs (default: 20)", ge=1, le=100_000, metavar="N")


@dataclass(kw_only=True)
class RegisterArgs:
    run: str = positional("a run directory (its export, see --file) or an export file", metavar="RUN")
    name: str = opt(REQUIRED, "the registered model's name; each call adds a version", metavar="NAME")
    file: str | None = opt(None, "which export of RUN (default: RUN/model.onnx, else its only export)",
                           metavar="FILE")

    def validate(self) -> None:
        from dlbox.models.mlflow_registry import check_name

        check_name(self.name)


@dataclass(kw_only=True)
class SyncArgs:
    run: str = positional("a run directory", metavar="RUN")
