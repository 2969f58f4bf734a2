"""Re-implementations of the field's methods, written from their papers, for side-by-side benchmarks."""
