//! hvnet-devd
