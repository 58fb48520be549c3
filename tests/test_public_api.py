from __future__ import annotations

import plinth


def test_all_is_sorted_and_complete() -> None:
    assert plinth.__all__ == sorted(plinth.__all__)
    for name in plinth.__all__:
        assert hasattr(plinth, name), name
    public = {n for n in dir(plinth) if not n.startswith("_")}
    # Submodules appear as attributes once imported; everything else must be curated.
    modules = {n for n in public if type(getattr(plinth, n)).__name__ == "module"}
    assert public - modules <= set(plinth.__all__)


def test_version_is_a_string() -> None:
    assert isinstance(plinth.__version__, str)
    assert plinth.__version__[0].isdigit()
