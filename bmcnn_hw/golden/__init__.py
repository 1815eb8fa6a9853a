"""NumPy golden models: exact integer executor and crossbar physics executor."""
