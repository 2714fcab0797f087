"""``.. autointerface:: dotted.name``: a ``zope.interface`` interface as a
class with its methods and attributes, from the interface's own
docstrings (autodoc cannot read an ``InterfaceClass``: it has no MRO)."""
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from pyramid.path import DottedNameResolver
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles
from zope.interface.interface import Method


def indented(text, prefix='   '):
    return [prefix + line if line else ''
            for line in inspect.cleandoc(text or '').splitlines()]


def interface_lines(dotted):
    """The reST that documents the interface named ``dotted``."""
    interface = DottedNameResolver().resolve(dotted)
    module, _, name = dotted.rpartition('.')
    lines = [f'.. py:class:: {name}', f'   :module: {module}', '']
    lines += indented(interface.__doc__) + ['']
    for member, description in interface.namesAndDescriptions(all=False):
        if isinstance(description, Method):
            signature = description.getSignatureString()
            lines += [f'   .. py:method:: {member}{signature}', '']
        else:
            lines += [f'   .. py:attribute:: {member}', '']
        lines += indented(description.getDoc(), '      ') + ['']
    return lines


class AutoInterface(SphinxDirective):
    required_arguments = 1

    def run(self):
        source = self.get_source_info()[0]
        content = StringList(interface_lines(self.arguments[0]),
                             source=source)
        container = nodes.container()
        nested_parse_with_titles(self.state, content, container)
        return container.children


def setup(app):
    app.add_directive('autointerface', AutoInterface)
    return {'parallel_read_safe': True}
