//! What both daemons (`hvnet run` and `hvnet devd run`) need from the operating system,
//! done safely in directories other users may write: checking such a directory and
//! creating files and sockets in it ([`shared_dir`]), pid files locked as pidfile(3) does
//! ([`pidfile`]), who is at the other end of a Unix socket ([`peer`]), and helper programs
//! started in a process group of their own ([`process`]).

pub mod peer;
pub mod pidfile;
pub mod process;
pub mod shared_dir;
