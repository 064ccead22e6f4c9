//! Building the ecmp lab: namespaces, links, BIRD and lvsd on each director, the reals.

use super::*;

impl Lab {
    pub(super) fn note(&mut self, msg: impl Into<String>) {
        let msg = msg.into();
        if !self.opts.json {
            println!("[{:7.2}s] {msg}", self.t0.elapsed().as_secs_f64());
        }
        self.notes.push((self.t0.elapsed(), msg));
    }

    pub(super) fn spawn(&self, ns: &Netns, program: &Path, args: &[&str], log: &Path) -> Result<std::process::Child, LabError> {
        let log = std::fs::File::create(log).map_err(setup("log file"))?;
        Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(setup("log file"))?)
            .stderr(log)
            .spawn()
            .map_err(setup(&format!("start {}", program.display())))
    }

    pub(super) fn build(opts: Options) -> Result<Lab, LabError> {
        let n = opts.directors;
        if !(2..=MAX_DIRECTORS).contains(&n) {
            return Err(LabError::Setup(format!("--directors {n}: the ecmp topology takes 2 to {MAX_DIRECTORS}")));
        }
        if opts.mode != super::super::Mode::Dr {
            return Err(LabError::Setup("the ecmp topology forwards in DR mode only (--mode dr)".into()));
        }
        if opts.policy.is_some() {
            return Err(LabError::Setup("the ecmp topology writes its own policy (--policy is for the pair)".into()));
        }
        let exe = std::env::current_exe().map_err(setup("own executable"))?;
        let dir = PathBuf::from(format!("/run/lvsd/lab-{}", std::process::id()));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(setup("lab directory"))?;
        }
        let reals_n = opts.reals.clamp(1, MAX_REALS);
        let scheduler = opts.scheduler.clone().unwrap_or_else(|| SCHEDULER.into());
        let bfd = (opts.detect.unwrap_or(Detect::Bfd) == Detect::Bfd).then_some(BFD);
        let policy_file = dir.join("policy.lua");
        std::fs::write(&policy_file, policy(&dir, n, reals_n, !opts.long.no_sync, &scheduler, bfd)).map_err(setup("policy"))?;

        let id = std::process::id();
        let ns = |name: &str| Netns::create(&format!("lab{id}-{name}")).map_err(setup("namespace"));
        let lan = ns("lan")?;
        netns::bridge(&lan, "br0").map_err(setup("bridge"))?;
        // The router: eth0 on the directors' LAN, eth1 to the client.
        let router = ns("router")?;
        plug(&router, "eth0", None, &lan, "prt")?;
        router.ip(&["addr", "add", &format!("{ROUTER}/24"), "dev", "eth0"]).map_err(setup("address"))?;
        sysctls(&router, &["net.ipv4.ip_forward=1", "net.ipv4.fib_multipath_hash_policy=1"])?;
        let client = ns("client")?;
        netns::veth(&router, "eth1", &client, "eth0").map_err(setup("veth"))?;
        router.ip(&["addr", "add", "198.51.100.1/24", "dev", "eth1"]).map_err(setup("address"))?;
        client.ip(&["addr", "add", "198.51.100.5/24", "dev", "eth0"]).map_err(setup("address"))?;
        // Only the sources the clients use (each `ip` run costs in a slow guest).
        for o in sources(opts.long.long_lived).iter().chain(&long_sources(opts.long.long_lived)) {
            client.ip(&["addr", "add", &format!("{o}/24"), "dev", "eth0"]).map_err(setup("address"))?;
        }
        client.ip(&["route", "add", "default", "via", "198.51.100.1"]).map_err(setup("route"))?;

        let mut directors = Vec::new();
        for i in 0..n {
            let name = director_name(i);
            let d = ns(&name)?;
            plug(&d, "eth0", None, &lan, &format!("pd{i}"))?;
            d.ip(&["addr", "add", &format!("{}/24", director_addr(i)), "dev", "eth0"]).map_err(setup("address"))?;
            d.ip(&["route", "add", "default", "via", ROUTER]).map_err(setup("route"))?;
            // The VIP is local (IPVS takes what is addressed to the host) but never answered
            // for in ARP: the router reaches it through the next hops BGP gives.
            d.ip(&["addr", "add", &format!("{VIP}/32"), "dev", "lo"]).map_err(setup("address"))?;
            sysctls(&d, &["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])?;
            // A flow ECMP moves here mid-stream: IPVS schedules its first non-SYN packet too
            // (mh picks the same real) when the sync daemon has not told this director yet.
            let _ = d.exec("sysctl", &["-qw", "net.ipv4.vs.sloppy_tcp=1"]);
            // A real taken out of the table leaves entries behind (in DR the director sees only
            // the client's side, so FIN_WAIT lasts its 2 min; every director holds synced
            // copies): a new SYN that reuses a client port of one of them is dropped silently
            // while expire_nodest_conn is 0 (ip_vs_in: "the destination server is not
            // available"). 1: the entry is expired and the SYN scheduled anew (kernel 5.9+
            // also expires them when the real is deleted).
            let _ = d.exec("sysctl", &["-qw", "net.ipv4.vs.expire_nodest_conn=1"]);
            let ddir = dir.join(&name);
            std::fs::create_dir_all(&ddir).map_err(setup("director directory"))?;
            std::fs::write(ddir.join("bird.conf"), director_bird(&dir, &name)).map_err(setup("bird.conf"))?;
            directors.push(Director { lvsd: None, bird: None, socket: ddir.join("lvsd.sock"), name, ns: d, dir: ddir });
        }
        let mut reals = Vec::new();
        for i in 0..reals_n {
            let name = format!("rs{}", i + 1);
            let r = ns(&name)?;
            plug(&r, "eth0", Some(real_mac(i)), &lan, &format!("pr{i}"))?;
            r.ip(&["addr", "add", &format!("{}/24", real_addr(i)), "dev", "eth0"]).map_err(setup("address"))?;
            r.ip(&["route", "add", "default", "via", ROUTER]).map_err(setup("route"))?;
            reals.push(Real { http: None, name, ns: r });
        }
        std::fs::write(dir.join("router-bird.conf"), router_bird(&dir, n, bfd)).map_err(setup("bird.conf"))?;
        Ok(Lab {
            opts,
            scheduler,
            bfd,
            t0: Instant::now(),
            epoch0: super::super::now_epoch(),
            dir,
            exe,
            policy_file,
            monitor: None,
            router_bird: None,
            directors,
            reals,
            client,
            router,
            _lan: lan,
            phases: Vec::new(),
            notes: Vec::new(),
            shared: Arc::new(Shared::default()),
            watch: Arc::new(Watch::default()),
        })
    }

    pub(super) fn settle(&self, secs: f64) -> Result<(), LabError> {
        super::super::poll_until(Duration::from_secs_f64(secs), || false).map(drop)
    }

    pub(super) fn wait(&self, what: &str, limit: Duration, cond: impl Fn(&Lab) -> bool) -> Result<(), LabError> {
        if super::super::poll_until(limit, || cond(self))? {
            return Ok(());
        }
        let mut msg = format!("timed out after {limit:?} waiting for {what}; the router's route: {:?}", self.hops());
        let tail = |path: PathBuf| {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().rev().take(8).collect();
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        msg.push_str(&format!("\n--- the router's BIRD:\n{}", tail(self.dir.join("router-bird.log"))));
        for d in &self.directors {
            msg.push_str(&format!("\n--- {} lvsd:\n{}", d.name, tail(d.dir.join("lvsd.log"))));
            msg.push_str(&format!("\n--- {} BIRD:\n{}", d.name, tail(d.dir.join("bird.log"))));
        }
        Err(LabError::Setup(msg))
    }

    pub(super) fn status(&self, i: usize) -> Option<Value> {
        let mut c = crate::control::client::Client::connect(&self.directors[i].socket).ok()?;
        c.call(crate::control::Command::Status { text_only: false, brief: false }).ok()?.result
    }

    pub(super) fn control(&self, i: usize, cmd: crate::control::Command) -> Result<Value, LabError> {
        let name = &self.directors[i].name;
        let mut c = crate::control::client::Client::connect(&self.directors[i].socket).map_err(setup(name))?;
        let r = c.call(cmd).map_err(setup(name))?;
        if !r.ok {
            return Err(LabError::Setup(format!("{name}: {}", r.error.unwrap_or_default())));
        }
        Ok(r.result.unwrap_or_default())
    }

    /// The router's next hops for the VIP now (asked, not from the monitor).
    pub(super) fn hops(&self) -> Vec<Ipv4Addr> {
        let out = self.router.ip(&["-o", "route", "show", "exact", &format!("{VIP}/32")]).unwrap_or_default();
        out.lines().find_map(|l| wire::route_line(l, VIP)).unwrap_or_default()
    }

    pub(super) fn hops_of(&self, up: &[usize]) -> Vec<Ipv4Addr> {
        let mut v: Vec<Ipv4Addr> = up.iter().map(|i| director_addr(*i)).collect();
        v.sort_unstable();
        v
    }

    pub(super) fn start_router(&mut self) -> Result<(), LabError> {
        // The route monitor first, so that it sees the first announcement too.
        let mut child = Command::new("ip")
            .args(["-n", self.router.name(), "-o", "monitor", "route"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(setup("ip monitor"))?;
        let out = child.stdout.take().ok_or_else(|| LabError::Setup("ip monitor: no stdout".into()))?;
        self.monitor = Some(Proc { name: "ip monitor".into(), child });
        let (watch, t0) = (self.watch.clone(), self.t0);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some(hops) = wire::route_line(&line, VIP) {
                    watch.routes.lock().unwrap().push((t0.elapsed(), hops));
                }
            }
        });
        let bird = PathBuf::from("bird");
        let conf = self.dir.join("router-bird.conf");
        let ctl = self.dir.join("router-bird.ctl");
        let pid = self.dir.join("router-bird.pid");
        let args = ["-f", "-c", conf.to_str().unwrap_or(""), "-s", ctl.to_str().unwrap_or(""), "-P", pid.to_str().unwrap_or("")];
        let child = self.spawn(&self.router, &bird, &args, &self.dir.join("router-bird.out"))?;
        self.router_bird = Some(Proc { name: "router BIRD".into(), child });
        Ok(())
    }

    pub(super) fn start_lvsd(&mut self, i: usize) -> Result<(), LabError> {
        let d = &self.directors[i];
        let args = [
            "run",
            "-p",
            self.policy_file.to_str().unwrap_or(""),
            "--node",
            &d.name,
            "--control",
            d.socket.to_str().unwrap_or(""),
            "--resync",
            "2",
        ];
        let child = self.spawn(&d.ns, &self.exe.clone(), &args, &d.dir.join("lvsd.log"))?;
        let name = d.name.clone();
        self.directors[i].lvsd = Some(Proc { name: format!("{name} lvsd"), child });
        Ok(())
    }

    pub(super) fn start_bird(&mut self, i: usize) -> Result<(), LabError> {
        let d = &self.directors[i];
        let (conf, ctl, pid) = (d.dir.join("bird.conf"), d.dir.join("bird.ctl"), d.dir.join("bird.pid"));
        let args = ["-f", "-c", conf.to_str().unwrap_or(""), "-s", ctl.to_str().unwrap_or(""), "-P", pid.to_str().unwrap_or("")];
        let child = self.spawn(&d.ns, Path::new("bird"), &args, &d.dir.join("bird.out"))?;
        let name = d.name.clone();
        self.directors[i].bird = Some(Proc { name: format!("{name} BIRD"), child });
        Ok(())
    }

    /// lvsd wants the VIP announced (its service has quorum): BIRD may start.
    pub(super) fn wants_vip(&self, i: usize) -> bool {
        self.status(i).is_some_and(|s| s["bgp"]["vips"].as_array().is_some_and(|v| !v.is_empty() && v.iter().all(|v| v["wanted"] == true)))
    }

    /// Every real of the service in director `i`'s table (`Some(false)`: one is out).
    pub(super) fn reals_in(&self, i: usize, want: &[bool]) -> bool {
        let Some(s) = self.status(i) else { return false };
        let Some(rs) = s["services"].get(0).and_then(|v| v["reals"].as_array().cloned()) else { return false };
        want.iter().enumerate().all(|(ri, w)| {
            let addr = format!("{}:", real_addr(ri));
            rs.iter().find(|r| r["address"].as_str().is_some_and(|a| a.starts_with(&addr))).is_some_and(|r| (r["in_table"] == true) == *w)
        })
    }

    pub(super) fn start_http(&mut self, i: usize) -> Result<(), LabError> {
        let r = &self.reals[i];
        let args = ["lab-http", "--name", &r.name, "--port", "80"];
        let child = self.spawn(&r.ns, &self.exe.clone(), &args, &self.dir.join(format!("{}-http.log", r.name)))?;
        self.reals[i].http = Some(Proc { name: self.reals[i].name.clone(), child });
        Ok(())
    }

    pub(super) fn prepare_reals(&mut self) -> Result<(), LabError> {
        for i in 0..self.reals.len() {
            let r = &self.reals[i];
            let sd = self.dir.join(format!("{}-state", r.name));
            let vip = VIP.to_string();
            let out = Command::new("ip")
                .args(["netns", "exec", r.ns.name()])
                .arg(&self.exe)
                .args(["realserver", "up", "--vip", &vip, "--state-dir", sd.to_str().unwrap_or("")])
                .output()
                .map_err(setup("lvsd realserver"))?;
            if !out.status.success() {
                return Err(LabError::Setup(format!("{}: lvsd realserver up: {}", r.name, String::from_utf8_lossy(&out.stderr))));
            }
            self.start_http(i)?;
        }
        Ok(())
    }

    /// Director `i`'s IPVS connection table (None: it cannot be read).
    pub(super) fn table(&self, i: usize) -> Option<Vec<wire::Conn>> {
        // On a thread in its namespace (thread-self: /proc/self/net is the process's).
        let text = self.directors[i].ns.run(|| std::fs::read_to_string("/proc/thread-self/net/ip_vs_conn_sync")).ok()?.ok()?;
        Some(text.lines().filter_map(wire::conn_line).collect())
    }

    /// A packet socket on each director's link: new connections, requests and forwards.
    pub(super) fn watch_directors(&self) -> Vec<std::thread::JoinHandle<()>> {
        (0..self.directors.len())
            .map(|i| {
                let (watch, t0, epoch0) = (self.watch.clone(), self.t0, self.epoch0);
                spawn_in(self.directors[i].ns.name(), move || capture(watch, i, t0, epoch0))
            })
            .collect()
    }
}
