//! Durable gift-ledger storage benchmark.
//!
//! Modes (each run bounded: warmup + measure seconds, plus a hard watchdog):
//!   disk  --size BYTES [--prealloc]          write(O_APPEND)+fdatasync loop, single thread
//!   log   --producers N | --rate R           own append-only log, group commit, fdatasync
//!   redb  --producers N | --rate R           redb, one write txn per batch, Durability::Immediate
//!   fjall --producers N | --rate R           fjall, one WriteBatch per batch, PersistMode::SyncAll
//! Common: --dir PATH  --secs S (default 10)  --warmup S (default 1)
//!
//! Every fsync/fdatasync issued by the process (including inside redb/fjall and their background
//! threads) is counted by interposing the libc symbols below.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

// ---------------------------------------------------------------------------------------------
// fsync accounting: the executable's definitions take precedence over libc's for std's calls.
static FDATASYNC_CALLS: AtomicU64 = AtomicU64::new(0);
static FSYNC_CALLS: AtomicU64 = AtomicU64::new(0);
/// Optional extra latency added after every fsync/fdatasync (env LEDGER_SYNC_DELAY_US), to
/// emulate a slower device than this VM's host-cached virtio disk. 0 = off.
static SYNC_DELAY_US: AtomicU64 = AtomicU64::new(0);
/// Cumulative wall time spent inside fsync/fdatasync (incl. emulated delay), all threads.
static SYNC_NS: AtomicU64 = AtomicU64::new(0);

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn sync_delay() {
    let d = SYNC_DELAY_US.load(Relaxed);
    if d > 0 {
        thread::sleep(Duration::from_micros(d));
    }
}

#[no_mangle]
pub extern "C" fn fdatasync(fd: libc::c_int) -> libc::c_int {
    FDATASYNC_CALLS.fetch_add(1, Relaxed);
    let t = Instant::now();
    let r = unsafe { libc::syscall(libc::SYS_fdatasync, fd) as libc::c_int };
    sync_delay();
    SYNC_NS.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
    r
}

#[no_mangle]
pub extern "C" fn fsync(fd: libc::c_int) -> libc::c_int {
    FSYNC_CALLS.fetch_add(1, Relaxed);
    let t = Instant::now();
    let r = unsafe { libc::syscall(libc::SYS_fsync, fd) as libc::c_int };
    sync_delay();
    SYNC_NS.fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
    r
}

fn syncs() -> u64 {
    FDATASYNC_CALLS.load(Relaxed) + FSYNC_CALLS.load(Relaxed)
}

// ---------------------------------------------------------------------------------------------
const PAYLOAD: usize = 128;
const USERS: u32 = 1000;
const MAX_BATCH: usize = 16384;

struct Rec {
    producer: u32,
    user: u32,
    amount: u64,
    t0: Instant,   // intended send time (open loop) / send time (closed loop)
    sent: Instant, // actual send time
    payload: [u8; PAYLOAD],
}

trait Sink {
    /// Make `batch` durable. `first_id` is the id of batch[0]; ids are consecutive.
    fn commit(&mut self, first_id: u64, batch: &[Rec]);
    fn finish(&mut self) -> String {
        String::new()
    }
}

fn make_payload(producer: u32, seq: u64, user: u32, amount: u64) -> [u8; PAYLOAD] {
    let mut p = [0u8; PAYLOAD];
    p[0..4].copy_from_slice(&producer.to_le_bytes());
    p[4..12].copy_from_slice(&seq.to_le_bytes());
    p[12..16].copy_from_slice(&user.to_le_bytes());
    p[16..24].copy_from_slice(&amount.to_le_bytes());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    p[24..32].copy_from_slice(&now.to_le_bytes());
    for (i, b) in p[32..].iter_mut().enumerate() {
        *b = (i as u8) ^ (seq as u8); // pseudo message / gift metadata
    }
    p
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

// ---------------------------------------------------------------------------------------------
// Own log: [len u32 LE][crc32 u32 LE][id u64 LE][payload]; crc covers id+payload.
struct LogSink {
    file: File,
    buf: Vec<u8>,
}

impl LogSink {
    fn new(dir: &Path) -> Self {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("ledger.log"))
            .unwrap();
        LogSink { file, buf: Vec::with_capacity(1 << 20) }
    }
}

impl Sink for LogSink {
    fn commit(&mut self, first_id: u64, batch: &[Rec]) {
        self.buf.clear();
        for (i, r) in batch.iter().enumerate() {
            let id = (first_id + i as u64).to_le_bytes();
            let mut h = crc32fast::Hasher::new();
            h.update(&id);
            h.update(&r.payload);
            let len = (8 + PAYLOAD) as u32;
            self.buf.extend_from_slice(&len.to_le_bytes());
            self.buf.extend_from_slice(&h.finalize().to_le_bytes());
            self.buf.extend_from_slice(&id);
            self.buf.extend_from_slice(&r.payload);
        }
        self.file.write_all(&self.buf).unwrap(); // one write(2) (O_APPEND)
        self.file.sync_data().unwrap(); // one fdatasync(2)
    }
    fn finish(&mut self) -> String {
        format!("log size {} B", self.file.metadata().unwrap().len())
    }
}

// ---------------------------------------------------------------------------------------------
use redb::{ReadableTable, TableDefinition};
const GIFTS: TableDefinition<u64, &[u8]> = TableDefinition::new("gifts");
const BALANCES: TableDefinition<u32, u64> = TableDefinition::new("balances");

struct RedbSink {
    db: redb::Database,
    path: PathBuf,
}

impl RedbSink {
    fn new(dir: &Path) -> Self {
        let path = dir.join("ledger.redb");
        let db = redb::Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut b = tx.open_table(BALANCES).unwrap();
            for u in 0..USERS {
                b.insert(u, 0u64).unwrap();
            }
            tx.open_table(GIFTS).unwrap();
        }
        tx.commit().unwrap();
        RedbSink { db, path }
    }
}

impl Sink for RedbSink {
    fn commit(&mut self, first_id: u64, batch: &[Rec]) {
        let mut tx = self.db.begin_write().unwrap();
        tx.set_durability(redb::Durability::Immediate).unwrap();
        {
            let mut gifts = tx.open_table(GIFTS).unwrap();
            let mut bal = tx.open_table(BALANCES).unwrap();
            for (i, r) in batch.iter().enumerate() {
                gifts.insert(first_id + i as u64, r.payload.as_slice()).unwrap();
                let old = bal.get(r.user).unwrap().map(|g| g.value()).unwrap_or(0);
                bal.insert(r.user, old + r.amount).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn finish(&mut self) -> String {
        format!("redb file size {} B", std::fs::metadata(&self.path).unwrap().len())
    }
}

// ---------------------------------------------------------------------------------------------
struct FjallSink {
    db: fjall::Database,
    gifts: fjall::Keyspace,
    bal: fjall::Keyspace,
    dir: PathBuf,
    touched: std::collections::HashMap<u32, u64>,
}

impl FjallSink {
    fn new(dir: &Path) -> Self {
        let fdir = dir.join("fjall");
        let db = fjall::Database::builder(&fdir).open().unwrap();
        let gifts = db.keyspace("gifts", fjall::KeyspaceCreateOptions::default).unwrap();
        let bal = db.keyspace("balances", fjall::KeyspaceCreateOptions::default).unwrap();
        let mut b = db.batch().durability(Some(fjall::PersistMode::SyncAll));
        for u in 0..USERS {
            b.insert(&bal, u.to_be_bytes(), 0u64.to_le_bytes());
        }
        b.commit().unwrap();
        FjallSink { db, gifts, bal, dir: fdir, touched: Default::default() }
    }
}

impl Sink for FjallSink {
    fn commit(&mut self, first_id: u64, batch: &[Rec]) {
        self.touched.clear();
        let mut b = self.db.batch().durability(Some(fjall::PersistMode::SyncAll));
        for (i, r) in batch.iter().enumerate() {
            b.insert(&self.gifts, (first_id + i as u64).to_be_bytes(), r.payload.as_slice());
            let cur = match self.touched.get(&r.user) {
                Some(v) => *v,
                None => self
                    .bal
                    .get(r.user.to_be_bytes())
                    .unwrap()
                    .map(|v| u64::from_le_bytes(v.as_ref().try_into().unwrap()))
                    .unwrap_or(0),
            };
            self.touched.insert(r.user, cur + r.amount);
        }
        for (u, v) in &self.touched {
            b.insert(&self.bal, u.to_be_bytes(), v.to_le_bytes());
        }
        b.commit().unwrap();
    }
    fn finish(&mut self) -> String {
        format!("fjall dir size {} B", dir_size(&self.dir))
    }
}

fn dir_size(p: &Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            n += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
        }
    }
    n
}

// ---------------------------------------------------------------------------------------------
struct Counters {
    records: AtomicU64,
    batches: AtomicU64,
    commit_ns: AtomicU64,
    writer_cpu_ns: AtomicU64,
}

fn writer_loop(
    mut sink: Box<dyn Sink + Send>,
    rx: Receiver<Rec>,
    acks: Vec<Sender<()>>,
    counters: Arc<Counters>,
    open_loop_lat: Option<Arc<std::sync::Mutex<Vec<(Instant, u32, u32)>>>>,
) -> String {
    let mut batch: Vec<Rec> = Vec::with_capacity(MAX_BATCH);
    let mut next_id = 1u64;
    let mut lat_local: Vec<(Instant, u32, u32)> = Vec::new();
    let cpu0 = thread_cpu_ns();
    while let Ok(first) = rx.recv() {
        batch.clear();
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let tc = Instant::now();
        sink.commit(next_id, &batch);
        counters.commit_ns.fetch_add(tc.elapsed().as_nanos() as u64, Relaxed);
        counters.writer_cpu_ns.store(thread_cpu_ns() - cpu0, Relaxed);
        next_id += batch.len() as u64;
        counters.records.fetch_add(batch.len() as u64, Relaxed);
        counters.batches.fetch_add(1, Relaxed);
        if open_loop_lat.is_some() {
            let now = Instant::now();
            for r in &batch {
                lat_local.push((now, (now - r.t0).as_micros() as u32, (now - r.sent).as_micros() as u32));
            }
        } else {
            for r in &batch {
                let _ = acks[r.producer as usize].send(());
            }
        }
    }
    if let Some(l) = open_loop_lat {
        *l.lock().unwrap() = lat_local;
    }
    sink.finish()
}

struct Opts {
    mode: String,
    dir: PathBuf,
    secs: f64,
    warmup: f64,
    producers: usize,
    rate: Option<f64>,
    size: usize,
    prealloc: bool,
}

fn parse() -> Opts {
    let a: Vec<String> = std::env::args().collect();
    let mut o = Opts {
        mode: a.get(1).cloned().unwrap_or_default(),
        dir: PathBuf::from("data"),
        secs: 10.0,
        warmup: 1.0,
        producers: 1,
        rate: None,
        size: 128,
        prealloc: false,
    };
    let mut i = 2;
    while i < a.len() {
        let v = a.get(i + 1).cloned().unwrap_or_default();
        match a[i].as_str() {
            "--dir" => o.dir = PathBuf::from(v),
            "--secs" => o.secs = v.parse().unwrap(),
            "--warmup" => o.warmup = v.parse().unwrap(),
            "--producers" => o.producers = v.parse().unwrap(),
            "--rate" => o.rate = Some(v.parse().unwrap()),
            "--size" => o.size = v.parse().unwrap(),
            "--prealloc" => {
                o.prealloc = true;
                i += 1;
                continue;
            }
            x => panic!("unknown arg {x}"),
        }
        i += 2;
    }
    o
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx] as f64 / 1000.0 // ms
}

fn main() {
    let o = parse();
    let delay: u64 = std::env::var("LEDGER_SYNC_DELAY_US").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    // Hard stop no matter what.
    let hard = o.warmup + o.secs + 20.0;
    assert!(o.warmup + o.secs <= 50.0, "run must stay under 60 s");
    thread::spawn(move || {
        thread::sleep(Duration::from_secs_f64(hard));
        eprintln!("watchdog: hard stop");
        std::process::exit(2);
    });
    // Set after setup-free start; applies to every sync from here on (incl. DB creation).
    SYNC_DELAY_US.store(delay, Relaxed);
    if o.dir.exists() {
        std::fs::remove_dir_all(&o.dir).unwrap();
    }
    std::fs::create_dir_all(&o.dir).unwrap();
    match o.mode.as_str() {
        "disk" => disk(&o),
        "log" | "redb" | "fjall" => pipeline(&o),
        m => panic!("unknown mode {m:?}"),
    }
}

fn disk(o: &Opts) {
    let path = o.dir.join("disk.dat");
    let buf = vec![0xabu8; o.size];
    let file;
    let mut off = 0u64;
    if o.prealloc {
        // Pre-written (not just fallocated) file: overwrite in place, no size/extent changes.
        let mut f = OpenOptions::new().create(true).write(true).open(&path).unwrap();
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..256 {
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
        file = f;
    } else {
        file = OpenOptions::new()
            .create(true)
            .append(true)
            .custom_flags(0)
            .open(&path)
            .unwrap();
    }
    let total = o.warmup + o.secs;
    let start = Instant::now();
    let mstart = start + Duration::from_secs_f64(o.warmup);
    let end = start + Duration::from_secs_f64(total);
    let mut lat = Vec::with_capacity(1 << 20);
    let mut lat_ws = Vec::with_capacity(1 << 20);
    let mut n = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        if o.prealloc {
            if off + o.size as u64 > 256 << 20 {
                off = 0;
            }
            file.write_all_at(&buf, off).unwrap();
            off += o.size as u64;
        } else {
            (&file).write_all(&buf).unwrap();
        }
        let t1 = Instant::now();
        file.sync_data().unwrap();
        let t2 = Instant::now();
        if t0 >= mstart {
            n += 1;
            lat.push((t2 - t1).as_micros() as u32);
            lat_ws.push((t2 - t0).as_micros() as u32);
        }
    }
    lat.sort_unstable();
    lat_ws.sort_unstable();
    let label = format!(
        "disk {} B {}",
        o.size,
        if o.prealloc { "overwrite pre-written file (pwrite)" } else { "O_APPEND write" }
    );
    println!(
        "| {label} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | total syncs counted {} |",
        n as f64 / o.secs,
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        pct(&lat_ws, 0.99),
        syncs()
    );
}

fn pipeline(o: &Opts) {
    let (tx, rx) = unbounded::<Rec>();
    let open_loop = o.rate.is_some();
    let nprod = if open_loop { 16 } else { o.producers };
    let mut ack_tx = Vec::new();
    let mut ack_rx = Vec::new();
    for _ in 0..nprod {
        let (a, b) = bounded::<()>(1);
        ack_tx.push(a);
        ack_rx.push(b);
    }
    let counters = Arc::new(Counters {
        records: AtomicU64::new(0),
        batches: AtomicU64::new(0),
        commit_ns: AtomicU64::new(0),
        writer_cpu_ns: AtomicU64::new(0),
    });
    let ol_lat = if open_loop { Some(Arc::new(std::sync::Mutex::new(Vec::new()))) } else { None };

    let sink: Box<dyn Sink + Send> = match o.mode.as_str() {
        "log" => Box::new(LogSink::new(&o.dir)),
        "redb" => Box::new(RedbSink::new(&o.dir)),
        "fjall" => Box::new(FjallSink::new(&o.dir)),
        _ => unreachable!(),
    };
    let syncs_setup = syncs();

    let start = Instant::now() + Duration::from_millis(20);
    let mstart = start + Duration::from_secs_f64(o.warmup);
    let end = mstart + Duration::from_secs_f64(o.secs);
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let c = counters.clone();
        let l = ol_lat.clone();
        thread::Builder::new()
            .name("writer".into())
            .spawn(move || writer_loop(sink, rx, ack_tx, c, l))
            .unwrap()
    };

    let mut prods = Vec::new();
    for p in 0..nprod {
        let tx = tx.clone();
        let ack = ack_rx[p].clone();
        let stop = stop.clone();
        let rate = o.rate;
        prods.push(thread::spawn(move || {
            let mut seed = 0x9E3779B97F4A7C15u64 ^ ((p as u64 + 1) * 0x1234567);
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 18);
            while Instant::now() < start {
                thread::sleep(Duration::from_millis(1));
            }
            let mut seq = 0u64;
            if let Some(rate) = rate {
                // Open loop: fixed schedule, t0 = intended send time (no coordinated omission).
                let interval = Duration::from_secs_f64(nprod as f64 / rate);
                let phase = interval.mul_f64(p as f64 / nprod as f64);
                loop {
                    let due = start + phase + interval.mul_f64(seq as f64);
                    let now = Instant::now();
                    if due >= end || stop.load(Relaxed) {
                        break;
                    }
                    if due > now {
                        thread::sleep(due - now);
                    }
                    let user = (xorshift(&mut seed) % USERS as u64) as u32;
                    let amount = 1 + xorshift(&mut seed) % 100;
                    let payload = make_payload(p as u32, seq, user, amount);
                    tx.send(Rec { producer: p as u32, user, amount, t0: due, sent: Instant::now(), payload }).unwrap();
                    seq += 1;
                }
            } else {
                // Closed loop: send, wait for the durable ack, repeat.
                while !stop.load(Relaxed) {
                    let user = (xorshift(&mut seed) % USERS as u64) as u32;
                    let amount = 1 + xorshift(&mut seed) % 100;
                    let payload = make_payload(p as u32, seq, user, amount);
                    let t0 = Instant::now();
                    tx.send(Rec { producer: p as u32, user, amount, t0, sent: t0, payload }).unwrap();
                    ack.recv().unwrap();
                    let t1 = Instant::now();
                    if t1 >= mstart && t1 < end {
                        lat.push((t1 - t0).as_micros() as u32);
                    }
                    seq += 1;
                }
            }
            lat
        }));
    }
    drop(tx);

    // Sample counters at window boundaries.
    let sleep_until = |t: Instant| {
        let now = Instant::now();
        if t > now {
            thread::sleep(t - now);
        }
    };
    sleep_until(mstart);
    let snap = || {
        (
            counters.records.load(Relaxed),
            counters.batches.load(Relaxed),
            syncs(),
            counters.commit_ns.load(Relaxed),
            counters.writer_cpu_ns.load(Relaxed),
            SYNC_NS.load(Relaxed),
        )
    };
    let (r0, b0, s0, c0, u0, y0) = snap();
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    sleep_until(end);
    let (r1, b1, s1, c1, u1, y1) = snap();
    stop.store(true, Relaxed);
    let mut lat: Vec<u32> = Vec::new();
    for h in prods {
        lat.extend(h.join().unwrap());
    }
    let drain_t = Instant::now();
    let info = writer.join().unwrap();
    let drain = drain_t.elapsed();
    let mut lat_sent: Vec<u32> = Vec::new();
    if let Some(l) = ol_lat {
        let l = l.lock().unwrap();
        let w = l.iter().filter(|(t, _, _)| *t >= mstart && *t < end);
        lat = w.clone().map(|x| x.1).collect();
        lat_sent = w.map(|x| x.2).collect();
    }
    lat.sort_unstable();
    lat_sent.sort_unstable();
    let diag = format!(
        "writer busy {:.0}%, of which in fsync {:.0}%; writer CPU {:.1} us/rec, {:.0} us/commit; mean commit {:.2} ms{}",
        (c1 - c0) as f64 / 1e7 / o.secs,
        (y1 - y0) as f64 * 100.0 / (c1 - c0).max(1) as f64,
        (u1 - u0) as f64 / 1e3 / (r1 - r0).max(1) as f64,
        (u1 - u0) as f64 / 1e3 / (b1 - b0).max(1) as f64,
        (c1 - c0) as f64 / 1e6 / (b1 - b0).max(1) as f64,
        if lat_sent.is_empty() {
            String::new()
        } else {
            format!("; ack p50/p99 from actual send {:.2}/{:.2} ms", pct(&lat_sent, 0.5), pct(&lat_sent, 0.99))
        }
    );
    let recs = (r1 - r0) as f64;
    let bats = (b1 - b0) as f64;
    let d = SYNC_DELAY_US.load(Relaxed);
    let dl = if d > 0 { format!(" [+{} us/sync]", d) } else { String::new() };
    let label = match o.rate {
        Some(r) => format!("{} open-loop {:.0}/s offered, 16 producers{dl}", o.mode, r),
        None => format!("{} closed-loop N={}{dl}", o.mode, o.producers),
    };
    println!(
        "| {label} | {:.0} | {:.0} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {} ; {} ; setup syncs {}; total syncs {}; drain {:.1}s; loadavg@start {} |",
        recs / o.secs,
        (s1 - s0) as f64 / o.secs,
        bats / o.secs,
        recs / bats.max(1.0),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        info,
        diag,
        syncs_setup,
        syncs(),
        drain.as_secs_f64(),
        load0.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
}
