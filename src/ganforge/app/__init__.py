"""`ganforge app [RUNS_DIR]`: a local web page to play with trained runs (README: App).

The model side (catalog.py: finding and loading runs; explorer.py: grids, interpolation,
translation, the report; directions.py: GANSpace latent directions) imports no web framework
and is tested without a browser; page.py builds the Gradio page on top of it and is imported
only by the `app` command, so the core install does not need Gradio.
"""
