"""cocotb testbenches and the orchestration that runs them against the golden model."""
