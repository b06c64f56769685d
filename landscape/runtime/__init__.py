"""The machinery of the toolkit that is not mathematics, shared by its four packages.

``landscape`` is the bottom floor (ARCHITECTURE.md), so what every package needs to run
and to write lives here, beside the mathematics rather than in it:

* :mod:`~landscape.runtime.executor`: independent units run locally or on Ray, their
  result store and the atomic file writer; :mod:`~landscape.runtime.ray_executor` is
  the optional Ray backend;
* :mod:`~landscape.runtime.outdir`: the audit's output folder, validated before and
  written atomically after the search;
* :mod:`~landscape.runtime.safe_load`: reading user-given ``.npy``/``.npz``/JSON files
  without running code from them;
* :mod:`~landscape.runtime.cli`: the argument checks and conventions every command
  line shares;
* :mod:`~landscape.runtime.version`: the toolkit's version.

Nothing here imports the mathematics of :mod:`landscape` (only its input error,
:class:`landscape.LandscapeInputError`); the mathematics imports this subpackage only
where it reads or writes files.
"""
