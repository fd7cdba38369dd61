//! Starting and stopping shards: choose the I/O backend, bind the listeners, build the mesh,
//! spawn one pinned thread per shard, and drain them on request.

use crate::core::Core;
use crate::counters::ShardCounters;
use crate::epoll::EpollShard;
use crate::mesh::{self, Envelope, MeshEndpoint, MeshPort};
use crate::service::Service;
use crate::tls::TlsAcceptor;
use crate::uring::{self, UringShard};
use crate::{EngineConfig, ShardId};
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Direct-descriptor slots kept beyond the connection table (accepts racing a full table: at
/// most `uring::ACCEPTS_PER_LISTENER` (16) per listener complete before their refusal's close
/// is queued; beyond the spare the kernel refuses the connection itself with ENFILE).
pub(crate) const DIRECT_TABLE_SPARE: u32 = 64;

/// Which I/O backend to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoChoice {
    /// io_uring when it can be set up with the features the engine needs, else epoll.
    Auto,
    /// io_uring or fail.
    Uring,
    /// epoll.
    Epoll,
}

/// A port every shard listens on (each with its own SO_REUSEPORT socket).
#[derive(Clone, Debug)]
pub struct ListenerSpec {
    /// A name for logs ("http", "rtmp").
    pub name: String,
    /// Address to bind; port 0 picks a free port, shared by all shards.
    pub addr: SocketAddr,
    /// Set for a TLS listener: its connections speak TLS, and the service sees plaintext.
    pub tls: Option<Arc<TlsAcceptor>>,
    /// Each shard listens on a port of its own instead: its UDP socket's address (`addr` is
    /// then ignored), or any free port when that TCP port is taken. A connection then
    /// reaches the shard whose port it dialled (WebRTC over TCP, whose session lives on the
    /// shard that answered). [`crate::Ctx::listener_local_addr`] tells each shard its own.
    pub at_udp_port: Option<crate::UdpId>,
}

/// What the process runs on, decided at start.
#[derive(Debug)]
pub struct RuntimeInfo {
    /// "io_uring" or "epoll".
    pub backend: &'static str,
    /// Why that backend was chosen.
    pub backend_reason: String,
    /// io_uring features in use (empty on epoll).
    pub features: Vec<&'static str>,
    /// Listener names and the addresses bound (shard 0's for a listener per shard).
    pub listeners: Vec<(String, SocketAddr)>,
    /// Each listener's address on each shard, by listener index then shard.
    pub listener_addrs: Vec<Vec<SocketAddr>>,
    /// UDP socket names and each shard's address, by [`crate::UdpId`].
    pub udp: Vec<(String, Vec<SocketAddr>)>,
    /// The core each shard is pinned to (`None`: not pinned).
    pub cores: Vec<Option<usize>>,
    /// Every shard's engine counters, for scrapes.
    pub counters: Vec<Arc<ShardCounters>>,
    /// The engine configuration in force.
    pub engine: EngineConfig,
}

impl RuntimeInfo {
    /// Number of shards.
    pub fn shards(&self) -> usize {
        self.cores.len()
    }

    /// The mesh address of worker `index` (see [`EngineConfig::worker_endpoints`]).
    pub fn worker_id(&self, index: usize) -> ShardId {
        assert!(index < self.engine.worker_endpoints, "no worker {index}");
        ShardId((self.shards() + 1 + index) as u16)
    }
}

/// What a service factory learns about the shard it builds a service for.
pub struct ShardInfo {
    pub shard: ShardId,
    pub runtime: Arc<RuntimeInfo>,
}

/// The running shards and the control thread's end of the mesh.
pub struct Runtime<M: Send + 'static> {
    control: MeshEndpoint<M>,
    /// Worker endpoints not yet taken.
    workers: Vec<MeshEndpoint<M>>,
    threads: Vec<JoinHandle<io::Result<()>>>,
    info: Arc<RuntimeInfo>,
}

/// Starts `cores.len()` shards, shard *i* pinned to `cores[i]` when given, each running the
/// service `factory` builds for it. Returns once every shard is serving (or the first error).
pub fn launch<S, F>(
    cores: Vec<Option<usize>>,
    io_choice: IoChoice,
    listeners: &[ListenerSpec],
    config: EngineConfig,
    factory: F,
) -> io::Result<Runtime<S::Msg>>
where
    S: Service,
    F: Fn(&ShardInfo) -> S + Send + Sync + 'static,
{
    assert!(!cores.is_empty(), "at least one shard");
    assert!(cores.len() <= u16::MAX as usize);
    let shards = cores.len();
    let (features, backend_reason) = choose_backend(io_choice, &config.io_uring_disable)?;
    let use_uring = features.is_some();
    let backend = if use_uring { "io_uring" } else { "epoll" };
    let mut config = config;
    let nofile = crate::sys::raise_nofile_limit();
    // Each ring's direct-descriptor table is bounded by RLIMIT_NOFILE, and so is the whole
    // process's fd table under epoll. Refuse rather than fail later: shrink the table.
    let per_shard_limit = if use_uring {
        nofile.saturating_sub(DIRECT_TABLE_SPARE as u64)
    } else {
        nofile.saturating_sub(64 + shards as u64 * 8) / shards as u64
    };
    if u64::from(config.max_connections) > per_shard_limit {
        log::warn!(
            "connection table of {} per shard exceeds what RLIMIT_NOFILE ({nofile}) allows on {backend}; \
             using {per_shard_limit} (raise the limit to serve more)",
            config.max_connections
        );
        config.max_connections = per_shard_limit.max(1) as u32;
    }

    let (mut udp_fds, udp_bound) = bind_udp(&config, shards)?;
    let (mut fds, listener_addrs) =
        bind_listeners((listeners, shards), &config, &udp_bound, use_uring)?;
    let bound = (listeners.iter().zip(&listener_addrs))
        .map(|(spec, addrs)| (spec.name.clone(), addrs[0]))
        .collect();

    let counters: Vec<Arc<ShardCounters>> = (0..shards)
        .map(|_| Arc::new(ShardCounters::default()))
        .collect();
    let info = Arc::new(RuntimeInfo {
        backend,
        backend_reason,
        features: features.as_ref().map(|f| f.names()).unwrap_or_default(),
        listeners: bound,
        listener_addrs,
        udp: udp_bound,
        cores: cores.clone(),
        counters: counters.clone(),
        engine: config.clone(),
    });

    assert!(shards + 1 + config.worker_endpoints <= u16::MAX as usize);
    let mut endpoints = mesh::build::<S::Msg>(
        shards + 1 + config.worker_endpoints,
        config.mesh_ring_capacity,
    )?;
    let workers = endpoints.split_off(shards + 1);
    let control = endpoints.pop().expect("control endpoint");
    let factory = Arc::new(factory);
    let (ready_tx, ready_rx) = mpsc::channel::<io::Result<()>>();
    let mut threads = Vec::with_capacity(shards);
    for (index, endpoint) in endpoints.into_iter().enumerate() {
        let shard = ShardId(index as u16);
        let core_id = cores[index];
        let listener_fds = std::mem::take(&mut fds[index]);
        let shard_udp = std::mem::take(&mut udp_fds[index]);
        let tls: Vec<_> = listeners.iter().map(|l| l.tls.clone()).collect();
        let factory = factory.clone();
        let info = info.clone();
        let features = features.clone();
        let config = config.clone();
        let ready = ready_tx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("shard-{index}"))
            .spawn(move || -> io::Result<()> {
                if let Some(core_id) = core_id {
                    if let Err(e) = crate::sys::pin_to_core(core_id) {
                        log::warn!("shard {index}: could not pin to core {core_id}: {e}");
                    }
                }
                let service = factory(&ShardInfo {
                    shard,
                    runtime: info.clone(),
                });
                let mut core = Core::new(
                    service,
                    shard,
                    shards,
                    MeshPort::Ring(endpoint),
                    info.counters[index].clone(),
                    &config,
                );
                core.set_tls(tls.clone());
                core.cx.udp_local = info.udp.iter().map(|(_, addrs)| addrs[index]).collect();
                core.cx.listener_local = info.listener_addrs.iter().map(|a| a[index]).collect();
                core.cx.udp_sender = crate::udp::UdpSender::new(shard_udp.clone());
                let udp = crate::udp::UdpSockets::new(shard_udp);
                match features {
                    Some(features) => match UringShard::new(core, &features, listener_fds, udp) {
                        Ok(shard) => {
                            let _ = ready.send(Ok(()));
                            shard.run()
                        }
                        Err(e) => {
                            let _ = ready.send(Err(io::Error::new(
                                e.kind(),
                                format!("shard {index}: io_uring setup failed: {e}"),
                            )));
                            Err(e)
                        }
                    },
                    None => match EpollShard::new(core, listener_fds, udp) {
                        Ok(shard) => {
                            let _ = ready.send(Ok(()));
                            shard.run()
                        }
                        Err(e) => {
                            let _ = ready.send(Err(io::Error::new(
                                e.kind(),
                                format!("shard {index}: epoll setup failed: {e}"),
                            )));
                            Err(e)
                        }
                    },
                }
            })?;
        threads.push(thread);
    }
    drop(ready_tx);
    let mut runtime = Runtime {
        control,
        workers,
        threads,
        info,
    };
    for _ in 0..shards {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                runtime.drain();
                let _ = runtime.join();
                return Err(e);
            }
            Err(_) => return Err(io::Error::other("a shard thread died during start")),
        }
    }
    Ok(runtime)
}

/// Binds every shard's listeners: a shared port (0 is resolved by the first bind and reused),
/// or one per shard at its UDP socket's address. Returns each shard's descriptors and every
/// listener's addresses by shard.
#[allow(clippy::type_complexity)]
fn bind_listeners(
    (listeners, shards): (&[ListenerSpec], usize),
    config: &EngineConfig,
    udp: &[(String, Vec<SocketAddr>)],
    use_uring: bool,
) -> io::Result<(Vec<Vec<i32>>, Vec<Vec<SocketAddr>>)> {
    let mut fds: Vec<Vec<i32>> = vec![Vec::new(); shards];
    let mut bound = Vec::new();
    let listen = |addr: SocketAddr| {
        let fd = crate::sys::reuseport_listener(
            addr,
            config.listen_backlog,
            !use_uring,
            config.socket_send_buffer_bytes,
        )?;
        Ok::<_, io::Error>((fd, crate::sys::local_addr(fd)?))
    };
    for spec in listeners {
        let mut addr = spec.addr;
        let mut addrs = Vec::with_capacity(fds.len());
        for (index, shard_fds) in fds.iter_mut().enumerate() {
            let own = spec.at_udp_port.and_then(|u| udp.get(usize::from(u.0)));
            let (fd, local) = match own {
                Some((_, udp_addrs)) => listen(udp_addrs[index]).or_else(|_| {
                    let mut any = udp_addrs[index];
                    any.set_port(0);
                    listen(any)
                }),
                None => listen(addr),
            }
            .map_err(|e| io::Error::new(e.kind(), format!("bind {} {}: {e}", spec.name, addr)))?;
            if own.is_none() {
                addr = local;
            }
            addrs.push(local);
            shard_fds.push(fd);
        }
        bound.push(addrs);
    }
    Ok((fds, bound))
}

/// Binds every shard's UDP sockets: `port_per_shard` specs on consecutive ports, the others
/// each on the spec's port (0: any). Returns each shard's descriptors and every spec's
/// addresses by shard.
#[allow(clippy::type_complexity)]
fn bind_udp(
    config: &EngineConfig,
    shards: usize,
) -> io::Result<(Vec<Vec<i32>>, Vec<(String, Vec<SocketAddr>)>)> {
    let mut fds: Vec<Vec<i32>> = vec![Vec::new(); shards];
    let mut bound = Vec::new();
    assert!(config.udp.len() <= u16::MAX as usize);
    for spec in &config.udp {
        let mut addrs = Vec::with_capacity(shards);
        for (index, shard_fds) in fds.iter_mut().enumerate() {
            let mut addr = spec.addr;
            if spec.port_per_shard && addr.port() != 0 {
                let port = usize::from(addr.port()) + index;
                let port = u16::try_from(port).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: port {port} past 65535", spec.name),
                    )
                })?;
                addr.set_port(port);
            }
            let fd = crate::sys::udp_socket(addr, config.udp_socket_buffer_bytes).map_err(|e| {
                io::Error::new(e.kind(), format!("bind {} udp {addr}: {e}", spec.name))
            })?;
            addrs.push(crate::sys::local_addr(fd)?);
            shard_fds.push(fd);
        }
        bound.push((spec.name.clone(), addrs));
    }
    Ok((fds, bound))
}

fn choose_backend(
    choice: IoChoice,
    disable: &[String],
) -> io::Result<(Option<uring::Features>, String)> {
    match choice {
        IoChoice::Epoll => Ok((None, "chosen with --io epoll".to_string())),
        IoChoice::Uring => match uring::probe(disable) {
            Ok(features) => Ok((Some(features), "chosen with --io uring".to_string())),
            Err(why) => Err(io::Error::other(format!("--io uring: {why}"))),
        },
        IoChoice::Auto => match uring::probe(disable) {
            Ok(features) => Ok((
                Some(features),
                "io_uring available with direct-descriptor accept, multishot recv and buffer rings"
                    .to_string(),
            )),
            Err(why) => Ok((None, format!("io_uring unusable ({why}); using epoll"))),
        },
    }
}

impl<M: Send + 'static> Runtime<M> {
    /// What was started.
    pub fn info(&self) -> &Arc<RuntimeInfo> {
        &self.info
    }

    /// Sends a message from the control thread to a shard.
    pub fn send(&mut self, to: ShardId, msg: M) {
        self.control.send(to.index(), Envelope::User(msg));
    }

    /// Takes up to `budget` messages the shards sent to the control thread.
    pub fn receive(&mut self, budget: usize, mut f: impl FnMut(ShardId, M)) -> usize {
        self.control.receive(budget, |from, envelope| {
            if let Envelope::User(msg) = envelope {
                f(ShardId(from as u16), msg);
            }
        })
    }

    /// The eventfd that becomes readable when a shard sends to the control thread. Before
    /// waiting on it, call [`Runtime::park`]; after waking, [`Runtime::unpark`].
    pub fn doorbell_fd(&self) -> std::os::fd::RawFd {
        self.control.doorbell().eventfd()
    }

    /// Marks the control thread parked; false when a message is already waiting.
    pub fn park(&self) -> bool {
        self.control.park()
    }

    /// Clears the parked mark and the doorbell.
    pub fn unpark(&self) {
        self.control.unpark();
        crate::sys::eventfd_drain(self.doorbell_fd());
    }

    /// The control thread's endpoint id (shards address it with `Ctx::mesh_send_control`).
    pub fn control_id(&self) -> ShardId {
        ShardId(self.info.shards() as u16)
    }

    /// Asks every shard to drain: stop accepting, finish in-flight work within
    /// `shutdown_grace_ms`, close what is left, and exit. Workers get
    /// [`WorkerInbox::Drain`].
    pub fn drain(&mut self) {
        for shard in 0..self.info.shards() {
            self.control.send(shard, Envelope::Drain);
        }
        for index in 0..self.info.engine.worker_endpoints {
            self.control
                .send(self.info.worker_id(index).index(), Envelope::Drain);
        }
    }

    /// The worker endpoints, in order (once; later calls return none).
    pub fn take_workers(&mut self) -> Vec<WorkerEndpoint<M>> {
        let shards = self.info.shards();
        std::mem::take(&mut self.workers)
            .into_iter()
            .map(|mesh| WorkerEndpoint { mesh, shards })
            .collect()
    }

    /// Retries messages the control thread could not yet place on a full ring.
    pub fn flush(&mut self) {
        let mut wakes = Vec::new();
        self.control.flush_overflow(&mut wakes);
    }

    /// True when every shard thread has exited.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Waits for every shard thread; the first error wins.
    pub fn join(self) -> io::Result<()> {
        let mut result = Ok(());
        for thread in self.threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a shard thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    }
}

/// What a worker takes from its inboxes.
pub enum WorkerInbox<M> {
    /// A message from a shard (or the control thread, or another worker).
    Msg(ShardId, M),
    /// The runtime is shutting down: finish and exit.
    Drain,
}

/// A thread outside the engine on the mesh (a transcode worker): it sends to shards and
/// receives from them like a shard does, and sleeps on its doorbell when idle.
pub struct WorkerEndpoint<M> {
    mesh: MeshEndpoint<M>,
    shards: usize,
}

impl<M: Send> WorkerEndpoint<M> {
    /// This worker's mesh address.
    pub fn id(&self) -> ShardId {
        ShardId(self.mesh.id() as u16)
    }

    /// Number of shards (addresses `0..shards`).
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// Sends `msg` to `to`. Never blocks, never drops: a full ring keeps it in an overflow
    /// list that [`WorkerEndpoint::flush`] retries.
    pub fn send(&mut self, to: ShardId, msg: M) {
        self.mesh.send(to.index(), Envelope::User(msg));
    }

    /// Retries messages held back by full rings.
    pub fn flush(&mut self) {
        let mut wakes = Vec::new();
        self.mesh.flush_overflow(&mut wakes);
    }

    /// Messages held back by full rings.
    pub fn overflow_len(&self) -> usize {
        self.mesh.overflow_len()
    }

    /// Takes up to `budget` messages.
    pub fn receive(&mut self, budget: usize, mut f: impl FnMut(WorkerInbox<M>)) -> usize {
        self.mesh.receive(budget, |from, envelope| match envelope {
            Envelope::User(msg) => f(WorkerInbox::Msg(ShardId(from as u16), msg)),
            Envelope::Drain => f(WorkerInbox::Drain),
        })
    }

    /// For a worker that sleeps in its own poller (epoll, mio) rather than in
    /// [`WorkerEndpoint::wait`]: the descriptor that becomes readable when a message arrives.
    /// Call [`WorkerEndpoint::park`] before sleeping and [`WorkerEndpoint::woke`] after.
    pub fn doorbell_fd(&self) -> std::os::fd::RawFd {
        self.mesh.doorbell().eventfd()
    }

    /// Marks this worker asleep; false when a message is already waiting (do not sleep then).
    pub fn park(&self) -> bool {
        self.mesh.park()
    }

    /// After sleeping in an own poller: clears the parked mark and the doorbell's count.
    pub fn woke(&self) {
        crate::sys::eventfd_drain(self.mesh.doorbell().eventfd());
        self.mesh.unpark();
    }

    /// Sleeps until a message arrives or `timeout_ms` passes (returns at once when one is
    /// already waiting).
    pub fn wait(&self, timeout_ms: i32) {
        if self.mesh.park() {
            crate::sys::eventfd_wait(self.mesh.doorbell().eventfd(), timeout_ms);
        }
        self.mesh.unpark();
    }
}
