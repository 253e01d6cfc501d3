"""The options of `dlbox notebook` and `dlbox board` (torch-free: the CLI registers them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.config import opt


@dataclass
class NotebookConfig:
    dir: str = opt("dlbox-notebooks", "the working folder (created; dlbox's notebooks are copied in on first start)")
    port: int = opt(8888, "port to listen on (0: any free port)")
    ip: str = opt("127.0.0.1", "address to listen on; anything but localhost needs the token")
    no_token: bool = opt(False, "no token (only with a local --ip: anyone on this machine can then connect)")
    timeout: float = opt(120.0, "seconds to wait for JupyterLab to answer")

    def validate(self) -> None:
        from pathlib import Path

        from dlbox.errors import UserError
        from dlbox.services.server import check_binding

        check_binding(self.ip, with_token=not self.no_token)
        if Path(self.dir).exists() and not Path(self.dir).is_dir():
            raise UserError(f"--dir {self.dir} is a file", "give a folder (it is created if missing)")


@dataclass
class BoardConfig:
    runs_dir: str = opt("runs", "the folder of run directories (each run's tensorboard/ events are found below it)")
    port: int = opt(6006, "port to listen on (0: any free port)")
    ip: str = opt("127.0.0.1", "address to listen on; anything but localhost needs the token")
    token: bool = opt(False, "require a token on localhost too (always required for a non-local --ip)")
    with_tensorflow: bool = opt(False, "let TensorBoard import TensorFlow (for its TF-only features; slower start)")
    timeout: float = opt(60.0, "seconds to wait for TensorBoard to answer")

    @property
    def with_token(self) -> bool:
        from dlbox.services.server import is_local

        return self.token or not is_local(self.ip)

    def validate(self) -> None:
        from pathlib import Path

        from dlbox.errors import UserError

        self.with_token  # noqa: B018  # a bad --ip is refused here
        if not Path(self.runs_dir).is_dir():
            raise UserError(f"runs folder {self.runs_dir} does not exist",
                            "give the folder your runs are in (train commands write to runs/ by default)")  # fmt: skip
