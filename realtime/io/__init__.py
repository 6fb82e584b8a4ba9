"""Frames in and out: camera and file sources, sinks, video files, the bench clip.

Nothing here knows about faces: imports neither ``realtime.faces`` nor ``realtime.frame``.
"""
