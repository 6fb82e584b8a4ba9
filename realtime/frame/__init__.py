"""One frame's face work: swappers, compositing, host (OpenCV) and device (torch) processors.

Never imports the pipeline, the session, the command modules or the window.
"""
