//! Static routes (rc.d/routing): `static_routes`/`route_NAME`,
//! `ipv6_static_routes`/`ipv6_route_NAME`, `defaultrouter`.

use crate::conf::RcConf;
use crate::expand::split_fields;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RouteFamily {
    Inet,
    Inet6,
}

/// One configured static route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    /// The entry of the list (`NAME` or `NAME:IF`).
    pub entry: String,
    /// NAME (the entry up to its last `:`).
    pub name: String,
    pub family: RouteFamily,
    /// Words of `route_NAME` / `ipv6_route_NAME`.
    pub args: Vec<String>,
    /// IF of a `NAME:IF` entry: rc.d/routing adds it when that interface
    /// is started.
    pub tagged_interface: Option<String>,
    /// The interface named by `-interface IF` / `-iface IF` in the args.
    pub via_interface: Option<String>,
}

impl StaticRoute {
    /// Arguments of `route(8)` to add this route: `add [-inet6] ARGS...`.
    pub fn add_args(&self) -> Vec<String> {
        let mut v = vec!["add".to_string()];
        if self.family == RouteFamily::Inet6 {
            v.push("-inet6".into());
        }
        v.extend(self.args.iter().cloned());
        v
    }

    /// Whether the route belongs to interface `ifname` (tagged with it,
    /// or routed through it with `-interface`).
    pub fn is_for(&self, ifname: &str) -> bool {
        self.tagged_interface.as_deref() == Some(ifname)
            || self.via_interface.as_deref() == Some(ifname)
    }
}

impl RcConf {
    fn routes_from(&self, list_var: &str, pattern: &str, family: RouteFamily) -> Vec<StaticRoute> {
        let mut out = Vec::new();
        for entry in split_fields(self.get(list_var).unwrap_or("")) {
            let (name, tag) = match entry.rsplit_once(':') {
                Some((n, t)) => (n.to_string(), Some(t.to_string())),
                None => (entry.clone(), None),
            };
            let args = split_fields(&self.get_if_var(&name, pattern).unwrap_or_default());
            if args.is_empty() {
                // rc warns "route_NAME not found" and adds nothing.
                continue;
            }
            let via_interface = args
                .windows(2)
                .find(|w| w[0] == "-interface" || w[0] == "-iface")
                .map(|w| w[1].clone());
            out.push(StaticRoute {
                entry,
                name,
                family,
                args,
                tagged_interface: tag,
                via_interface,
            });
        }
        out
    }

    /// `static_routes` in order (entries without a `route_NAME` skipped).
    pub fn static_routes(&self) -> Vec<StaticRoute> {
        self.routes_from("static_routes", "route_IF", RouteFamily::Inet)
    }

    /// `ipv6_static_routes` in order.
    pub fn ipv6_static_routes(&self) -> Vec<StaticRoute> {
        self.routes_from("ipv6_static_routes", "ipv6_route_IF", RouteFamily::Inet6)
    }

    /// Routes of both families that belong to `ifname`.
    pub fn routes_for_interface(&self, ifname: &str) -> Vec<StaticRoute> {
        self.static_routes()
            .into_iter()
            .chain(self.ipv6_static_routes())
            .filter(|r| r.is_for(ifname))
            .collect()
    }

    /// `defaultrouter`, unless empty or NO.
    pub fn default_router(&self) -> Option<String> {
        router(self.get("defaultrouter"))
    }

    /// `ipv6_defaultrouter`, unless empty or NO.
    pub fn ipv6_default_router(&self) -> Option<String> {
        router(self.get("ipv6_defaultrouter"))
    }
}

fn router(v: Option<&str>) -> Option<String> {
    let v = v?;
    if v.is_empty() || v.eq_ignore_ascii_case("no") {
        None
    } else {
        Some(v.to_string())
    }
}
