import os

from setuptools import find_packages, setup

here = os.path.abspath(os.path.dirname(__file__))
with open(os.path.join(here, 'README.rst'), encoding='utf-8') as f:
    README = f.read()

requires = [
    'pyramid>=2.0',
    'transaction>=3',
    'zope.interface',
    'WebOb',
    # zodb is the default backend, so its runtime comes with the package
    'ZODB>=5.6',
    'BTrees>=4.7',
    'persistent>=4.6',
    'zodburi>=2.5',
    'tqdm',  # clearsessions' progress bar on a terminal
]

extras = {
    'sql': ['SQLAlchemy>=2.0.28', 'zope.sqlalchemy>=3.1'],
    'postgresql': ['psycopg[binary]>=3.1'],
    'mysql': ['PyMySQL>=1.0'],
    # hiredis: redis-py then parses replies in C, not in Python
    'redis': ['redis>=4.6', 'hiredis'],
    'memcached': ['pymemcache>=4.0'],
    'zeo': ['ZEO>=5.2'],
    # RelStorage's own [postgresql] extra builds psycopg2 from source; the
    # binary wheel provides the same module without a compiler or libpq-dev.
    'relstorage': ['RelStorage>=4.0', 'psycopg2-binary>=2.8'],
    'encryption': ['cryptography'],
    'demo': ['pyramid_tm', 'pyramid_retry', 'waitress'],
    # docs/: Sphinx and its theme; matplotlib draws the plot of
    # docs/performance.rst (benchmarks/plot_overhead.py)
    'docs': ['Sphinx>=7', 'furo', 'matplotlib'],
}
# [docs] too: the suite runs the plot script, and .ci/run builds the docs
extras['testing'] = sorted(
    {req for reqs in extras.values() for req in reqs}
    | {'pytest', 'pytest-xdist', 'WebTest', 'pyramid_tm', 'pyramid_retry',
       'hypothesis', 'waitress', 'playwright>=1.40', 'alembic',
       # the packages the migration tests move sessions away from
       'pyramid_beaker', 'Beaker>=1.14', 'pyramid_session_redis'})
# benchmarks/overhead.py: the clients of the stores it measures, and the
# peers it compares with (Beaker's ext:database checked on 1.14.1 with
# SQLAlchemy 2.1; Django's redis cache needs 4.0, Flask-Session's JSON
# serialization 0.7)
extras['benchmarks'] = sorted(
    {req for name in ('sql', 'postgresql', 'redis', 'memcached')
     for req in extras[name]}
    | {'py-spy',  # benchmarks/scaling.py --py-spy
       'pyramid_tm', 'pyramid_beaker', 'Beaker>=1.14',
       'pyramid_session_redis', 'python-memcached', 'Django>=4.0', 'Flask',
       'Flask-Session>=0.7', 'Flask-SQLAlchemy', 'cachelib'})
# fuzz/run.py: the coverage-guided fuzzer of the cookie codecs
extras['fuzz'] = ['atheris']

setup(
    name='pyramid_contrib_sessions',
    version='0.1.dev0',
    description='Server-side sessions for Pyramid that commit with the '
                'request transaction (pyramid_tm)',
    long_description=README,
    long_description_content_type='text/x-rst',
    classifiers=[
        'Programming Language :: Python',
        'Programming Language :: Python :: 3',
        'Framework :: Pyramid',
        'Topic :: Internet :: WWW/HTTP :: Session',
        'Topic :: Internet :: WWW/HTTP :: WSGI',
    ],
    keywords='pyramid session transaction pyramid_tm zodb sqlalchemy redis',
    python_requires='>=3.9',
    packages=find_packages(exclude=['tests', 'tests.*',
                                    'benchmarks', 'benchmarks.*']),
    include_package_data=True,
    zip_safe=False,
    install_requires=requires,
    extras_require=extras,
    entry_points={
        'paste.app_factory': [
            'main = pyramid_contrib_sessions.demo:main',
        ],
        'console_scripts': [
            'clearsessions = '
            'pyramid_contrib_sessions.scripts.clearsessions:main',
            'psessions = pyramid_contrib_sessions.scripts.psessions:main',
        ],
    },
)
