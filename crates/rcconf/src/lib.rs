//! hvnet-rcconf
