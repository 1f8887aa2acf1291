"""Every Python source and test module is covered by exactly one BUILD target (py_library/py_test)."""
import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("tfgan_attention", "estimators", "data", "eval", "bench", "tests")


def _targets():
  """{rule name: [(target name, srcs)]} from BUILD, parsed as the Python-syntax Starlark it is."""
  tree = ast.parse(open(os.path.join(ROOT, "BUILD")).read())
  targets = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
      kwargs = {k.arg: k.value for k in node.keywords}
      srcs = [ast.literal_eval(e) for e in getattr(kwargs.get("srcs"), "elts", [])]
      targets.append((node.func.id, ast.literal_eval(kwargs["name"]), srcs))
  return targets


def test_every_module_has_exactly_one_target_of_the_right_kind():
  targets = _targets()
  owners = {}
  for rule, name, srcs in targets:
    for src in srcs:
      owners.setdefault(src, []).append((rule, name))
      assert os.path.exists(os.path.join(ROOT, src)), f"BUILD names missing file {src}"
  modules = ["run.py"] + [p for pkg in PACKAGES
                          for p in glob.glob(f"{pkg}/**/*.py", root_dir=ROOT, recursive=True)]
  for module in modules:
    assert module in owners, f"{module} is in no BUILD target"
    assert len(owners[module]) == 1, f"{module} is in several targets: {owners[module]}"
    rule = owners[module][0][0]
    expected = "py_test" if module.endswith("_test.py") else ("py_binary" if module == "run.py"
                                                                else "py_library")
    assert rule == expected, f"{module} belongs in a {expected}, found {rule}"


def test_each_test_target_tests_one_module():
  for rule, name, srcs in _targets():
    if rule == "py_test":
      assert len(srcs) == 1 and srcs[0].endswith(f"{name}.py"), (name, srcs)


def test_target_names_are_unique():
  names = [name for _, name, _ in _targets()]
  assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)
