//! hvnet-vf
