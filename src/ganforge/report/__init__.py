"""Pictures of a run: sample grids and point clouds; plots.py (PNG curves, heatmaps), html.py (report.html), tensorboard.py."""

from .grids import image_grid, save_grid, save_points

__all__ = ["image_grid", "save_grid", "save_points"]
