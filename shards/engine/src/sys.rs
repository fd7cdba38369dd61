//! Thin, checked wrappers over the few system calls the engine makes outside io_uring:
//! eventfds, CPU pinning, signal masks, listeners, limits and anonymous memory.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{IntoRawFd, RawFd};

/// A non-blocking, close-on-exec eventfd starting at zero.
pub fn eventfd() -> io::Result<RawFd> {
    // SAFETY: eventfd takes no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Adds one to an eventfd, waking whoever waits on it.
pub fn eventfd_signal(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64. EAGAIN (counter saturated) still leaves the fd
    // readable, which is all a doorbell needs, so the result is ignored.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

/// Reads and resets an eventfd's counter; 0 when it was not signalled.
pub fn eventfd_drain(fd: RawFd) -> u64 {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; the fd is non-blocking.
    let n = unsafe { libc::read(fd, (&mut value as *mut u64).cast(), 8) };
    if n == 8 {
        value
    } else {
        0
    }
}

/// Waits up to `timeout_ms` for an eventfd to become readable, then drains it.
pub fn eventfd_wait(fd: RawFd, timeout_ms: i32) -> u64 {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    eventfd_drain(fd)
}

/// Closes a descriptor the caller owns; errors are not actionable here.
pub fn close_fd(fd: RawFd) {
    if fd >= 0 {
        // SAFETY: the caller owns `fd` and never uses it again.
        unsafe { libc::close(fd) };
    }
}

/// Pins the calling thread to one CPU.
pub fn pin_to_core(core: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET stays in bounds for core < CPU_SETSIZE, checked.
    unsafe {
        if core >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "core out of range",
            ));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The CPUs this process may run on, in order.
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&cpu| libc::CPU_ISSET(cpu, &set))
            .collect()
    }
}

fn termination_sigset() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data initialised by sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        set
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP (a reload, not a stop) in the calling thread and every
/// thread it spawns afterwards, so they are taken only by [`wait_termination_signal`] or the
/// signalfd. Call first thing in `main`.
pub fn block_termination_signals() {
    let set = termination_sigset();
    // SAFETY: a valid sigset; the old mask is not needed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits up to `timeout_ms` for SIGTERM, SIGINT or SIGHUP; returns the signal number taken.
pub fn wait_termination_signal(timeout_ms: u64) -> Option<i32> {
    let set = termination_sigset();
    let timeout = libc::timespec {
        tv_sec: (timeout_ms / 1000) as libc::time_t,
        tv_nsec: ((timeout_ms % 1000) * 1_000_000) as libc::c_long,
    };
    // SAFETY: valid sigset and timespec; siginfo is not requested.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &timeout) };
    (sig > 0).then_some(sig)
}

/// A signalfd delivering SIGTERM, SIGINT and SIGHUP (which must be blocked, see
/// [`block_termination_signals`]), non-blocking and close-on-exec.
pub fn termination_signalfd() -> io::Result<RawFd> {
    let set = termination_sigset();
    // SAFETY: a valid sigset; -1 asks for a new descriptor.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Reads one pending signal from a signalfd.
pub fn read_signalfd(fd: RawFd) -> Option<i32> {
    // SAFETY: signalfd_siginfo is plain data; the read fills at most its size.
    unsafe {
        let mut info: libc::signalfd_siginfo = std::mem::zeroed();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        let n = libc::read(fd, (&mut info as *mut libc::signalfd_siginfo).cast(), size);
        (n == size as isize).then_some(info.ssi_signo as i32)
    }
}

/// Waits up to `timeout_ms` until one of `fds` is readable; returns which are.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> Vec<bool> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // SAFETY: `pfds` is a valid array of `len` pollfds.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if n <= 0 {
        return vec![false; fds.len()];
    }
    pfds.iter().map(|p| p.revents & libc::POLLIN != 0).collect()
}

/// The soft and hard RLIMIT_NOFILE.
pub fn nofile_limit() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit out-pointer.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (lim.rlim_cur, lim.rlim_max)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    let (_, hard) = nofile_limit();
    let lim = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: a valid rlimit.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    nofile_limit().0
}

/// Creates a listening TCP socket with SO_REUSEPORT (one per shard per port), TCP_NODELAY
/// (inherited by accepted sockets on Linux, which matters because direct descriptors cannot
/// take setsockopt calls) and the given backlog.
pub fn reuseport_listener(
    addr: SocketAddr,
    backlog: i32,
    nonblocking: bool,
    send_buffer_bytes: u32,
) -> io::Result<RawFd> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.set_cloexec(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_nonblocking(nonblocking)?;
    if send_buffer_bytes > 0 {
        socket.set_send_buffer_size(send_buffer_bytes as usize)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into_raw_fd())
}

/// The local address a socket is bound to.
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data large enough for any address.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let addr = socket2::SockAddr::new(storage, len);
        addr.as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an inet socket"))
    }
}

/// The IP address in a socket address the kernel filled in (`len` is the length it reported,
/// as `accept4` and IORING_OP_ACCEPT return it). `None` for a family other than IPv4 or IPv6
/// or an address shorter than its family's. IPv4-mapped IPv6 addresses are returned as they
/// are; `Core::open` turns them into IPv4.
pub fn sockaddr_ip(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<IpAddr> {
    let len = len as usize;
    let base: *const libc::sockaddr_storage = storage;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the kernel wrote a sockaddr_in, and `len` that it wrote
            // all of it; sockaddr_storage is large and aligned enough for every address type.
            let addr = unsafe { &*base.cast::<libc::sockaddr_in>() };
            // `s_addr` holds the octets in network order: its bytes in memory are the address.
            Some(IpAddr::V4(Ipv4Addr::from(
                addr.sin_addr.s_addr.to_ne_bytes(),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for a sockaddr_in6.
            let addr = unsafe { &*base.cast::<libc::sockaddr_in6>() };
            Some(IpAddr::V6(Ipv6Addr::from(addr.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// A socket address as the kernel takes it, and its length.
pub fn sockaddr_of(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    let from = socket2::SockAddr::from(addr);
    // SAFETY: sockaddr_storage is plain data for which all zeroes is valid, and large enough
    // for any address; `from` holds `len` valid bytes of a sockaddr, copied into it.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        std::ptr::copy_nonoverlapping(
            from.as_ptr().cast::<u8>(),
            (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
            from.len() as usize,
        );
        (storage, from.len())
    }
}

/// The IPv4 or IPv6 socket address the kernel wrote into `storage` (`len` bytes of it).
pub fn sockaddr_to(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    if len as usize > std::mem::size_of::<libc::sockaddr_storage>() {
        return None;
    }
    // SAFETY: `storage` is a whole sockaddr_storage of which the kernel wrote `len` bytes
    // (checked to fit); SockAddr only reads the family's length of it.
    let addr = unsafe { socket2::SockAddr::new(*storage, len) };
    addr.as_socket()
}

/// Binds a non-blocking, close-on-exec UDP socket at `addr`, asking for receive and send
/// buffers of `buffer_bytes` (the kernel may give less).
pub fn udp_socket(addr: SocketAddr, buffer_bytes: usize) -> io::Result<RawFd> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false).ok();
    }
    socket.set_recv_buffer_size(buffer_bytes).ok();
    socket.set_send_buffer_size(buffer_bytes).ok();
    socket.bind(&addr.into())?;
    Ok(socket.into_raw_fd())
}

/// Page-aligned anonymous memory, released on drop. Used for provided buffer rings.
pub struct AnonMemory {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

impl AnonMemory {
    /// Maps `len` bytes (rounded up to pages), zeroed.
    pub fn new(len: usize) -> io::Result<Self> {
        let page = page_size();
        let len = len.div_ceil(page) * page;
        // SAFETY: an anonymous private mapping with no address hint; the result is checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(AnonMemory {
            ptr: std::ptr::NonNull::new(ptr.cast()).expect("mmap returned null"),
            len,
        })
    }

    /// Start of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never true: mappings are at least one page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for AnonMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no reference into it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The system page size.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// Resident set size of this process in bytes, from /proc/self/statm.
pub fn resident_memory_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * page_size() as u64
}

/// CPU time the calling thread has used (user and system).
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer to a timespec; CLOCK_THREAD_CPUTIME_ID needs nothing else.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_of(addr: &str) -> Option<IpAddr> {
        let addr = socket2::SockAddr::from(addr.parse::<SocketAddr>().unwrap());
        let len = addr.len();
        sockaddr_ip(&addr.as_storage(), len)
    }

    #[test]
    fn socket_addresses_give_their_ip() {
        assert_eq!(ip_of("127.0.0.2:80"), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(ip_of("[::1]:80"), Some("::1".parse().unwrap()));
        // Mapped addresses are kept here; the connection table canonicalises them.
        assert_eq!(
            ip_of("[::ffff:10.0.0.1]:80"),
            Some("::ffff:10.0.0.1".parse().unwrap())
        );
    }

    #[test]
    fn short_or_foreign_addresses_give_none() {
        let v4 = socket2::SockAddr::from("10.0.0.1:80".parse::<SocketAddr>().unwrap());
        let len = v4.len();
        assert_eq!(sockaddr_ip(&v4.as_storage(), len - 1), None);
        let unix = socket2::SockAddr::unix("/tmp/x").unwrap();
        let len = unix.len();
        assert_eq!(sockaddr_ip(&unix.as_storage(), len), None);
    }
}
