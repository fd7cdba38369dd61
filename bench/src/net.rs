//! Sockets and runtimes shared by the load commands: connecting from a chosen source
//! address, the open-file budget, and the monoio runtime each load thread runs.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use monoio::io::Canceller;
use monoio::net::TcpStream;
use monoio::time::{Sleep, TimeDriver};
use monoio::{BufResult, IoUringDriver, Runtime, RuntimeBuilder};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Descriptors a load process keeps for itself beyond its connections: stdio, the io_uring
/// ring, the eventfd, files written for reports, and descriptors briefly duplicated while a
/// source-bound connect completes (see [`CONNECTS_IN_FLIGHT_MAX`]).
pub const FD_MARGIN: u64 = 64 + CONNECTS_IN_FLIGHT_MAX as u64;

/// Connection attempts a load thread keeps outstanding at once. Each source-bound attempt
/// holds one extra descriptor until the handshake finishes.
pub const CONNECTS_IN_FLIGHT_MAX: usize = 256;

/// The soft limit on open files of this process, read from `/proc/self/limits` (no unsafe
/// code needed). `None` if it is unlimited or cannot be read.
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&limits)
}

fn parse_open_files_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time (user and system, all threads) this process has used so far, from
/// `/proc/self/stat` (in the kernel's fixed 100 Hz user-visible ticks). `None` if unreadable.
pub fn process_cpu_time() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| std::time::Duration::from_millis(ticks * 10))
}

/// utime + stime: fields 14 and 15, counted after the parenthesised command name (which may
/// itself contain spaces).
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// Refuses a connection count that cannot fit under `RLIMIT_NOFILE`, with a message saying
/// what to do instead.
pub fn check_open_files(connections: u64) -> Result<(), String> {
    let Some(limit) = open_files_limit() else {
        return Ok(());
    };
    if connections + FD_MARGIN <= limit {
        return Ok(());
    }
    Err(format!(
        "{connections} connections need {} open files in this process (a margin of {FD_MARGIN} \
         included), but RLIMIT_NOFILE is {limit}. Raise the soft limit (`ulimit -n \"$(ulimit -Hn)\"`) \
         or split the connections over several processes.",
        connections + FD_MARGIN
    ))
}

/// Builds the runtime of one load thread: io_uring with a timer. `ring_entries` bounds the
/// submissions batched per `io_uring_enter`, not the operations in flight.
///
/// The ring is set up with `COOP_TASKRUN`: completions of socket operations are then run when
/// the thread next enters the kernel instead of interrupting it with an inter-processor
/// interrupt. Without it a load thread spends a third of its time on those interrupts and
/// on the lock of the task-work list, and cannot keep up with one server core. Kernels
/// older than 5.19 lack the flag, so the plain ring is the fallback.
pub fn build_runtime(ring_entries: u32) -> io::Result<Runtime<TimeDriver<IoUringDriver>>> {
    let mut ring = io_uring::IoUring::builder();
    ring.setup_coop_taskrun().setup_taskrun_flag();
    RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(ring_entries)
        .uring_builder(ring)
        .enable_timer()
        .build()
        .or_else(|_| {
            RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(ring_entries)
                .enable_timer()
                .build()
        })
        .map_err(|error| io::Error::new(error.kind(), format!("io_uring runtime: {error}")))
}

/// Opens a TCP connection to `target`, bound to `source` when given, with `TCP_NODELAY`, and
/// gives up at `deadline`.
pub async fn connect(
    target: SocketAddr,
    source: Option<Ipv4Addr>,
    deadline: Instant,
) -> io::Result<TcpStream> {
    let deadline = monoio::time::Instant::from_std(deadline);
    let attempt = async {
        match source {
            None => TcpStream::connect_addr(target).await,
            Some(source) => connect_from(target, source).await,
        }
    };
    let stream = monoio::time::timeout_at(deadline, attempt)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// monoio connects only from an unbound socket, so a source-bound connect is done by hand:
/// a non-blocking `connect`, a wait for writability in the ring, then `SO_ERROR`. The
/// socket is switched back to blocking mode afterwards because monoio's io_uring driver
/// expects blocking sockets (it lets the ring wait instead). Both need the descriptor after
/// monoio owns it, hence the duplicate, dropped before returning.
async fn connect_from(target: SocketAddr, source: Ipv4Addr) -> io::Result<TcpStream> {
    if !target.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "IPv4 source addresses need an IPv4 target",
        ));
    }
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(source), 0)))?;
    socket.set_nonblocking(true)?;
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(error) if error.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(error) => return Err(error),
    }
    let std_stream = std::net::TcpStream::from(socket);
    let control = std_stream.try_clone()?;
    let stream = TcpStream::from_std(std_stream)?;
    stream.writable(false).await?;
    if let Some(error) = control.take_error()? {
        return Err(error);
    }
    control.set_nonblocking(false)?;
    Ok(stream)
}

/// Runs a cancelable operation until it completes or `sleep` fires. In the second case the
/// operation is cancelled and still awaited: io_uring may have completed it meanwhile, and
/// the buffer comes back either way.
pub(crate) async fn op_or_deadline<T, F>(
    op: F,
    canceller: &mut Canceller,
    mut sleep: Pin<&mut Sleep>,
) -> BufResult<usize, T>
where
    F: Future<Output = BufResult<usize, T>>,
{
    let mut op = std::pin::pin!(op);
    let finished = std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = op.as_mut().poll(cx) {
            return Poll::Ready(Some(done));
        }
        sleep.as_mut().poll(cx).map(|()| None)
    })
    .await;
    match finished {
        Some(done) => done,
        None => {
            *canceller = std::mem::take(canceller).cancel();
            op.await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks() {
        let stat = "4242 (shardcast bench) R 1 2 3 4 5 6 7 8 9 10 250 31 0 0 20 0 3 0 99";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             95574                95574                processes \n\
                      Max open files            20000                40000                files     \n";
        assert_eq!(parse_open_files_limit(limits), Some(20000));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), None);
        assert_eq!(parse_open_files_limit(""), None);
    }
}
