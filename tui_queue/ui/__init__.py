"""The Textual dashboard: the only package of tui-queue that imports Textual."""

from tui_queue.ui.app import QueueLabApp, create_app
from tui_queue.ui.options import LabOptions

__all__ = ["LabOptions", "QueueLabApp", "create_app"]
