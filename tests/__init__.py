"""The test suite, one package: every folder has an ``__init__.py``, so a test module is imported by its
full name (``tests.cli.test_cli``) and the repository root is on ``sys.path`` under pytest's default
import mode. Fixtures live in ``conftest.py`` files and are used by name; helpers shared across folders
live in ``tests/support`` and others beside their tests, imported by absolute name
(``from tests.support.meld import MELD_ROWS``, ``from tests.datasets.store_reading import meta``);
nothing imports ``conftest`` or edits ``sys.path``."""
