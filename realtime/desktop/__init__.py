"""The app on the desktop: its icon (package data) and menu entries per OS.

Imports nothing from the rest of the app but ``realtime.system``.
"""
