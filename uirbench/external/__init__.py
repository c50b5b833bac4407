"""External paired benchmarks and the all-in-one protocols, recomputed from images.

* ``layouts.py`` / ``public.py``: layout rules (Rain100L, SOTS outdoor, LOL-v1, GoPro, CDD-11, generic, csv)
  registered in ``LAYOUTS``: a set's folder -> pairs and problems, by file names;
* ``importer.py`` / ``writer.py``: ``uirbench import``: checked pairs -> a dataset folder like ``generate``'s;
* ``conventions.py``: how the papers score (crop to a multiple of 16, unquantised output, 7x7 uniform SSIM);
* ``protocols.py``, ``scoring.py``, ``table.py``, ``run.py``: ``uirbench protocol``: the 3-task, 5-task and
  CDD-11 protocols as datasets, scored under each convention, rendered in their published layout;
* ``commands.py``: the command-line parsers.
"""
