"""Every attribute key the SQL reads is a name defined once, in spancost.attributes."""

from __future__ import annotations

import re

from conftest import REPO

from spancost import attributes


def test_every_attribute_in_sql_is_defined_in_the_names_module() -> None:
    defined = {value for name, value in vars(attributes).items() if name.isupper() and isinstance(value, str)}
    used: dict[str, set[str]] = {}
    for path in [*(REPO / "collector" / "sql").glob("*.sql"), *(REPO / "spancost" / "queries").glob("*.sql")]:
        for key in re.findall(r"(?:SpanAttributes|ResourceAttributes)\['([^']+)'\]", path.read_text()):
            used.setdefault(key, set()).add(path.name)
    assert used, "the SQL reads attributes"
    missing = {key: sorted(files) for key, files in used.items() if key not in defined}
    assert not missing, f"attribute keys in SQL but not in spancost/attributes.py: {missing}"
