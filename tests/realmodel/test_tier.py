"""One line for the whole tier when its dependencies are missing (see conftest.py)."""

import pytest
from realmodel_support import MISSING, REQUIRED, WHY_SKIPPED

if MISSING and not REQUIRED:
    pytest.skip(WHY_SKIPPED, allow_module_level=True)


@pytest.mark.realmodel
def test_model_dependencies_installed():
    assert not MISSING, f"{WHY_SKIPPED}; MEMSCORE_REQUIRE_MODEL=1 requires them"
