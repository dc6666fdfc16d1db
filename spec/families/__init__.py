"""One module per family; each registers its family when imported. ``get_family`` and
``all_families`` import every module here (modules whose name starts with ``_`` hold shared pieces),
so adding a family is adding a module — no list to keep."""
