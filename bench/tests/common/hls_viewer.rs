//! A player's requests without a player: HLS viewers that poll a media playlist and fetch the
//! newest segments, and LL-HLS viewers that follow preload hints with blocking reloads. Each
//! records what it got, so a test can count objects and statuses. Network errors are
//! recorded, never panics: these viewers watch servers being killed.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What a viewer saw.
#[derive(Default, Debug, Clone)]
pub struct Seen {
    /// Media URLs (path and query) answered 200, each once.
    pub media: BTreeSet<String>,
    /// Every status with when it came (0: no answer: refused, reset, timed out).
    pub statuses: Vec<(Instant, u16)>,
    /// `#EXT-X-MEDIA-SEQUENCE` of each playlist read, in order.
    pub sequences: Vec<u64>,
    /// What went wrong when there was no answer (status 0), with the path.
    pub errors: Vec<String>,
}

/// How a viewer plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Polls the playlist every second, fetches segments it has not had (the newest two).
    Hls,
    /// Blocking reloads and preload-hinted parts (LL-HLS).
    LowLatency,
}

/// One viewer of `/live/{stream}/{rendition}/` on `addr`, until `until`.
pub fn watch(addr: SocketAddr, base: &str, mode: Mode, until: Instant) -> Seen {
    let mut viewer = Viewer {
        addr,
        base: base.to_string(),
        conn: None,
        seen: Seen::default(),
    };
    match mode {
        Mode::Hls => viewer.hls(until),
        Mode::LowLatency => viewer.low_latency(until),
    }
    viewer.seen
}

struct Viewer {
    addr: SocketAddr,
    base: String,
    conn: Option<TcpStream>,
    seen: Seen,
}

impl Viewer {
    fn hls(&mut self, until: Instant) {
        let mut init = false;
        while Instant::now() < until {
            if let Some(playlist) = self.text("index.m3u8") {
                if !init {
                    init = self.media(&map_uri(&playlist));
                }
                let segments: Vec<String> = playlist
                    .lines()
                    .filter(|l| !l.starts_with('#') && l.ends_with(".m4s"))
                    .map(str::to_string)
                    .collect();
                for segment in segments.iter().rev().take(2).rev() {
                    if !self.seen.media.contains(&format!("{}{segment}", self.base)) {
                        self.media(segment);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1000));
        }
    }

    fn low_latency(&mut self, until: Instant) {
        let mut playlist = None;
        while Instant::now() < until {
            let text = match playlist.take() {
                Some(text) => text,
                None => match self.text("index.m3u8") {
                    Some(text) => text,
                    None => {
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                },
            };
            let map = map_uri(&text);
            if !self.seen.media.contains(&format!("{}{map}", self.base)) {
                self.media(&map);
            }
            let Some((msn, part)) = preload_hint(&text) else {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            };
            self.media(&format!("{msn}.{part}.m4s"));
            playlist = self.text(&format!("index.m3u8?_HLS_msn={msn}&_HLS_part={part}"));
        }
    }

    /// A playlist's text, or None (status recorded).
    fn text(&mut self, file: &str) -> Option<String> {
        let (status, body) = self.get(file);
        if status != 200 {
            return None;
        }
        let text = String::from_utf8(body).ok()?;
        if let Some(line) = text
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        {
            if let Ok(n) = line.trim().parse() {
                self.seen.sequences.push(n);
            }
        }
        Some(text)
    }

    /// Fetches a media object; true when it came.
    fn media(&mut self, file: &str) -> bool {
        let (status, _) = self.get(file);
        if status == 200 {
            self.seen.media.insert(format!("{}{file}", self.base));
        }
        status == 200
    }

    fn get(&mut self, file: &str) -> (u16, Vec<u8>) {
        let path = format!("{}{file}", self.base);
        let answer = self.request(&path);
        let status = answer.as_ref().map_or(0, |(s, _)| *s);
        self.seen.statuses.push((Instant::now(), status));
        match answer {
            Ok(answer) => {
                if answer.0 >= 400 {
                    let text = String::from_utf8_lossy(&answer.1).trim().to_string();
                    self.seen
                        .errors
                        .push(format!("{path}: {} {text}", answer.0));
                }
                answer
            }
            Err(why) => {
                self.seen.errors.push(format!("{path}: {why}"));
                self.conn = None;
                std::thread::sleep(Duration::from_millis(100));
                (0, Vec::new())
            }
        }
    }

    fn request(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        // A kept-alive connection the server closed between requests is not an error: the
        // request goes again on a new one, as browsers do.
        for fresh in [self.conn.is_none(), true] {
            if fresh {
                let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))
                    .map_err(|e| format!("connect: {e}"))?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(15)))
                    .unwrap();
                stream.set_nodelay(true).unwrap();
                self.conn = Some(stream);
            }
            let stream = self.conn.as_mut().unwrap();
            write!(stream, "GET {path} HTTP/1.1\r\nHost: edge\r\n\r\n")
                .map_err(|e| format!("write: {e}"))?;
            match read(stream) {
                Ok(answer) => return Ok(answer),
                Err(Eof::BeforeAnswer) if !fresh => continue,
                Err(e) => {
                    self.conn = None;
                    return Err(format!("{e:?}"));
                }
            }
        }
        Err("closed twice".into())
    }
}

/// `URI` of `#EXT-X-MAP`.
fn map_uri(playlist: &str) -> String {
    playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("init.mp4")
        .to_string()
}

/// (msn, part) of `#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{msn}.{part}.m4s"`.
fn preload_hint(playlist: &str) -> Option<(u64, u64)> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let name = uri.split('?').next()?.strip_suffix(".m4s")?;
    let (msn, part) = name.split_once('.')?;
    Some((msn.parse().ok()?, part.parse().ok()?))
}

#[derive(Debug)]
enum Eof {
    /// Closed (or reset) before any byte of the answer.
    BeforeAnswer,
    /// Anything else: a timeout, a cut body, bad framing.
    Broken(String),
}

fn read(stream: &mut TcpStream) -> Result<(u16, Vec<u8>), Eof> {
    read_inner(stream).map_err(|e| match e {
        Some(e) => e,
        None => Eof::Broken("bad framing".into()),
    })
}

/// One response: status and body (Content-Length or chunked).
fn read_inner(stream: &mut TcpStream) -> Result<(u16, Vec<u8>), Option<Eof>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) if head.is_empty() => return Err(Some(Eof::BeforeAnswer)),
            Err(e) if head.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Err(Some(Eof::BeforeAnswer))
            }
            Ok(0) => return Err(Some(Eof::Broken("EOF in the head".into()))),
            Ok(_) => {}
            Err(e) => return Err(Some(Eof::Broken(format!("{e}")))),
        }
        head.push(byte[0]);
        if head.len() > 16384 {
            return Err(None);
        }
    }
    let text = String::from_utf8(head).map_err(|_| None)?;
    let status: u16 = (text.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(None)?;
    let header = |name: &str| {
        text.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let mut body = Vec::new();
    if header("transfer-encoding").as_deref() == Some("chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                stream
                    .read_exact(&mut byte)
                    .map_err(|e| Some(Eof::Broken(format!("chunk: {e}"))))?;
                line.push(byte[0]);
            }
            let size = std::str::from_utf8(&line[..line.len() - 2]).ok();
            let size = size
                .and_then(|s| usize::from_str_radix(s, 16).ok())
                .ok_or(None)?;
            let mut data = vec![0; size + 2];
            stream
                .read_exact(&mut data)
                .map_err(|e| Some(Eof::Broken(format!("chunk data: {e}"))))?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&data[..size]);
        }
    } else if let Some(len) = header("content-length") {
        body = vec![0; len.parse().map_err(|_| None)?];
        stream
            .read_exact(&mut body)
            .map_err(|e| Some(Eof::Broken(format!("body: {e}"))))?;
    }
    Ok((status, body))
}
