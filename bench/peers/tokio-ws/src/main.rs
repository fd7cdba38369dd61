//! The tokio baseline of `bench-ws`: a room-broadcast WebSocket server written the way a Rust
//! user would write one with tokio and tokio-tungstenite, speaking the shardcast.v1 protocol
//! minimally through `shardcast-wire`.
//!
//! Usage: `cargo run --release -- PORT` (listens on 127.0.0.1:PORT, any path).
//!
//! Configuration, and why:
//! - Runtime: `#[tokio::main(flavor = "current_thread")]`, one thread. `bench-ws.sh` starts the
//!   binary under `taskset -c 0`, so the whole server runs on one core, like shardcast with
//!   `--shards 1` and `[shards] cores = [0]`.
//! - WebSocket: tokio-tungstenite with its default `WebSocketConfig` (no permessage-deflate);
//!   the handshake accepts the `shardcast.v1` subprotocol when the client offers it. Ping
//!   frames are answered by tungstenite itself.
//! - Rooms: one `tokio::sync::broadcast` channel per room, of [`ROOM_CAPACITY`] frames. This is
//!   what the tokio and axum chat examples do: one send fans out to every member, each member
//!   holds a cheap clone of the same `Bytes` (the encoded `Batch`), and the channel is bounded.
//!   A member that falls more than [`ROOM_CAPACITY`] messages behind loses the oldest ones
//!   (`RecvError::Lagged`) and carries on; the load generator counts those as missing. The
//!   alternative, a `HashMap<room, Vec<mpsc::Sender>>`, needs one send per member under the
//!   room lock and either unbounded queues or a policy for full ones; broadcast already is
//!   that policy.
//! - Ordering: a chat takes the room's next `seq`, is encoded once as a `Batch` of one
//!   `ChatEvent` and sent on the channel while the state lock is held, so every member sees
//!   the events in `seq` order. One shared `Encoder` lives under that lock (a current-thread
//!   runtime never contends for it).
//! - Protocol: `Hello{room}` joins the room and is answered by `Welcome` (seq = the room's
//!   current seq); `Chat` is broadcast to every member, the sender included, with no batching
//!   window; `Heartbeat` is answered by `Pong`; everything else is ignored. There is no
//!   authentication: any token is accepted. Rooms are kept after their last member leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use shardcast_wire::{
    decode_client, ClientMsg, Encoder, EventBodyView, EventView, Role, VerifyLimits, WelcomeView,
    SUBPROTOCOL,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

/// Frames a room's channel keeps for members that have not read them yet. At about 150 bytes
/// per one-chat batch, a full channel holds ~150 KiB per room (shared by its members).
const ROOM_CAPACITY: usize = 1024;

/// Told to clients in `Welcome`; this server closes nobody for silence.
const HEARTBEAT_MS: u32 = 30_000;

struct Room {
    seq: u64,
    tx: broadcast::Sender<Bytes>,
}

struct State {
    rooms: HashMap<String, Room>,
    encoder: Encoder,
}

type Shared = Arc<Mutex<State>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: shardcast-peer-tokio-ws PORT");
            std::process::exit(2);
        }
    };
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("tokio-ws listening on 127.0.0.1:{port}");
    let state: Shared = Arc::new(Mutex::new(State {
        rooms: HashMap::new(),
        encoder: Encoder::new(),
    }));
    let mut next_id: u64 = 0;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of descriptors, for example: keep serving the connections we have.
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        next_id += 1;
        tokio::spawn(connection(stream, next_id, state.clone()));
    }
}

/// Echoes `shardcast.v1` when the client offers it. The signature is tungstenite's `Callback`,
/// large error type included.
#[allow(clippy::result_large_err)]
fn select_subprotocol(
    request: &Request,
    mut response: Response,
) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if offered {
        response.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
    }
    Ok(response)
}

async fn connection(stream: TcpStream, id: u64, state: Shared) {
    let _ = stream.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, select_subprotocol).await else {
        return;
    };
    let (mut sink, mut source) = ws.split();
    let user = format!("user-{id}");

    // Nothing but Hello is served before joining a room.
    let (room, mut rx) = loop {
        match source.next().await {
            Some(Ok(Message::Binary(data))) => {
                if let Ok(ClientMsg::Hello { room, .. }) =
                    decode_client(&data, &VerifyLimits::client())
                {
                    let (rx, welcome) = join(&state, room, &user);
                    if sink.send(Message::Binary(welcome)).await.is_err() {
                        return;
                    }
                    break (room.to_owned(), rx);
                }
            }
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            Some(Ok(_)) => {}
        }
    };

    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(Message::Binary(data))) => {
                    match decode_client(&data, &VerifyLimits::client()) {
                        Ok(ClientMsg::Chat { text, color, mode }) => {
                            let mut state = state.lock().unwrap();
                            let State { rooms, encoder } = &mut *state;
                            let room = rooms.get_mut(&room).expect("a member's room exists");
                            room.seq += 1;
                            let event = EventView {
                                seq: room.seq,
                                time_ms: unix_ms(),
                                body: EventBodyView::Chat { user: &user, text, color, mode },
                            };
                            let frame = Bytes::copy_from_slice(encoder.batch(room.seq, [event]));
                            // Fails only when no member is subscribed, and the sender is one.
                            let _ = room.tx.send(frame);
                        }
                        Ok(ClientMsg::Heartbeat { client_time_ms }) => {
                            let pong = {
                                let mut state = state.lock().unwrap();
                                Bytes::copy_from_slice(state.encoder.pong(client_time_ms, unix_ms()))
                            };
                            if sink.send(Message::Binary(pong)).await.is_err() {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            outgoing = rx.recv() => match outgoing {
                Ok(frame) => {
                    if sink.send(Message::Binary(frame)).await.is_err() {
                        break;
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            },
        }
    }
}

/// Subscribes to `room` (creating it) and encodes the `Welcome`.
fn join(state: &Shared, room: &str, user: &str) -> (broadcast::Receiver<Bytes>, Bytes) {
    let mut state = state.lock().unwrap();
    let State { rooms, encoder } = &mut *state;
    let entry = rooms.entry(room.to_owned()).or_insert_with(|| Room {
        seq: 0,
        tx: broadcast::channel(ROOM_CAPACITY).0,
    });
    let rx = entry.tx.subscribe();
    let welcome = encoder.welcome(&WelcomeView {
        user,
        room,
        seq: entry.seq,
        online: entry.tx.receiver_count() as u64,
        heartbeat_ms: HEARTBEAT_MS,
        role: Role::Viewer,
        epoch: "",
    });
    (rx, Bytes::copy_from_slice(welcome))
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
