"""All charts are drawn in cnnzoo.analysis.plots: the only module that imports matplotlib."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import cnnzoo

PACKAGE = Path(cnnzoo.__file__).parent
PLOTS = PACKAGE / "analysis" / "plots.py"


def matplotlib_imports(path: Path) -> list[str]:
    """``line: statement`` of every import of matplotlib in ``path``, at any depth (inside
    functions too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        if any(n == "matplotlib" or n.startswith("matplotlib.") for n in names):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_but_plots_imports_matplotlib():
    offenders = {
        str(path.relative_to(PACKAGE)): hits
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PLOTS and (hits := matplotlib_imports(path))
    }
    assert offenders == {}
    assert matplotlib_imports(PLOTS)  # the scan sees an import where there is one


@pytest.mark.parametrize("modules", ["cnnzoo", "cnnzoo.engine", "cnnzoo.analysis"])
def test_importing_the_package_loads_no_matplotlib(modules):
    code = f"import sys, {modules}; assert 'matplotlib' not in sys.modules, 'matplotlib loaded'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_importing_the_trainer_loads_no_analysis():
    """The trainer asks analysis for the test's MACs and the reports when training is done,
    so ``cnnzoo train`` reaches its first step without the analysis modules (and the FLOP
    counter's import of triton)."""
    code = (
        "import sys, cnnzoo.engine.trainer, cnnzoo.commands.train\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('cnnzoo.analysis'))\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
