//! Starting a helper program that must not inherit the daemon's terminal or files and must
//! be stoppable with everything it started.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// Start `program` with `args` detached from our standard streams (all three /dev/null) in
/// a process group of its own, so that a signal to the group (`kill(-pid, ..)`) reaches
/// whatever it starts in turn.
pub fn spawn_in_own_group<I, S>(program: impl AsRef<OsStr>, args: I) -> std::io::Result<Child>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_child_leads_its_own_group_with_null_streams() {
        let mut child = spawn_in_own_group(
            "sh",
            ["-c", "[ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = $$ ] && [ ! -t 0 ] && read x; [ -z \"$x\" ]"],
        )
        .unwrap();
        assert!(child.wait().unwrap().success());
    }
}
