"""Pictures of a run: sample grids and point clouds (report.html comes later)."""

from .grids import image_grid, save_grid, save_points

__all__ = ["image_grid", "save_grid", "save_points"]
