//! hvnet-freebsd
