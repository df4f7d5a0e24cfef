//! One module per subcommand.

pub mod devd;
pub mod simulate;
