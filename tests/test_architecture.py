"""The package's shape: no import cycle between its modules (counting the
imports inside functions too), and a module map in the package docstring
that names every module."""

import ast
import os

from conftest import ROOT

PKG = 'snntb_adaptive'
PKG_DIR = os.path.join(ROOT, PKG)


def import_graph():
    graph = {}
    for f in sorted(os.listdir(PKG_DIR)):
        if not f.endswith('.py'):
            continue
        mod = f[:-3]
        with open(os.path.join(PKG_DIR, f)) as fh:
            tree = ast.parse(fh.read())
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == PKG:
                    deps |= {a.name for a in node.names}
                elif node.module.startswith(PKG + '.'):
                    deps.add(node.module.split('.')[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split('.')[1] for a in node.names
                         if a.name.startswith(PKG + '.')}
        graph[mod] = deps - {mod, '__version__'}
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle, or None."""
    state = {}

    def visit(node, path):
        state[node] = 'open'
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 'open':
                return path[path.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep, path + [dep])
                if cycle:
                    return cycle
        state[node] = 'done'
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == \
        ['a', 'b', 'c', 'a']
    assert find_cycle({'a': {'b'}, 'b': set(), 'c': {'a', 'b'}}) is None


def test_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 20
    assert find_cycle(graph) is None, find_cycle(graph)


def test_module_map_names_every_module():
    import snntb_adaptive
    doc = snntb_adaptive.__doc__
    missing = [m for m in import_graph() if m not in ('__init__',
                                                      '__main__')
               and ':mod:`~snntb_adaptive.{}`'.format(m) not in doc]
    assert not missing, missing


def test_every_deliberate_bug_of_the_mutation_check_still_applies():
    """benchmarks/mutants.py replaces an exact text once per bug: when the
    code moves on, its entries must follow (else the check says NOT
    APPLIED instead of testing anything)."""
    import importlib.util
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        'mutants', os.path.join(root, 'benchmarks', 'mutants.py'))
    mutants = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mutants)
    stale = []
    for name, path, old, new, tests in mutants.BUGS:
        with open(os.path.join(root, path)) as f:
            if f.read().count(old) != 1:
                stale.append(name)
        for test in tests.split():
            assert os.path.exists(os.path.join(root, test)), (name, test)
    assert not stale, stale
