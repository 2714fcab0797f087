"""What the console scripts share: reading the ``sessions.*`` settings of
an ``.ini`` file's app section without starting the application, opening
the store, and their exit statuses and one-line errors."""
import argparse
import configparser
import sys

from pyramid.exceptions import ConfigurationError
from pyramid.paster import get_appsettings, setup_logging

from ..exceptions import StoreError
from ..factory import SessionFactory
from ..settings import parse_settings

EXIT_DONE, EXIT_STORE_FAILED, EXIT_USAGE = 0, 1, 2


class CommandFailed(Exception):
    """Ends a command with ``status``, printing ``message`` as its error."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose errors read as the command's others do,
    ``prog: reason`` with the command's own name (argparse's would name
    a subcommand's ``prog: error:``), after the usage of the (sub)command
    that was misused."""

    def error(self, message):
        self.print_usage(sys.stderr)
        raise CommandFailed(EXIT_USAGE, message)


def add_config_arguments(parser):
    """The CONFIG_URI argument and ``--app-name`` option of a script."""
    parser.add_argument('config_uri',
                        help='the .ini file, e.g. production.ini, '
                             'optionally #app-section')
    parser.add_argument('--app-name', default=None,
                        help='the app section to read (default: main)')


def fail(prog, status, message):
    """Print ``message`` as ``prog``'s error; return ``status``."""
    print(f'{prog}: {message}', file=sys.stderr)
    return status


def load_options(config_uri, app_name):
    """The parsed ``sessions.*`` settings of the app section;
    ``CommandFailed`` (exit 2) saying what is wrong otherwise."""
    try:
        return parse_settings(read_settings(config_uri, app_name))
    except ConfigFileError as error:
        raise CommandFailed(EXIT_USAGE, str(error)) from error
    except ConfigurationError as error:
        raise CommandFailed(EXIT_USAGE, one_line(error)) from error


def open_factory(options):
    """A :class:`~pyramid_contrib_sessions.SessionFactory` over
    ``options``; ``CommandFailed`` with exit 1 for a store that cannot be
    reached, 2 for a bad setting."""
    try:
        return SessionFactory(options)
    except ConfigurationError as error:
        status = (EXIT_STORE_FAILED if store_unreachable(error)
                  else EXIT_USAGE)
        raise CommandFailed(status, one_line(error)) from error


def read_settings(config_uri, app_name):
    """The app section's settings, with the file's logging set up;
    ``ConfigFileError`` saying where and why the file cannot be read."""
    try:
        settings = get_appsettings(config_uri, name=app_name)
    except (configparser.Error, ImportError, LookupError, OSError,
            ValueError) as error:
        raise ConfigFileError(f'{config_uri}: {_why_unreadable(error)}'
                              ) from error
    try:
        setup_logging(config_uri)
    except Exception as error:
        # logging.config.fileConfig raises whatever its sections make
        # (a KeyError for a missing one, a NameError from "args", ...)
        raise ConfigFileError(
            f'{config_uri}: the logging sections are broken: '
            f'{_why_unreadable(error)}') from error
    return settings


def store_unreachable(error):
    """Whether a start-up error comes from a store that failed or could not
    be reached (exit 1) rather than from a bad setting (exit 2)."""
    while error is not None:
        if isinstance(error, (StoreError, ConnectionError, TimeoutError)):
            return True
        error = error.__cause__ or error.__context__
    return False


class ConfigFileError(Exception):
    """The ``.ini`` file cannot be read; the message says where and why."""


def _why_unreadable(error):
    """One line on what is wrong in the file, from what reading it
    raised."""
    if isinstance(error, configparser.MissingSectionHeaderError):
        return (f'line {error.lineno}: {error.line.strip()!r} comes before '
                f'any [section] header')
    if isinstance(error, configparser.ParsingError):
        return (f'line {error.errors[0][0]} is neither a [section] header '
                f'nor "name = value"')
    if isinstance(error, KeyError):
        return f'{error.args[0]!r} is missing'
    if isinstance(error, ImportError):
        return f'cannot load the application it names: {one_line(error)}'
    return one_line(error)


def one_line(error):
    """The first line of an error's message (its type's name if empty)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
