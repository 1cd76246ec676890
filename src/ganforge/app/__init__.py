"""`ganforge app [RUNS_DIR]`: a local web page to play with trained runs, and a Lab that trains
a GAN on 2-D points live (docs/reference/app).

The model side (catalog.py: finding and loading runs; explorer.py: grids, interpolation,
translation, the report; directions.py: GANSpace latent directions; lab.py: a page session's
bounded training; lab_view.py: its curves and the doctor's events in words) imports no web
framework and is tested without a browser; page.py builds the Gradio page on top of it and is
imported only by the `app` command, so the core install does not need Gradio.
"""
