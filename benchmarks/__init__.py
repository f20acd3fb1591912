"""Side-by-side benchmarks of commtel against its peer libraries (`./dev bench`)."""
