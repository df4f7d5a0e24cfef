//! One module per subcommand.

pub mod devd;
pub mod simulate;
pub mod vfattach;
pub mod vfup;
