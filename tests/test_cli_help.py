"""Every command's help carries an example, printed as written (sqlite-utils' rule)."""

import click
from click.testing import CliRunner

from flows.cli import cli


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append(((*path, name), command))
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
    return found


def test_every_command_has_an_example_printed_unwrapped() -> None:
    runner = CliRunner()
    missing = []
    for path, command in _commands(cli):
        if isinstance(command, click.Group) and not command.invoke_without_command and path != ("review",):
            continue  # a plain group (keys): its commands carry the examples
        result = runner.invoke(cli, [*path, "--help"], terminal_width=60)
        assert result.exit_code == 0, result.output
        examples = getattr(command, "examples", [])
        if not examples:
            missing.append(" ".join(path))
        for line in examples:  # whole on one line, however narrow the terminal
            assert line in result.output, (path, line)
    assert not missing, f"commands without an example: {missing}"


def test_output_cut_short_by_a_pipe_is_no_error(monkeypatch, tmp_path) -> None:
    """`trade-archive export | head`: the reader went away; click ends quietly (no "error:
    Broken pipe: a disk or network problem", which would send an admin to the disks)."""
    import errno

    import flows.cli.records

    def pipe_closed(*args, **kwargs):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(flows.cli.records, "open_archive", lambda archive_dir: None)
    monkeypatch.setattr(flows.cli.records, "export_pages", pipe_closed)
    result = CliRunner().invoke(cli, ["export", "--archive", str(tmp_path)])
    assert "error" not in result.output and result.exit_code != 5, result.output


def test_importing_the_command_line_loads_no_heavy_library() -> None:
    """Every command's start-up imports the CLI: the libraries a command needs (numpy, OpenCV, pdfium,
    pypdf, Pillow, whoosh, cryptography, bagit, asyncio) are imported where they are used."""
    import subprocess
    import sys

    heavy = ("numpy", "cv2", "pypdf", "pypdfium2", "whoosh", "PIL", "cryptography", "bagit", "asyncio")
    code = f"import flows.cli, sys; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
