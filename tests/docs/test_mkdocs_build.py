"""The documentation site builds with ``mkdocs build --strict``: every nav page exists and renders,
and a broken link, anchor, API reference or included file fails the build."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MISSING = [name for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers")
           if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"the docs extra is not installed (missing {MISSING}): "
                                                      'pip install "scenesense[docs]"')


def mkdocs_build(config: Path, site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def nav_pages(nav: list[Any]) -> list[str]:
    """Every Markdown page named in a mkdocs ``nav``, in order."""
    pages: list[str] = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += nav_pages(value) if isinstance(value, list) else [value]
    return pages


def html_of(page: str) -> str:
    """The file ``mkdocs`` writes for ``page`` (directory URLs): ``a/b.md`` -> ``a/b/index.html``."""
    stem = page[: -len(".md")]
    if stem == "index" or stem.endswith("/index"):
        return f"{stem}.html"
    return f"{stem}/index.html"


def test_the_site_builds_strictly_with_every_nav_page(tmp_path):
    start = time.perf_counter()
    proc = mkdocs_build(REPO / "mkdocs.yml", tmp_path / "site", REPO)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    pages = nav_pages(config["nav"])
    concepts = ("feature-store", "run-directory", "registries", "configuration")
    extending = ("fusion", "encoder", "dataset-format", "extractor")
    guides = ("meld", "ravdess", "mmsa", "csd", "raw-media", "context-streaming", "experiments", "devices",
              "ray")
    required = ["index.md", "getting-started.md", "results.md", "formats.md",
                *(f"concepts/{p}.md" for p in concepts), *(f"extending/{p}.md" for p in extending),
                *(f"guides/{p}.md" for p in guides)]
    assert set(required) <= set(pages), sorted(set(required) - set(pages))
    missing = [page for page in pages if not (tmp_path / "site" / html_of(page)).is_file()]
    assert not missing, missing
    fusion_page = (tmp_path / "site" / html_of("extending/fusion.md")).read_text(encoding="utf-8")
    assert "GatedSumFusion" in fusion_page  # the tested example is included in its page
    reference = (tmp_path / "site" / html_of("reference/fusions.md")).read_text(encoding="utf-8")
    assert 'id="scenesense.fusions.base.Fusion"' in reference  # the API reference is rendered
    assert seconds < 300, f"the site took {seconds:.0f} s to build"


def test_every_module_is_in_the_api_reference():
    """A new module appears in the reference: each one (but the command line's) has a ``:::`` entry."""
    package = REPO / "src" / "scenesense"
    names = {".".join(("scenesense", *p.relative_to(package).with_suffix("").parts))
             for p in package.rglob("*.py") if p.name != "__main__.py"}
    modules = {name.removesuffix(".__init__") for name in names}
    modules = {m for m in modules if not m.startswith("scenesense.cli")}
    text = "\n".join(p.read_text(encoding="utf-8") for p in (REPO / "docs" / "reference").glob("*.md"))
    documented = {line.split(":::", 1)[1].strip() for line in text.splitlines() if line.startswith(":::")}
    assert not modules - documented, f"add to a docs/reference page: {sorted(modules - documented)}"
    assert not documented - modules, f"no such module: {sorted(documented - modules)}"


BROKEN = {
    "a link to a missing page": "See [the guide](missing.md).",
    "a link to a missing anchor": "See [the layout](other.md#no-such-heading).",
    "a reference to a missing API object": "See [`Nope`][scenesense.registry.Nope].",
    "an included file that does not exist": '```python\n--8<-- "docs/examples/missing.py"\n```',
}


def small_site(tmp_path: Path, text: str) -> Path:
    """A two-page site with the project's settings (validation, strictness, extensions, plugins)."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    config.pop("extra_css", None)
    config["docs_dir"] = "docs"
    config["nav"] = ["index.md", "other.md"]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(REPO / "src")]
    (tmp_path / "docs" / "examples").mkdir(parents=True)
    (tmp_path / "docs" / "examples" / "shown.py").write_text("print('shown')\n", encoding="utf-8")
    (tmp_path / "docs" / "index.md").write_text(f"# Home\n\n{text}\n", encoding="utf-8")
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## Layout\n\nText.\n", encoding="utf-8")
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return tmp_path / "mkdocs.yml"


def test_a_small_site_with_valid_links_builds(tmp_path):
    text = ("See [the layout](other.md#layout) and [`Registry`][scenesense.registry.Registry].\n\n"
            '```python\n--8<-- "docs/examples/shown.py"\n```\n\n::: scenesense.registry')
    config = small_site(tmp_path, text)
    proc = mkdocs_build(config, tmp_path / "site", tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "shown" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")  # the file was included


@pytest.mark.parametrize("problem", sorted(BROKEN))
def test_a_broken_link_fails_the_build(problem, tmp_path):
    config = small_site(tmp_path, BROKEN[problem])
    proc = mkdocs_build(config, tmp_path / "site", tmp_path)
    assert proc.returncode != 0, f"{problem} did not fail the build:\n{proc.stderr[-3000:]}"
