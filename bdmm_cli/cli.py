"""The `bdmm` command line: one Typer app composed of one module per command.

Every command module in :mod:`bdmm_cli.commands` exposes ``register(app)``, which adds
its command (or command group) to the app. The commands are thin layers over the
Python API of the subpackages; tests drive them with ``typer.testing.CliRunner``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Optional

import click
import typer
from typer.core import TyperCommand, TyperGroup

try:  # typer >= 0.20 vendors its own click
    from typer._click import exceptions as _typer_click_exceptions
    from typer._click.exceptions import NoSuchOption as _TyperNoSuchOption
except ImportError:  # pragma: no cover - older typer uses click itself
    _typer_click_exceptions = click.exceptions
    _TyperNoSuchOption = click.NoSuchOption

from bdmm_cli import __version__

#: Click's "the user typed it wrong" exceptions (click's own and typer's vendored copy).
_CLICK_ERRORS = (click.ClickException, _typer_click_exceptions.ClickException)
_ABORTS = (click.Abort, typer.Abort)
_USAGE_ERRORS = (click.UsageError, _typer_click_exceptions.UsageError)
_UsageError = _typer_click_exceptions.UsageError  # the kind typer's parser raises

COMMAND_MODULES = ("setup", "animate", "pose", "body", "weights", "train", "data", "eval", "doctor", "cache", "ui", "batch")

#: Names people try for "overwrite the output"; bdmm's option is --force.
OVERWRITE_WORDS = ("--overwrite", "--override", "--replace", "--clobber", "--yes", "-y", "--overwrite-output")


def usage_error_message(exc: click.ClickException) -> str:
    """The `error:` line of a usage error (unknown option, missing argument, bad value, ...):
    click's message as one lower-case line, then where the options are listed."""
    if isinstance(exc, (click.NoSuchOption, _TyperNoSuchOption)):
        message = f"no such option: {exc.option_name}"
        if exc.possibilities:
            message += f"; did you mean {' or '.join(sorted(exc.possibilities))}?"
    else:
        message = " ".join(exc.format_message().split()).rstrip(".")
        if message[:1].isupper() and message[1:2].islower():
            message = message[0].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and ctx.command.get_help_option(ctx) is not None:
        message += f" (see `{ctx.command_path} --help`)"
    return message


#: Words people put after a flag, as if it took a value (`--side-by-side true`).
_BOOL_WORDS = ("true", "false", "yes", "no", "on", "off", "1", "0")


class _FlagsTakeNoValue:
    """A flag takes no value: its help shows none (``--force``, not ``--force <bool>``), and
    a command line that fails to parse because a flag was given a value (``--side-by-side
    true``) says so."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and not getattr(param, "count", False) and param.metavar is None:
                param.metavar = ""
        return params

    def parse_args(self, ctx, args):
        given = list(args)  # click's parser consumes `args`
        try:
            return super().parse_args(ctx, args)
        except _USAGE_ERRORS as exc:
            flags = {opt: param for param in self.get_params(ctx) if getattr(param, "is_bool_flag", False)
                     for opt in (*param.opts, *param.secondary_opts)}
            for flag, word in zip(given, given[1:]):
                if flag in flags and word.lower() in _BOOL_WORDS:
                    param = flags[flag]
                    on = max(param.opts, key=len)  # the long form
                    off = param.secondary_opts[0] if param.secondary_opts else f"no {on}"
                    raise _UsageError(f"{flag} takes no value (got '{word}'): write {on} to turn it on, "
                                      f"{off} to turn it off", ctx) from exc
            raise


class BdmmCommand(_FlagsTakeNoValue, TyperCommand):
    """Every bdmm command (see `_FlagsTakeNoValue`)."""


class BdmmGroup(_FlagsTakeNoValue, TyperGroup):
    """bdmm's groups. An unknown option that means "overwrite" suggests --force (click's own
    guess for --overwrite is --overlap); at the root, usage errors (unknown option, missing
    argument, bad value) are one `error:` line on stderr with click's exit code 2, like
    every other bdmm error, instead of typer's boxes."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.NoSuchOption, _TyperNoSuchOption) as exc:
            command = exc.ctx.command if exc.ctx is not None else None
            has_force = command is not None and any("--force" in getattr(p, "opts", ()) for p in command.params)
            if exc.option_name in OVERWRITE_WORDS and has_force:
                exc.possibilities = ["--force"]
            raise

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's ``main``; in standalone mode click's own errors are shown here (click's
        documented way: run with ``standalone_mode=False``, handle what it raises)."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        from bdmm_cli.commands._common import print_error

        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except _CLICK_ERRORS as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # `bdmm body`: the help, already printed by rich
                if exc.format_message().strip():
                    exc.show()
            else:
                print_error(usage_error_message(exc))
            sys.exit(exc.exit_code)
        except _ABORTS:
            print_error("aborted")
            sys.exit(1)
        # without standalone mode click returns the exit code of a typer.Exit (None: success)
        sys.exit(code if type(code) is int else 0)


app = typer.Typer(
    cls=BdmmGroup,
    name="bdmm",
    help=(
        "Animate a photo of a person with the motion of a driving video (BDMM, ICCV 2023).\n\n"
        "Examples:\n\n"
        "  bdmm setup --accept-licenses\n\n"
        "  bdmm animate person.jpg dance.mp4 -o out.mp4\n\n"
        "  bdmm train --data fashionvideo\n\n"
        "  bdmm eval --metric fvd --pred results/ --gt test_frames/"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bdmm {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    verbose: bool = typer.Option(
        False, "--verbose/--no-verbose", help="Also show library warnings and native log lines (MediaPipe, ffmpeg)."
    ),
) -> None:
    """Animate a photo of a person with the motion of a driving video."""
    from bdmm_cli.noise import set_verbose

    set_verbose(verbose)


for _name in COMMAND_MODULES:
    importlib.import_module(f"bdmm_cli.commands.{_name}").register(app)


def _use_bdmm_classes(typer_app: typer.Typer) -> None:
    """Every command and group of `typer_app` (and below) built with bdmm's classes, unless a
    command module chose its own (typer's ``cls`` of ``command`` / ``add_typer``)."""
    from typer.models import DefaultPlaceholder

    for info in typer_app.registered_commands:
        if info.cls in (None, TyperCommand):  # typer's default
            info.cls = BdmmCommand
    for info in typer_app.registered_groups:
        if isinstance(info.cls, DefaultPlaceholder) and isinstance(info.typer_instance.info.cls, DefaultPlaceholder):
            info.cls = BdmmGroup
        _use_bdmm_classes(info.typer_instance)


_use_bdmm_classes(app)


def main() -> None:
    """Console-script entry point (also of `python -m bdmm_cli`, whose messages name `bdmm` too)."""
    app(prog_name="bdmm")


if __name__ == "__main__":
    main()
