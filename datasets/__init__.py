"""PDE families, dataset generation into HDF5, and loaders (issue 5; not built yet)."""
