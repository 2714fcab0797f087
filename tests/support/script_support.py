"""What the console scripts' suites share: an application's ``.ini``
file, and running an installed script as a subprocess."""
import os
import subprocess
import sys

from tests.support.app import TEST_SECRET

SCRIPT_TIMEOUT = 120  # seconds; a run here takes about one


def script_path(name):
    """Where the console script ``name`` is installed beside Python."""
    return os.path.join(os.path.dirname(sys.executable), name)


def run_script(name, *args):
    """Run the installed console script ``name``; its CompletedProcess."""
    return subprocess.run([script_path(name), *args], capture_output=True,
                          text=True, timeout=SCRIPT_TIMEOUT)


def write_ini(path, settings, section='main', secret=TEST_SECRET):
    """An application's ``.ini`` file holding ``settings``."""
    lines = [f'[app:{section}]', 'use = egg:pyramid_contrib_sessions',
             f'sessions.secret = {secret}']
    lines += [f'{key} = {value}'.replace('%', '%%')
              for key, value in settings.items()]
    path.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    return str(path)
