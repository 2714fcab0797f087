"""``clearsessions``: delete expired sessions from the configured store.

Reads the ``sessions.*`` settings of an ``.ini`` file's app section without
starting the application, and deletes expired sessions in batches (each
batch its own store transaction), so it can run beside live traffic and be
interrupted at any point: a second run carries on.
"""
import argparse
import logging
import sys
import textwrap
import time

from ..exceptions import StoreError
from ..interfaces import (
    INativelyExpiringStore, IPackableStore, ISessionCodec)
from .common import (
    EXIT_DONE, EXIT_STORE_FAILED, EXIT_USAGE, CommandFailed, CommandParser,
    add_config_arguments, fail, load_options, one_line, open_factory)

DEFAULT_BATCH_SIZE = 1000

log = logging.getLogger(__name__)


def main(argv=sys.argv, quiet=False):
    """Run the command; return its exit status."""
    return ClearSessionsCommand(argv, quiet).run()


class ClearSessionsCommand:
    description = """\
    Delete the expired sessions of the store configured by the sessions.*
    settings in CONFIG_URI (an .ini file, optionally #app-section).
    Exit status: 0 done, 1 the store failed, 2 bad arguments or settings.
    """
    parser = CommandParser(
        prog='clearsessions',
        description=textwrap.dedent(description),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(parser)
    parser.add_argument('--dry-run', action='store_true',
                        help='count the expired sessions, delete nothing')
    parser.add_argument('--batch-size', type=int, default=DEFAULT_BATCH_SIZE,
                        help='sessions deleted per store transaction '
                             f'(default: {DEFAULT_BATCH_SIZE})')
    parser.add_argument('--quiet', action='store_true',
                        help='print nothing but errors')
    parser.add_argument('--pack', action='store_true',
                        help='zodb only: pack the sessions storage afterwards')

    def __init__(self, argv, quiet=False):
        self.argv = argv
        self.quiet = quiet

    def out(self, message):
        if not self.quiet:
            print(message)

    def fail(self, status, message):
        return fail('clearsessions', status, message)

    def run(self):
        try:
            args = self.parser.parse_args(self.argv[1:])
        except SystemExit as exit:  # argparse printed the help
            return exit.code if exit.code else EXIT_DONE
        except CommandFailed as error:  # after the usage
            return self.fail(error.status, str(error))
        self.quiet = self.quiet or args.quiet
        if args.batch_size < 1:
            return self.fail(EXIT_USAGE, '--batch-size must be at least 1')
        try:
            options = load_options(args.config_uri, args.app_name)
        except CommandFailed as error:
            return self.fail(error.status, str(error))
        store_class = options.store_factory
        if args.pack and not IPackableStore.implementedBy(store_class):
            return self.fail(EXIT_USAGE, f'--pack is for the zodb backend, '
                                         f'not {options.backend}')
        nothing_to_do = _why_nothing_to_clear(options)
        if nothing_to_do:  # said without connecting to anything
            self.out(f'{nothing_to_do}: nothing to clear')
            return EXIT_DONE
        return self.open_and_clear(options, args)

    def open_and_clear(self, options, args):
        """Open the store ``options`` name, clear it, close it: the exit
        status."""
        try:
            factory = open_factory(options)
        except CommandFailed as error:
            return self.fail(error.status, str(error))
        try:
            return self.clear(factory.store, args)
        except StoreError as error:
            return self.fail(EXIT_STORE_FAILED, one_line(error))
        finally:
            factory.close()

    def clear(self, store, args):
        started = now = time.time()
        if args.dry_run:
            count = store.count_expired(now)
            self.out(f'would delete {count} expired sessions '
                     f'({time.time() - started:.3f} s)')
            return EXIT_DONE
        deleted = 0
        try:
            with self.progress(store, now) as progress:
                while True:
                    batch = store.delete_expired(now, args.batch_size)
                    if not batch:
                        break
                    deleted += batch
                    progress(batch)
        except KeyboardInterrupt:
            return self.fail(EXIT_STORE_FAILED,
                             f'interrupted after deleting {deleted} expired '
                             f'sessions; run it again to carry on')
        self.out(f'deleted {deleted} expired sessions '
                 f'({time.time() - started:.3f} s)')
        if args.pack:
            store.pack()
            self.out('packed the sessions storage')
        return EXIT_DONE

    def progress(self, store, now):
        """A progress bar on a terminal; plain lines on long runs otherwise."""
        if self.quiet or not sys.stderr.isatty():
            return _PlainProgress(self.out)
        from tqdm import tqdm
        bar = tqdm(total=store.count_expired(now), unit=' sessions',
                   desc='deleting', file=sys.stderr)
        return _BarProgress(bar)


class _PlainProgress:
    """A line every ``every`` seconds, so a log shows a long run moving."""

    every = 10

    def __init__(self, out):
        self._out = out
        self._done = 0
        self._last = time.monotonic()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def __call__(self, batch):
        self._done += batch
        if time.monotonic() - self._last >= self.every:
            self._last = time.monotonic()
            self._out(f'... {self._done} deleted so far')


class _BarProgress:
    def __init__(self, bar):
        self._bar = bar

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._bar.close()
        return False

    def __call__(self, batch):
        self._bar.update(batch)


def _why_nothing_to_clear(options):
    """Why the configured backend needs no clearing, or None when it does.
    Told from the backend's class: a cache server that is down for a
    moment must not fail a cron job that has nothing to do."""
    backend, store_class = options.backend, options.store_factory
    if ISessionCodec.implementedBy(store_class):
        return (f'the {backend} backend keeps sessions in the client; they '
                f'expire by themselves')
    if INativelyExpiringStore.implementedBy(store_class):
        return f'the {backend} backend expires sessions by itself'
    return None
