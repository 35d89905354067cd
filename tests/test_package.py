"""The package imports cheaply and the CLI answers."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from watchkeeper.cli import create_app


def test_version_option() -> None:
    result = CliRunner().invoke(create_app(), ["--version"])
    assert result.exit_code == 0
    assert "watchkeeper 0.1.0" in result.output
    from watchkeeper.detectors import _backend

    assert f"(detector kernels: {_backend.name()})" in result.output


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, watchkeeper, watchkeeper.cli; "
        "heavy = ('scipy', 'sklearn', 'sqlalchemy', 'fastapi', 'torch', 'numba', 'pandas'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _extras() -> dict[str, list[str]]:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())
    return dict(data["project"]["optional-dependencies"])


def _source() -> str:
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "src" / "watchkeeper"
    return "\n".join(p.read_text() for p in root.rglob("*.py"))


# The module an extra's distribution is imported as, where the two names differ.
IMPORT_NAMES = {"nvidia-ml-py": "pynvml", "pillow": "PIL", "mlflow-skinny": "mlflow"}


def test_every_extra_is_imported_somewhere() -> None:
    """An extra nothing imports promises a feature that does not exist."""
    import re

    source = _source()
    for extra, requirements in _extras().items():
        if extra == "dev":
            continue
        modules = []
        for req in requirements:
            dist = re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower()
            modules.append(IMPORT_NAMES.get(dist, dist.replace("-", "_")))
        # imported, or dispatched on by module name (polars frames are recognised, not imported)
        used = [m for m in modules if re.search(rf"^\s*(import|from)\s+{m}\b", source, re.M)
                or f'"{m}"' in source]
        assert used, f"extra {extra!r} ({requirements}) is not imported anywhere in src"


def test_every_install_hint_names_a_real_extra() -> None:
    import re

    extras = set(_extras())
    hints = re.findall(r"pip\s+install\s+'?watchkeeper\[([a-z0-9_,-]+)\]", _source())
    assert hints, "no install hints found: the pattern is stale"
    for hint in hints:
        for extra in hint.split(","):
            assert extra in extras, f"a hint names extra {extra!r}, which pyproject lacks"


def test_demo_notes_keep_the_extra_in_brackets() -> None:
    """Rich reads ``[tensorboard]`` as markup: the demo's hint printed ``watchkeeper``."""
    import io

    from rich.console import Console

    from watchkeeper.demo.scenario import print_notes

    out = Console(file=io.StringIO(), width=200)
    print_notes(out, ["tensorboard is not installed (pip install 'watchkeeper[tensorboard]')"])
    assert "pip install 'watchkeeper[tensorboard]'" in out.file.getvalue()  # type: ignore[attr-defined]


def test_docs_cite_the_projects_own_design_document() -> None:
    """DESIGN.md is not in the repository; docs/design.md is, and its figures are right."""
    from pathlib import Path

    from watchkeeper.estimation import OperatingPoint, expect_flags

    root = Path(__file__).resolve().parents[1]
    texts = [root / "README.md", *(root / "docs").rglob("*.md"), *(root / "src").rglob("*.py")]
    citing = [str(p.relative_to(root)) for p in texts
              if "DESIGN.md" in p.read_text() or "STYLE.md" in p.read_text()]  # fmt: skip
    assert citing == []
    design = (root / "docs" / "design.md").read_text()
    fixed = expect_flags(OperatingPoint(None, 0.9, 0.02), 0.1, 1000)
    assert fixed.expected == 108 and f"σ ≈ {fixed.sigma:.1f}" in design
    random_mix = (1000 * 0.108 * 0.892) ** 0.5
    assert "108 flags a day" in design.replace("**", "").replace("\n  ", " ")
    assert f"σ ≈ {random_mix:.1f}" in design
