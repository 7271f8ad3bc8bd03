"""Reading and writing plates: EXR images (OpenImageIO) and frame sequences (fileseq)."""
