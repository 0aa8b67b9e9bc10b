"""The one `cutout` command. Services add their own subcommands through the
``cutout.commands`` entry-point group, so this package never imports a service."""

from __future__ import annotations

import logging
from dataclasses import replace
from importlib.metadata import entry_points

import click

from cutout.config import Settings


class _Group(click.Group):
    """Loads service commands only when asked for, so `cutout report` never pays for TensorFlow.
    Operational errors end a command with one readable line (cutout.errors), not a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            from cutout.errors import describe

            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            message = describe(exc, settings)
            if message is None or (settings is not None and settings.debug):
                raise
            click.echo(f"error: {message}\n(--debug or CUTOUT_DEBUG=1 shows the traceback)", err=True)
            ctx.exit(1)

    def _plugins(self):
        return {ep.name: ep for ep in entry_points(group="cutout.commands")}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
@click.option("--debug", is_flag=True, help="Show the traceback of operational errors (also CUTOUT_DEBUG=1).")
@click.pass_context
def main(ctx, verbose, debug):
    """cutout: cuts garments out of studio photos.

    Configuration comes from CUTOUT_* environment variables (docs/configuration.md).
    """
    from cutout import logs

    # The process's settings, read once here and handed to every command (click's ctx.obj).
    ctx.obj = Settings.from_env()
    if debug:
        ctx.obj = replace(ctx.obj, debug=True)
    logs.configure(logging.DEBUG if verbose else logging.INFO, ctx.obj.log_format)
    # Alembic announces each of its plugins at INFO on every start: noise before every message.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.DEBUG if verbose else logging.WARNING)


from cutout.commands import db, queue_metrics, report, shots  # noqa: E402  (registered after main exists)

for _command in (db, report, shots, queue_metrics):
    main.add_command(_command)


if __name__ == "__main__":
    main()
