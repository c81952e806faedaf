"""Vector index backends behind one small interface (see `base.VectorBackend`)."""
