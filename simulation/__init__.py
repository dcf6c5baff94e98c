"""Synthetic CZII datasets: particle shapes, placement, imaging physics and the dataset writer."""
from simulation.dataset import simulate_dataset
from simulation.tomogram import simulate_tomogram

__all__ = ["simulate_dataset", "simulate_tomogram"]
