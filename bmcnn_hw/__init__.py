"""bmcnn-hw: Binarized Memristive CNNs to crossbar netlists, RTL and co-simulation."""

__version__ = "0.1.0"
