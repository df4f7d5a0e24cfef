//! The simulated guest kernel's state: network interfaces, hn(4) softc state,
//! processes, routes, device nodes, sysctls — and the host and network around
//! it. Behaviour lives in sibling modules (`hn`, `lagg`, `ifops`, `dhcp`,
//! `traffic`, `sysctl`), each an `impl World` block with one job.
//!
//! Time never advances inside `World`: every method takes `now`, and anything
//! that happens later is queued in [`World::timers`] for the runner.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use hvnet_vf::{Ipv4Net, Ipv6Net, Mac, Route};

/// What kind of ifnet this is (the driver family as the model needs it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfClass {
    /// hn(4), the synthetic NIC.
    Hn,
    /// An SR-IOV VF (mce, mlxen, mana, ...).
    Vf,
    /// lagg(4).
    Lagg,
    /// lo(4).
    Loopback,
}

/// Facts about a VF's (virtual) hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfHw {
    /// Driver family, e.g. `mlx5en`.
    pub family: String,
    /// The PCI function still works (false between a surprise removal and
    /// the detach).
    pub hw_ok: bool,
    /// The driver uses `if_start` (refused by hn in transparent mode).
    pub uses_if_start: bool,
    /// Largest MTU the VF accepts.
    pub max_mtu: u32,
}

/// lagg(4) softc (failover is the only protocol that moves traffic here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaggState {
    /// `laggproto`: failover unless set.
    pub proto: hvnet_vf::AggregateProto,
    /// Ports, sorted by if_index (lagg's list order).
    pub ports: Vec<String>,
    /// The failover primary (MASTER): the first port ever added to an empty
    /// lagg, then the first port of the list after it leaves.
    pub primary: Option<String>,
}

/// One network interface (struct ifnet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ifnet {
    pub name: String,
    /// Driver name (`if_dname`): `hn`, `mce`, `mlxen`, `lagg`, `lo`.
    pub dname: String,
    pub index: u32,
    pub class: IfClass,
    /// `if_alloctype == IFT_ETHER` (lagg membership does not change it).
    pub alloctype_ether: bool,
    pub mac: Mac,
    /// IFF_UP.
    pub up: bool,
    /// IFF_DRV_RUNNING (the driver was initialised by an up ioctl).
    pub running: bool,
    /// Link state as reported (LINK_STATE_UP).
    pub link: bool,
    pub mtu: u32,
    pub ipv4: Vec<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    pub lagg: Option<LaggState>,
    /// The lagg this interface is a port of.
    pub member_of: Option<String>,
    /// The port's own MAC while the lagg overrides it.
    pub saved_mac: Option<Mac>,
    pub vf: Option<VfHw>,
}

impl Ifnet {
    pub fn new(name: &str, dname: &str, index: u32, class: IfClass, mac: Mac) -> Self {
        Ifnet {
            name: name.to_string(),
            dname: dname.to_string(),
            index,
            alloctype_ether: matches!(class, IfClass::Hn | IfClass::Vf | IfClass::Lagg),
            class,
            mac,
            up: false,
            running: false,
            link: false,
            mtu: 1500,
            ipv4: Vec::new(),
            ipv6: Vec::new(),
            lagg: None,
            member_of: None,
            saved_mac: None,
            vf: None,
        }
    }
}

/// hn(4) per-device state (the parts of `struct hn_softc` the VF logic uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HnState {
    pub name: String,
    pub unit: u32,
    /// HN_FLAG_SYNTH_ATTACHED.
    pub synth_attached: bool,
    /// `hn_vf_ifp` (both modes).
    pub vf: Option<String>,
    /// HN_FLAG_RXVF (non-transparent): the VF is activated.
    pub rxvf: bool,
    /// Link management suspended (the hn link is a pretence or follows the VF).
    pub link_suspended: bool,
    /// An RNDIS link query is queued (link management resumed).
    pub link_query_pending: bool,
    /// Transparent: the attach wait is over (`hn_vf_rdytick == 0`).
    pub xpnt_ready: bool,
    /// Transparent: HN_XVFFLAG_ENABLED.
    pub xpnt_enabled: bool,
    /// Transparent: HN_XVFFLAG_ACCBPF.
    pub xpnt_accbpf: bool,
    /// The last datapath hn sent to the host (NVS SET_DATAPATH): true = VF.
    pub datapath_vf: bool,
    /// hn's MTU before transparent setready had to reset it.
    pub saved_caps: bool,
}

/// A process in the guest that the model knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcKind {
    Dhclient { iface: String },
    Daemon(hvnet_vf::Daemon),
}

/// A running process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub kind: ProcKind,
}

/// State of one dhclient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpClientState {
    pub iface: String,
    pub bound: Option<Ipv4Net>,
    pub lease_until: Duration,
}

/// The DHCP server on the virtual network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpServer {
    pub enabled: bool,
    pub first: Ipv4Addr,
    pub prefix: u8,
    pub router: Option<Ipv4Addr>,
    pub lease: Duration,
    /// How long an exchange takes.
    pub delay: Duration,
    /// Leases by client MAC (stable: the same MAC gets the same address).
    pub leases: BTreeMap<Mac, Ipv4Addr>,
}

impl Default for DhcpServer {
    fn default() -> Self {
        DhcpServer {
            enabled: true,
            first: Ipv4Addr::new(10, 0, 0, 4),
            prefix: 24,
            router: Some(Ipv4Addr::new(10, 0, 0, 1)),
            lease: Duration::from_secs(3600),
            delay: Duration::from_millis(1500),
            leases: BTreeMap::new(),
        }
    }
}

/// What the host has given the VM for one synthetic NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNic {
    pub hn: String,
    pub mac: Mac,
    /// The host's own synthetic link (vswitch) is up.
    pub link: bool,
    /// A VF is allocated to this NIC (the host honours datapath=VF).
    pub vf_allocated: bool,
    /// The guest ifnet of the current VF, once attached.
    pub vf_ifnet: Option<String>,
}

/// Things scheduled by the model for later.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timer {
    /// RNDIS link status query completes (link management resumed).
    LinkQuery { hn: String },
    /// Transparent mode: `hn_xpnt_vf_init_taskfunc` after the attach wait.
    XpntInit { hn: String, vf: String },
    /// A dhclient exchange completes (lease or renewal).
    Dhcp { pid: u32 },
}

/// Model timing constants (virtual).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// RNDIS link query latency after link management resumes.
    pub link_query: Duration,
    /// How long a guest command that changes the kernel (one ifconfig(8) or
    /// route(8) run, one backend op) takes: a program's changes land one after
    /// another, and packets sent meanwhile meet the state between them.
    pub command: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            link_query: Duration::from_millis(10),
            command: Duration::from_millis(1),
        }
    }
}

/// Kernel, host and network.
#[derive(Debug, Clone)]
pub struct World {
    pub ifnets: BTreeMap<String, Ifnet>,
    pub hns: BTreeMap<String, HnState>,
    /// `hw.hn.vf_transparent`.
    pub vf_transparent: bool,
    /// `hw.hn.vf_xpnt_attwait` (seconds).
    pub attwait: u32,
    /// `hw.hn.vf_xpnt_accbpf`.
    pub accbpf_default: bool,
    /// `net.link.lagg.failover_rx_all`.
    pub failover_rx_all: bool,
    /// Global VF map: VF ifindex -> hn name (`hn_vfmap`).
    pub vfmap: BTreeMap<u32, String>,
    pub routes: Vec<Route>,
    pub procs: BTreeMap<u32, Proc>,
    pub dhclients: BTreeMap<u32, DhcpClientState>,
    pub next_pid: u32,
    pub devices: BTreeSet<String>,
    /// Other sysctls set by the scenario or the guest, by name.
    pub sysctls: BTreeMap<String, String>,
    pub host: BTreeMap<String, HostNic>,
    pub dhcp: DhcpServer,
    pub timing: Timing,
    /// devctl lines emitted and not yet collected by the runner.
    pub devctl: Vec<String>,
    /// Interfaces whose link task (`do_link_state_change`) is queued.
    pub link_tasks: std::collections::VecDeque<String>,
    /// Timers to schedule, collected by the runner.
    pub timers: Vec<(Duration, Timer)>,
    /// Kernel log lines (bootverbose-ish), collected by the runner.
    pub log: Vec<String>,
    /// NVS SET_DATAPATH messages sent, (hn, to_vf), for tests.
    pub nvs_datapath: Vec<(String, bool)>,
}

/// Why an interface operation failed (an errno, in words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("interface {0} does not exist")]
    NoSuchInterface(String),
    #[error("interface {0} already exists")]
    Exists(String),
    #[error("{0}: device busy")]
    Busy(String),
    #[error("{0}: protocol not supported")]
    ProtoNotSupported(String),
    #[error("{0}: invalid argument")]
    Invalid(String),
    #[error("{0}: no space left on device")]
    NoSpace(String),
    #[error("{0}: operation not permitted")]
    NotPermitted(String),
    #[error("unknown oid '{0}'")]
    NoSuchOid(String),
    #[error("no such process {0}")]
    NoSuchProcess(u32),
    #[error("route {0}: not in table")]
    NoRoute(String),
}

impl Default for World {
    fn default() -> Self {
        World::new(true)
    }
}

impl World {
    /// An empty guest (no interfaces yet) in the given hn mode.
    pub fn new(vf_transparent: bool) -> Self {
        World {
            ifnets: BTreeMap::new(),
            hns: BTreeMap::new(),
            vf_transparent,
            attwait: 2,
            accbpf_default: false,
            failover_rx_all: false,
            vfmap: BTreeMap::new(),
            routes: Vec::new(),
            procs: BTreeMap::new(),
            dhclients: BTreeMap::new(),
            next_pid: 100,
            devices: BTreeSet::new(),
            sysctls: BTreeMap::new(),
            host: BTreeMap::new(),
            dhcp: DhcpServer::default(),
            timing: Timing::default(),
            devctl: Vec::new(),
            link_tasks: Default::default(),
            timers: Vec::new(),
            log: Vec::new(),
            nvs_datapath: Vec::new(),
        }
    }

    /// The interface `name`.
    pub fn ifnet(&self, name: &str) -> Option<&Ifnet> {
        self.ifnets.get(name)
    }

    pub(crate) fn ifnet_mut(&mut self, name: &str) -> Result<&mut Ifnet, KernelError> {
        self.ifnets
            .get_mut(name)
            .ok_or_else(|| KernelError::NoSuchInterface(name.to_string()))
    }

    pub(crate) fn need(&self, name: &str) -> Result<&Ifnet, KernelError> {
        self.ifnets
            .get(name)
            .ok_or_else(|| KernelError::NoSuchInterface(name.to_string()))
    }

    /// Interfaces in if_index order.
    pub fn by_index(&self) -> Vec<&Ifnet> {
        let mut v: Vec<&Ifnet> = self.ifnets.values().collect();
        v.sort_by_key(|i| i.index);
        v
    }

    /// The lowest free if_index (FreeBSD reuses freed slots).
    pub(crate) fn alloc_index(&self) -> u32 {
        let used: BTreeSet<u32> = self.ifnets.values().map(|i| i.index).collect();
        (1..).find(|i| !used.contains(i)).unwrap_or(1)
    }

    /// The lowest free unit for driver `dname`.
    pub fn alloc_unit(&self, dname: &str) -> u32 {
        let used: BTreeSet<u32> = self
            .ifnets
            .values()
            .filter(|i| i.dname == dname)
            .filter_map(|i| i.name[dname.len()..].parse().ok())
            .collect();
        (0..).find(|u| !used.contains(u)).unwrap_or(0)
    }

    /// Queue a devctl notify event in devd's wire format (without newline).
    pub(crate) fn notify(&mut self, system: &str, subsystem: &str, kind: &str, data: Option<&str>) {
        let mut line = format!("!system={system} subsystem={subsystem} type={kind}");
        if let Some(d) = data {
            line.push(' ');
            line.push_str(d);
        }
        self.devctl.push(line);
    }

    pub(crate) fn schedule(&mut self, at: Duration, t: Timer) {
        self.timers.push((at, t));
    }

    pub(crate) fn klog(&mut self, msg: String) {
        self.log.push(msg);
    }

    /// The hn a VF is registered with (the global map, by the VF's index).
    pub fn hn_of_vf(&self, vf: &str) -> Option<&str> {
        let idx = self.ifnets.get(vf)?.index;
        self.vfmap.get(&idx).map(String::as_str)
    }

    /// Attach the loopback interface (boot).
    pub fn attach_loopback(&mut self) {
        let index = self.alloc_index();
        let mut lo = Ifnet::new("lo0", "lo", index, IfClass::Loopback, Mac::ZERO);
        lo.mtu = 16384;
        lo.up = true;
        lo.running = true;
        lo.link = true;
        lo.ipv4.push(Ipv4Net::new(Ipv4Addr::LOCALHOST, 8));
        self.ifnets.insert("lo0".into(), lo);
        self.notify("IFNET", "lo0", "ATTACH", None);
    }

    /// Create a device node and emit DEVFS CDEV CREATE.
    pub fn create_device(&mut self, cdev: &str) {
        if self.devices.insert(cdev.to_string()) {
            self.notify("DEVFS", "CDEV", "CREATE", Some(&format!("cdev={cdev}")));
        }
    }

    /// Destroy a device node and emit DEVFS CDEV DESTROY.
    pub fn destroy_device(&mut self, cdev: &str) {
        if self.devices.remove(cdev) {
            self.notify("DEVFS", "CDEV", "DESTROY", Some(&format!("cdev={cdev}")));
        }
    }

    /// Start a process; returns its pid.
    pub fn spawn(&mut self, kind: ProcKind) -> u32 {
        let pid = self.next_pid;
        self.next_pid += 1;
        self.procs.insert(pid, Proc { pid, kind });
        pid
    }

    /// Kill a process (SIGTERM: the model's processes exit at once).
    pub fn kill(&mut self, pid: u32) -> Result<(), KernelError> {
        self.procs
            .remove(&pid)
            .ok_or(KernelError::NoSuchProcess(pid))?;
        self.dhclients.remove(&pid);
        Ok(())
    }

    /// Every interface holding `addr` (IPv4), in index order.
    pub fn holders_v4(&self, addr: Ipv4Addr) -> Vec<&Ifnet> {
        self.by_index()
            .into_iter()
            .filter(|i| i.ipv4.iter().any(|n| n.addr == addr))
            .collect()
    }
}
