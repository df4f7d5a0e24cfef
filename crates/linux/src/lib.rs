//! hvnet-linux
