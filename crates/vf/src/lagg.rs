//! lagg(4) failover rules (spec hn.md §5, sys/net/if_lagg.c) shared by every model of an
//! aggregate: the [`crate::MemoryBackend`]'s idealised kernel and the simulator's lagg.

/// The port failover sends on (`lagg_link_active` from the primary): a port is usable when
/// `usable` says so (link UP and IFF_UP). The primary if usable, else the port after it in
/// the list if usable, else the first usable port in list order; with no primary, the first
/// usable port.
pub fn failover_active<'a>(
    ports: &'a [String],
    primary: Option<&str>,
    usable: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let at = primary.and_then(|p| ports.iter().position(|x| x == p));
    if let Some(i) = at {
        // The primary, then its successor: if_lagg.c looks at these two first.
        for p in ports[i..].iter().take(2) {
            if usable(p) {
                return Some(p);
            }
        }
    }
    ports.iter().map(String::as_str).find(|p| usable(p))
}

/// Insert `port` where `lagg_port_create` puts it: the list is sorted by interface index
/// (`index`), a port with the same index as others goes after them.
pub fn insert_port(ports: &mut Vec<String>, port: &str, index: impl Fn(&str) -> u32) {
    let i = index(port);
    let at = ports.partition_point(|p| index(p) <= i);
    ports.insert(at, port.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_primary_when_usable_then_the_port_after_it_then_the_first_usable() {
        let l = ports(&["a", "b", "c"]);
        let up = |set: &'static [&'static str]| move |p: &str| set.contains(&p);
        assert_eq!(
            failover_active(&l, Some("b"), up(&["a", "b", "c"])),
            Some("b")
        );
        // The primary down: the port after it, not the first usable in the list.
        assert_eq!(failover_active(&l, Some("b"), up(&["a", "c"])), Some("c"));
        // Neither usable: the first usable in list order.
        assert_eq!(failover_active(&l, Some("b"), up(&["a"])), Some("a"));
        assert_eq!(failover_active(&l, Some("c"), up(&["a", "b"])), Some("a"));
        assert_eq!(failover_active(&l, Some("a"), up(&[])), None);
        // No primary (lagg_link_active with NULL): the first usable port.
        assert_eq!(failover_active(&l, None, up(&["b", "c"])), Some("b"));
        // A primary that is not a port is not looked at.
        assert_eq!(failover_active(&l, Some("z"), up(&["c"])), Some("c"));
    }

    #[test]
    fn ports_are_kept_in_interface_index_order() {
        let index = |p: &str| match p {
            "hn0" => 2,
            "mce0" => 5,
            "mce1" => 4,
            _ => 4,
        };
        let mut l = Vec::new();
        for p in ["mce0", "hn0", "mce1", "x"] {
            insert_port(&mut l, p, index);
        }
        assert_eq!(l, ["hn0", "mce1", "x", "mce0"]);
    }
}
