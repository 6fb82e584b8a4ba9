"""The command-line face: argument parsing and printing for live, swap, bench and detect.

Imports nothing from ``realtime.ui``; the window is started through ``realtime.ui.app.run_window``.
"""
