"""`dlbox data coco ...` subcommands (owned by the detection toolchain)."""


def register(data_sub) -> None:
    """Adds the `coco` command group under `dlbox data` (none yet)."""
