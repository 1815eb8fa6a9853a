"""Power, performance and area: SPICE transient reads, cited analog models, Yosys + OpenSTA."""
