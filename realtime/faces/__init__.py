"""Finding and following faces: detection, alignment, tracking, selection, identities."""
