//! WebSocket clients of the soak: viewers that come and go (some chatting, some resuming),
//! flood chatters, and stallers that stop reading until the server closes them.

use std::rc::Rc;
use std::time::{Duration, Instant};

use shardcast_wire::{decode_server, ChatMode, ServerMsg, VerifyLimits};

use super::io::{Conn, Incoming, WsConn, WsEnd};
use super::{sleep_until, LoadGauges, Rng, Shared, ROOM_EPOCH};

/// The room of the flood chatters and the stallers.
pub const FLOOD_ROOM: &str = "soak-flood";

/// Longest wait for connect, upgrade and `Welcome`.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait for the server's answer to a close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a staller watches its socket for the server's close before it reads what is
/// left (the server may have closed behind bytes the staller never read). Longer than the
/// soak's `ws.idle_timeout_ms` (30 s), the latest a non-reading viewer is closed.
const STALL_PATIENCE: Duration = Duration::from_secs(45);

/// Longest drain of a staller's unread bytes, looking for the end of the connection.
const STALL_DRAIN: Duration = Duration::from_secs(5);

/// A staller's receive buffer: small, so the server's queue fills soon.
const STALL_RCVBUF_BYTES: usize = 4096;

/// Chat color (white).
const CHAT_COLOR: u32 = 0xffffff;

/// How a visit ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// A close frame, then wait for the server's.
    Clean,
    /// Drop the TCP connection.
    Abrupt,
    /// Drop it and come back with `Hello.last_seq`.
    Resume,
}

/// One stay in a room.
struct Visit {
    room: String,
    token: bool,
    last_seq: u64,
    life: Duration,
    chat_every: Option<Duration>,
    ending: Ending,
    seed: u64,
}

/// A viewer slot: one viewer after another until the churn ends.
pub async fn viewer_slot(shared: Rc<Shared>, slot: u32) {
    let config = &shared.config;
    let mut rng = Rng::new(config.seed ^ (u64::from(slot) << 20));
    shared
        .nap(rng.between(Duration::ZERO, Duration::from_secs(10)))
        .await;
    let mut visits = 0u64;
    while shared.churning() {
        let token = rng.chance(u64::from(config.chatter_percent));
        let ending = match rng.below(100) {
            0..=54 => Ending::Clean,
            55..=74 => Ending::Abrupt,
            _ => Ending::Resume,
        };
        let visit = Visit {
            room: pick_room(&shared, &mut rng),
            token,
            last_seq: 0,
            life: rng.between(Duration::from_secs(5), Duration::from_secs(40)),
            chat_every: token.then(|| rng.between(Duration::from_secs(1), Duration::from_secs(4))),
            ending,
            seed: (u64::from(slot) << 32) | visits,
        };
        visits += 1;
        let room = visit.room.clone();
        let Some(last_seq) = visit_room(&shared, visit).await else {
            pause(&shared, &mut rng).await;
            continue;
        };
        // Come back after a while (sometimes longer than the history window).
        shared
            .nap(rng.between(Duration::ZERO, Duration::from_secs(14)))
            .await;
        if !shared.churning() {
            break;
        }
        let again = Visit {
            room,
            token: false,
            last_seq,
            life: rng.between(Duration::from_secs(3), Duration::from_secs(15)),
            chat_every: None,
            ending: Ending::Clean,
            seed: (u64::from(slot) << 32) | visits,
        };
        visits += 1;
        visit_room(&shared, again).await;
        pause(&shared, &mut rng).await;
    }
}

async fn pause(shared: &Shared, rng: &mut Rng) {
    shared
        .nap(rng.between(Duration::ZERO, Duration::from_secs(2)))
        .await;
}

/// A flood chatter slot: fast chats in [`FLOOD_ROOM`], a minute per connection.
pub async fn flood_slot(shared: Rc<Shared>, slot: u32) {
    let rate = shared.config.flood_chats_per_sec.max(1);
    let mut visits = 0u64;
    while shared.churning() {
        let visit = Visit {
            room: FLOOD_ROOM.to_owned(),
            token: true,
            last_seq: 0,
            life: Duration::from_secs(60),
            chat_every: Some(Duration::from_secs(1) / rate),
            ending: Ending::Clean,
            seed: (0xF100D << 32) | (u64::from(slot) << 24) | visits,
        };
        visits += 1;
        visit_room(&shared, visit).await;
        shared.nap(Duration::from_millis(500)).await;
    }
}

/// A room for a new viewer: a churn room of the current epoch, a live stream's room, or
/// the flood room.
fn pick_room(shared: &Shared, rng: &mut Rng) -> String {
    let choice = rng.below(100);
    if choice < 25 {
        if let Some(stream) = shared.pick_live(rng) {
            return stream;
        }
    }
    if choice >= 98 {
        return FLOOD_ROOM.to_owned();
    }
    let epoch = shared.start.elapsed().as_secs() / ROOM_EPOCH.as_secs();
    let room = rng.below(u64::from(shared.config.rooms.max(1)));
    format!("soak-e{epoch}-r{room}")
}

/// What a joined viewer keeps track of.
struct Viewer {
    joined: bool,
    last_seq: u64,
    heartbeat_every: Option<Duration>,
    next_heartbeat: Instant,
    next_chat: Instant,
    chats: u64,
    closed_by_server: bool,
}

/// Joins, stays for the visit's life, and leaves as the visit says. Returns the last seq
/// seen when the visit ends with [`Ending::Resume`] after a successful join.
async fn visit_room(shared: &Shared, visit: Visit) -> Option<u64> {
    let mut ws = join(shared, &visit).await?;
    let _open = LoadGauges::add(&shared.gauges.viewers);
    let end = (Instant::now() + visit.life).min(shared.churn_end);
    let mut viewer = Viewer {
        joined: false,
        last_seq: visit.last_seq,
        heartbeat_every: None,
        next_heartbeat: end,
        next_chat: Instant::now() + visit.chat_every.unwrap_or(visit.life),
        chats: 0,
        closed_by_server: false,
    };
    let join_deadline = Instant::now() + JOIN_TIMEOUT;
    let mut incoming = Vec::new();
    loop {
        let now = Instant::now();
        if now >= end || (!viewer.joined && now >= join_deadline) {
            break;
        }
        let wake = end.min(viewer.next_heartbeat).min(viewer.next_chat);
        let wake = if viewer.joined {
            wake
        } else {
            wake.min(join_deadline)
        };
        incoming.clear();
        if let Err(why) = ws.recv(wake, &mut incoming).await {
            shared.error(match why {
                WsEnd::Closed => "viewer: TCP closed by the server without a close frame",
                WsEnd::Protocol => "viewer: bad frames",
            });
            return None;
        }
        for message in &incoming {
            handle_incoming(shared, &visit, &mut viewer, message);
        }
        if viewer.closed_by_server {
            return None;
        }
        queue_due(shared, &visit, &mut viewer, &mut ws);
        if ws.flush(end + CLOSE_TIMEOUT).await.is_err() {
            shared.error("viewer: write failed");
            return None;
        }
    }
    if !viewer.joined {
        // The visit may have ended (the churn did) before the Welcome was due.
        if Instant::now() >= join_deadline {
            shared.error("viewer: no Welcome in 10 s");
        }
        return None;
    }
    leave(shared, &visit, ws, viewer.last_seq).await
}

/// Connects, upgrades and sends `Hello`.
async fn join(shared: &Shared, visit: &Visit) -> Option<WsConn> {
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let Ok(conn) = Conn::connect(shared.config.http, deadline).await else {
        shared.error("viewer: connect failed");
        return None;
    };
    let Ok(mut ws) = WsConn::upgrade(conn, visit.seed, deadline).await else {
        shared.error("viewer: upgrade failed");
        return None;
    };
    let token = if visit.token {
        shared.config.token.as_str()
    } else {
        ""
    };
    {
        let mut encoder = shared.encoder.borrow_mut();
        let hello = encoder.hello(&visit.room, token, visit.last_seq, "shardcast-bench soak");
        ws.queue_binary(hello);
    }
    if ws.flush(deadline).await.is_err() {
        shared.error("viewer: write failed");
        return None;
    }
    Some(ws)
}

/// Ends a visit the way it says.
async fn leave(shared: &Shared, visit: &Visit, mut ws: WsConn, last_seq: u64) -> Option<u64> {
    let ending = if shared.churning() {
        visit.ending
    } else {
        Ending::Clean
    };
    shared.count(|counts| match ending {
        Ending::Abrupt | Ending::Resume => counts.leaves_abrupt += 1,
        Ending::Clean => counts.leaves_clean += 1,
    });
    match ending {
        Ending::Clean => {
            ws.queue_close(1000);
            let deadline = Instant::now() + CLOSE_TIMEOUT;
            if ws.flush(deadline).await.is_ok() && ws.conn.until_closed(deadline).await.is_err() {
                shared.error("viewer: no close after the close frame");
            }
            None
        }
        Ending::Abrupt => None,
        Ending::Resume => (last_seq > 0).then_some(last_seq),
    }
}

fn handle_incoming(shared: &Shared, visit: &Visit, viewer: &mut Viewer, message: &Incoming) {
    let bytes = match message {
        Incoming::Binary(bytes) => bytes,
        Incoming::Close(code) => {
            let room = if visit.room == FLOOD_ROOM {
                "the flood room"
            } else {
                "a room"
            };
            let token = if visit.token { ", chatting" } else { "" };
            shared.error(&format!(
                "viewer: closed by the server (close {}, in {room}{token})",
                code.unwrap_or(0)
            ));
            viewer.closed_by_server = true;
            return;
        }
    };
    let Ok(msg) = decode_server(bytes, &VerifyLimits::server()) else {
        shared.error("viewer: undecodable message");
        return;
    };
    let mut counts = shared.counts.borrow_mut();
    match msg {
        ServerMsg::Welcome(welcome) if !viewer.joined => {
            viewer.joined = true;
            counts.joins += 1;
            counts.chatter_joins += u64::from(visit.token);
            counts.resumes += u64::from(visit.last_seq > 0);
            if visit.last_seq == 0 {
                viewer.last_seq = welcome.seq;
            }
            if welcome.heartbeat_ms > 0 {
                let every = Duration::from_millis(u64::from(welcome.heartbeat_ms) / 2);
                viewer.heartbeat_every = Some(every);
                viewer.next_heartbeat = Instant::now() + every;
            }
        }
        ServerMsg::Batch { first_seq, events }
        | ServerMsg::HistoryReply {
            first_seq, events, ..
        } => {
            if matches!(msg, ServerMsg::HistoryReply { .. }) {
                counts.resume_replays += 1;
            } else if viewer.last_seq > 0 && first_seq != viewer.last_seq + 1 {
                counts.seq_gaps += 1;
            }
            counts.events_received += events.len() as u64;
            if !events.is_empty() {
                viewer.last_seq = first_seq + events.len() as u64 - 1;
            }
        }
        ServerMsg::Resync { seq, .. } => {
            counts.resume_resyncs += 1;
            viewer.last_seq = seq;
        }
        ServerMsg::Error { code, .. } => {
            drop(counts);
            shared.error(&format!("viewer: server Error {code}"));
        }
        ServerMsg::Kick { .. } => {
            drop(counts);
            shared.error("viewer: kicked");
        }
        _ => {}
    }
}

/// Queues the heartbeat and chat that are due.
fn queue_due(shared: &Shared, visit: &Visit, viewer: &mut Viewer, ws: &mut WsConn) {
    let now = Instant::now();
    let mut encoder = shared.encoder.borrow_mut();
    if let Some(every) = viewer
        .heartbeat_every
        .filter(|_| now >= viewer.next_heartbeat)
    {
        let millis = shared.start.elapsed().as_millis() as u64;
        ws.queue_binary(encoder.heartbeat(millis));
        viewer.next_heartbeat = now + every;
    }
    let Some(every) = visit
        .chat_every
        .filter(|_| viewer.joined && now >= viewer.next_chat)
    else {
        return;
    };
    let flood = visit.room == FLOOD_ROOM;
    let text = chat_text(visit.seed, viewer.chats, flood);
    ws.queue_binary(encoder.chat(&text, CHAT_COLOR, ChatMode::Scroll));
    viewer.chats += 1;
    viewer.next_chat += every;
    if viewer.next_chat < now {
        viewer.next_chat = now + every;
    }
    let mut counts = shared.counts.borrow_mut();
    if flood {
        counts.flood_chats += 1;
    } else {
        counts.chats += 1;
    }
}

/// A chat: who and which, padded (flood chats to the 100-character cap).
fn chat_text(seed: u64, n: u64, flood: bool) -> String {
    let mut text = format!("soak {seed:x}/{n} ");
    let target = if flood { 100 } else { 40 };
    while text.len() < target {
        text.push_str("la ");
    }
    text.truncate(target);
    text
}

/// A staller slot: join the flood room with a small receive buffer, stop reading, and wait
/// for the server to close the connection.
pub async fn staller_slot(shared: Rc<Shared>, slot: u32) {
    let mut rng = Rng::new(shared.config.seed ^ 0x57A11 ^ u64::from(slot));
    shared
        .nap(rng.between(Duration::from_secs(5), Duration::from_secs(15)))
        .await;
    let mut visits = 0u64;
    while shared.churning() {
        stall_once(&shared, (0x57A1 << 32) | (u64::from(slot) << 24) | visits).await;
        visits += 1;
        shared
            .nap(rng.between(Duration::from_secs(1), Duration::from_secs(5)))
            .await;
    }
}

async fn stall_once(shared: &Shared, seed: u64) {
    let Ok(conn) = Conn::connect_small(shared.config.http, STALL_RCVBUF_BYTES) else {
        shared.error("staller: connect failed");
        return;
    };
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let Ok(mut ws) = WsConn::upgrade(conn, seed, deadline).await else {
        shared.error("staller: upgrade failed");
        return;
    };
    {
        let mut encoder = shared.encoder.borrow_mut();
        ws.queue_binary(encoder.hello(FLOOD_ROOM, "", 0, "shardcast-bench soak staller"));
    }
    let mut incoming = Vec::new();
    let welcomed =
        ws.flush(deadline).await.is_ok() && ws.recv(deadline, &mut incoming).await.is_ok();
    if !welcomed || incoming.is_empty() {
        shared.error("staller: no Welcome");
        return;
    }
    let _open = LoadGauges::add(&shared.gauges.stallers);
    shared.counts.borrow_mut().stalls += 1;
    let ports = socket_ports(&ws.conn);
    let stalled_at = Instant::now();
    let closed = |shared: &Shared| {
        let mut counts = shared.counts.borrow_mut();
        counts.stalls_closed += 1;
        counts.stall_close_s += stalled_at.elapsed().as_secs_f64();
    };
    while stalled_at.elapsed() < STALL_PATIENCE {
        sleep_until(Instant::now() + Duration::from_millis(500)).await;
        if ports.is_some_and(|(local, peer)| !super::sample::tcp_open_both_ends(local, peer)) {
            return closed(shared);
        }
        if !shared.churning() {
            shared.counts.borrow_mut().stalls_cut += 1;
            return;
        }
    }
    match ws.conn.until_closed(Instant::now() + STALL_DRAIN).await {
        Ok(_) => closed(shared),
        Err(_) => shared.error("staller: still served after 45 s without reading"),
    }
}

/// (local port, peer port) of a connection.
fn socket_ports(conn: &Conn) -> Option<(u16, u16)> {
    let local = conn.stream.local_addr().ok()?;
    let peer = conn.stream.peer_addr().ok()?;
    Some((local.port(), peer.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_texts_fit_the_server_cap() {
        assert_eq!(chat_text(7, 3, true).len(), 100);
        assert_eq!(chat_text(7, 3, false).len(), 40);
        assert!(chat_text(u64::MAX, u64::MAX, false).starts_with("soak "));
    }
}
