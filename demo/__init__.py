"""demo: `cutout demo`, the whole path on shipped sample garments, and the synthetic studio
that the demo and the tests make their own data with."""
