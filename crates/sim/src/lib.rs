//! hvnet-sim
