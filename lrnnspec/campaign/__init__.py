"""Campaigns: certification jobs run on one machine or a Ray cluster, with one example database,
resumable, with live progress.

- :mod:`.jobs` — :class:`~.jobs.Job` (one target × dtypes × device × seed) and :func:`~.jobs.run_job`;
- :mod:`.executors` — ``local`` (this process, or a process pool) and ``ray``;
- :mod:`.definition` — campaign TOML files, read and checked into jobs;
- :mod:`.driver` — runs jobs on an executor and alone writes certificates (atomically);
- :mod:`.resume` — which jobs ``--resume`` skips;
- :mod:`.database` — ``--database``: a directory or ``redis://``;
- :mod:`.progress` — the live display, or one line per job;
- :mod:`.conformance` — ``lrnnspec conformance``'s jobs (one per implementation);
- :mod:`.measure` — local against Ray, side by side (``reports/campaign.md``).

``lrnnspec campaign run FILE`` and ``lrnnspec conformance`` (a campaign with defaults) use them.
"""
