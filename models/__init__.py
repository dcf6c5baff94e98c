"""Plain ``nn.Module`` 3D U-Nets and their registry: no loss, no Lightning."""
