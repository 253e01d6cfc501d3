"""The options of `dlbox notebook` and `dlbox board` (torch-free: the CLI registers them without torch)."""

from __future__ import annotations

from dataclasses import dataclass

from dlbox.config import opt, positional


@dataclass
class NotebookConfig:
    dir: str = opt("dlbox-notebooks", "working folder (default: ./dlbox-notebooks)", output="dir")
    port: int = opt(8888, "port to listen on, 0 for any free one (default: 8888)", ge=0, le=65535, metavar="N")
    ip: str = opt("127.0.0.1", "address to listen on (default: 127.0.0.1, this machine only); any other needs the token")
    no_token: bool = opt(False, "no token: anyone on this machine can connect (refused with a non-local --ip)")
    timeout: float = opt(120.0, "seconds to wait for JupyterLab to answer (default: 120)", gt=0, le=3600, metavar="S")

    def validate(self) -> None:

        from dlbox.base.outputs import check_output
        from dlbox.services.server import check_binding

        check_binding(self.ip, with_token=not self.no_token)
        check_output(self.dir, "dir", "--dir")


@dataclass
class BoardConfig:
    runs_dir: str = positional("folder of runs (default: runs)", default="runs", nargs="?", metavar="RUNS_DIR",
                               output=False)  # read, not written
    port: int = opt(6006, "port to listen on, 0 for any free one (default: 6006)", ge=0, le=65535, metavar="N")
    ip: str = opt("127.0.0.1", "address to listen on (default: 127.0.0.1, this machine only); any other needs the token")
    token: bool = opt(False, "require a token on localhost too")
    with_tensorflow: bool = opt(False, "let TensorBoard import TensorFlow when installed (by default it reads the runs "
                                "without it)")  # fmt: skip
    timeout: float = opt(60.0, "seconds to wait for TensorBoard to answer (default: 60)", gt=0, le=3600, metavar="S")

    @property
    def with_token(self) -> bool:
        from dlbox.services.server import is_local

        return self.token or not is_local(self.ip)

    def validate(self) -> None:
        from pathlib import Path

        from dlbox.base.errors import UserError

        self.with_token  # noqa: B018  # a bad --ip is refused here
        if not Path(self.runs_dir).is_dir():
            raise UserError(f"runs folder {self.runs_dir} does not exist",
                            "give the folder your runs are in (train commands write to runs/ by default)")  # fmt: skip
