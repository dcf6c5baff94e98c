"""Synthetic CZII datasets: particle shapes, placement, imaging physics and the copick writer."""
