//! Webhook calls: a JSON POST to an `http://` URL with a deadline, on a short-lived thread of
//! the control thread's (never on a shard).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest webhook response head read, in bytes.
const WEBHOOK_RESPONSE_HEAD_MAX_BYTES: usize = 8192;

/// POSTs `body` as JSON to an `http://` URL and returns the response status.
pub fn post_json(url: &str, body: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// webhook URLs are supported: {url}"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {authority}: no address"))?;
    let deadline = Instant::now() + timeout;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let remaining = |d: Instant| {
        d.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    stream
        .set_write_timeout(Some(remaining(deadline)))
        .and_then(|()| stream.set_read_timeout(Some(remaining(deadline))))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: shardcast/{}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a status line".to_string());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > WEBHOOK_RESPONSE_HEAD_MAX_BYTES {
            return Err("status line too long".to_string());
        }
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| "malformed status line".to_string())?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn serve_once(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = vec![0u8; 4096];
            let n = s.read(&mut got).unwrap();
            s.write_all(status.as_bytes()).unwrap();
            String::from_utf8_lossy(&got[..n]).to_string()
        });
        (url, handle)
    }

    #[test]
    fn posts_json_and_reads_the_status() {
        let (url, server) = serve_once("HTTP/1.1 204 No Content\r\n\r\n");
        assert_eq!(
            post_json(&url, "{\"a\":1}", Duration::from_secs(5)),
            Ok(204)
        );
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("Content-Type: application/json"));
        assert!(request.ends_with("{\"a\":1}"));
        let (url, server) = serve_once("HTTP/1.1 403 Forbidden\r\n\r\n");
        assert_eq!(post_json(&url, "{}", Duration::from_secs(5)), Ok(403));
        server.join().unwrap();
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        assert!(post_json("https://example.invalid/", "{}", Duration::from_millis(100)).is_err());
        // Nothing listens on port 1 of loopback.
        assert!(post_json("http://127.0.0.1:1/", "{}", Duration::from_millis(500)).is_err());
    }
}
