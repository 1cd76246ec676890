"""Pictures a person looks at: sample grids and training curves."""

from ganforge.report.grid import image_grid, save_images
from ganforge.report.plots import plot_training_curves, run_panels

__all__ = ["image_grid", "plot_training_curves", "run_panels", "save_images"]
