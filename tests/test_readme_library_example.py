"""The README's "Use it as a library" examples run as written against a real index.

1. The library example needs nothing but an index directory (no service, no store opened:
   the state directory stays empty).
2. The service example personalizes and logs a search through the same engine.
"""

from __future__ import annotations

import re
from pathlib import Path

from search.service import SearchService
from search.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Use it as a library") :]
    section = section[: section.index("\n## ", 4)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_library_example_runs_with_nothing_but_an_index_directory(mutable_index_dir: Path, capsys) -> None:
    library, _service = _examples()
    code = library.replace('"var/demo/index"', repr(str(mutable_index_dir)))
    exec(compile(code, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "results;" in printed and "proximity" not in printed.splitlines()[0]
    state = mutable_index_dir / "state"
    assert not state.exists() or not any(state.iterdir()), "the library opened a store"


def test_service_example_personalizes_and_logs(mutable_index_dir: Path) -> None:
    library, service = _examples()
    namespace: dict = {}
    exec(compile(library.replace('"var/demo/index"', repr(str(mutable_index_dir))), "README.md", "exec"), namespace)
    exec(compile(service.replace('"var/demo/index"', repr(str(mutable_index_dir))), "README.md", "exec"), namespace)
    reopened = SearchService(Settings(index_dir=mutable_index_dir))
    try:
        logged = [s for s in reopened.search_log.between() if s.visitor_id == "v1"]
        assert [s.query for s in logged] == ["dress"]
        assert reopened.visitors.profiles.get("v1") is not None
    finally:
        reopened.close()
