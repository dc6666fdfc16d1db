"""``python -m lrnnspec.schema``: write certificate.schema.json from the models (tests/cli checks it is current)."""

from lrnnspec.atomic import write_text
from lrnnspec.schema import SCHEMA_FILE, schema_text

write_text(SCHEMA_FILE, schema_text())
print(f"wrote {SCHEMA_FILE}")
