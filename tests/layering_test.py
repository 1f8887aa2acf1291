"""Imports go one way (DESIGN.md): run.py -> estimators -> tfgan_attention, data, eval; data and
eval never import estimators; tfgan_attention imports nothing of the project; the model registry
imports no model; no import cycle, not even through imports inside functions. Read from the sources (ast), nothing run."""
import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("tfgan_attention", "estimators", "data", "eval", "bench")
# What each package may import of the project (any import, at any depth of a module).
ALLOWED = {"tfgan_attention": set(), "data": set(), "eval": {"data"},
           "estimators": {"tfgan_attention", "data", "eval"},
           "bench": {"tfgan_attention", "data", "eval", "estimators"}}


def _modules():
  modules = {}
  for pkg in PACKAGES:
    for dirpath, _, files in os.walk(os.path.join(ROOT, pkg)):
      for f in files:
        if f.endswith(".py") and not f.endswith("_test.py"):
          path = os.path.join(dirpath, f)
          name = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
          modules[name.removesuffix(".__init__")] = path
  return modules


def _imports(path, modules, top_level_only):
  """Project modules `path` imports ('from pkg import submodule' counts as the submodule)."""
  tree = ast.parse(open(path, encoding="utf-8").read())
  nodes = tree.body if top_level_only else ast.walk(tree)
  found = set()
  for node in nodes:
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.split(".")[0] in ALLOWED)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      if node.module.split(".")[0] not in ALLOWED:
        continue
      subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
      found.update(subs)
      if len(subs) < len(node.names):
        found.add(node.module)
  return found


def test_packages_import_only_the_layers_below_them():
  modules = _modules()
  for name, path in modules.items():
    pkg = name.split(".")[0]
    for imported in _imports(path, modules, top_level_only=False):
      other = imported.split(".")[0]
      assert other == pkg or other in ALLOWED[pkg], f"{name} imports {imported}"


def test_the_model_registry_and_the_engines_import_no_model_module():
  modules = _modules()
  engines = sorted(n for n in modules if n.startswith("estimators.engines"))
  assert len(engines) > 10
  for name in ["estimators.model_registry", "estimators.export", "estimators.evaluation",
               "estimators.experiment", "estimators.losses", "estimators.networks"] + engines:
    named = {m for m in _imports(modules[name], modules, top_level_only=False)
             if m.startswith("estimators.models.")}
    assert not named, f"{name} imports model modules {named}"


def test_imports_have_no_cycle_not_even_through_imports_inside_functions():
  """(data.registry once imported data.builtin inside a function while builtin's modules import
  the registry: a circle that only worked because of the order things ran in.)"""
  modules = _modules()
  graph = {n: _imports(p, modules, top_level_only=False) & set(modules) - {n}
           for n, p in modules.items()}
  done, active = set(), []

  def visit(node):
    active.append(node)
    for dep in sorted(graph[node]):
      assert dep not in active, "import cycle: " + " -> ".join(active[active.index(dep):] + [dep])
      if dep not in done:
        visit(dep)
    active.pop()
    done.add(node)
  for node in sorted(graph):
    if node not in done:
      visit(node)
  assert len(done) == len(modules) > 80
