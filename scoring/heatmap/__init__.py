"""The heatmap of a run: which memories matter for which responses.

- matrix.py: the read model, a run's memories × responses cells in bulk.
- payload.py: the packed JSON the page draws, gzipped and cached.
- scoring/views/heatmap.py: the page, its data, the CSV and one cell.
- static/memscore/heatmap.js: drawing it on a canvas.
"""
