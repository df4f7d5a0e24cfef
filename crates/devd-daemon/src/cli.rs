//! devd(8)'s command-line conventions that `hvnet devd run` keeps: `-l`'s number as
//! strtoul(…, 0) reads it, and where the pid file goes by default.

/// devd's pid file, unless devd.conf's `pid-file` option names another: FreeBSD's, and on
/// Linux in hvnet's run directory like the sockets.
pub const DEFAULT_PID_FILE: &str = if cfg!(target_os = "linux") {
    "/run/hvnet/devd.pid"
} else {
    "/var/run/devd.pid"
};

/// devd parses `-l` with strtoul(…, 0): decimal, 0x hex or leading-0 octal; junk stops it.
pub fn parse_limit(s: &str) -> usize {
    let s = s.trim_start();
    let (digits, radix) = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (h, 16)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    let end = digits
        .find(|c: char| !c.is_digit(radix))
        .unwrap_or(digits.len());
    let n = usize::from_str_radix(&digits[..end], radix).unwrap_or(if end == 0 {
        0
    } else {
        usize::MAX
    });
    n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_parses_like_strtoul_base_0() {
        assert_eq!(parse_limit("10"), 10);
        assert_eq!(parse_limit("0x10"), 16);
        assert_eq!(parse_limit("010"), 8);
        assert_eq!(parse_limit("0"), 1);
        assert_eq!(parse_limit("junk"), 1);
        assert_eq!(parse_limit("3abc"), 3);
    }
}
