//! One module per subcommand.

pub mod devd;
