"""The Qt-free core: readers, the module tree, comparisons and export jobs.

Nothing below this package imports Qt; every piece is testable headless.
"""
