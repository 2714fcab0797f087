"""The plot of docs/performance.rst, from the run recorded in RESULTS.md:
per backend, the time a session adds to an update and to a read-only
request, for this package and for the fastest peer measured beside it.

    pip install -e '.[docs]'
    python benchmarks/plot_overhead.py [--results RESULTS.md] [--output PNG]

Run it again after a new run of overhead.py is recorded in RESULTS.md.
"""
import argparse
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
RESULTS = HERE / 'RESULTS.md'
OUTPUT = HERE.parent / 'docs' / '_static' / 'overhead.png'
OURS = 'pyramid_contrib_sessions'
# the sections of RESULTS.md plotted, and their titles
SCENARIOS = {'update': 'update (read one key, increment a counter)',
             'read-only': 'read-only (read one key)'}
HEADING = re.compile(r'^#### (\S+)', re.MULTILINE)


def table_rows(section):
    """The cells of each row of the first Markdown table in ``section``."""
    return [[cell.strip() for cell in line.strip().strip('|').split('|')]
            for line in section.splitlines()
            if line.startswith('|') and not line.startswith('|--')
            and not line.startswith('| backend')]


def overheads(text, scenario):
    """``{backend: (ours, fastest peer or None)}`` in µs, for the rows of
    ``scenario`` without pyramid_tm (peers have none)."""
    starts = [(match[1], match.end()) for match in HEADING.finditer(text)]
    for (name, start), (_, end) in zip(starts, starts[1:] + [('', None)]):
        if name == scenario:
            section = text[start:end]
            break
    else:
        raise ValueError(f'RESULTS.md has no "#### {scenario}" section')
    found = {}
    for backend, implementation, tm, _, overhead, peer_ratio, *_ in (
            table_rows(section)):
        ours, peer = found.get(backend, (None, None))
        if implementation == OURS and tm == 'off':
            ours = float(overhead)
        elif peer_ratio == '1.00' and implementation != OURS:
            peer = float(overhead)
        found[backend] = (ours, peer)
    return found


def plot(text, output):
    import matplotlib
    matplotlib.use('Agg')  # no display: a file only
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(SCENARIOS), figsize=(10, 4))
    for ax, (scenario, title) in zip(axes, SCENARIOS.items()):
        found = overheads(text, scenario)
        backends = list(found)
        positions = range(len(backends))
        ours = [found[name][0] for name in backends]
        peers = [found[name][1] or 0 for name in backends]
        ax.bar([x - 0.2 for x in positions], ours, 0.4, label=OURS)
        ax.bar([x + 0.2 for x in positions], peers, 0.4,
               label='fastest peer (none for zodb)')
        ax.set_xticks(list(positions), backends, rotation=30)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel('µs added per request')
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    pyplot.close(figure)


def main(argv=sys.argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--results', type=pathlib.Path, default=RESULTS)
    parser.add_argument('--output', type=pathlib.Path, default=OUTPUT)
    args = parser.parse_args(argv[1:])
    plot(args.results.read_text(encoding='utf-8'), args.output)
    print(f'wrote {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
