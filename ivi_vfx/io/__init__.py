"""Reading and writing EXR frames and resolving frame-number patterns on disk."""
