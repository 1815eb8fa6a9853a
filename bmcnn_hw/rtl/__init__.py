"""Digital periphery RTL (Amaranth components) and Verilog emission."""
