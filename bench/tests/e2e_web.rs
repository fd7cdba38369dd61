//! End-to-end tests of the web front end: the pages and their API against the real binary,
//! and the watch page in Debian's Chromium (driven by `tests/browser/watch.mjs` through
//! playwright-core) while ffmpeg publishes a 1280x720 test picture.

mod common;

use common::{admin_token, mint_token, read_response, Publish, Server};
use std::io::Write;
use std::time::{Duration, Instant};

const SECRET: &str = "e2e-web-secret-0123456789abcdef";

/// The cheapest H.264 that keeps two 720p publishers and two browser pages within this
/// machine's two cores.
const H264_LIGHT: [&str; 10] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-tune",
    "zerolatency",
    "-g",
    "30",
    "-pix_fmt",
    "yuv420p",
];

/// ffmpeg publishing a 1280x720 test picture and a tone to `url` for `seconds`, in real time.
fn publish(url: &str, seconds: u32) -> Publish {
    Publish::start_sized("ffmpeg", url, seconds, "1280x720", &H264_LIGHT)
}

fn request(server: &Server, method: &str, path: &str, headers: &str) -> common::Response {
    let mut s = server.connect();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut s).expect("a response")
}

fn json(response: &common::Response) -> serde_json::Value {
    serde_json::from_slice(&response.body).unwrap_or_else(|e| {
        panic!(
            "{} is not JSON: {e}",
            String::from_utf8_lossy(&response.body)
        )
    })
}

/// Waits until the stream's source playlist lists a segment.
fn wait_live(server: &Server, stream: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let path = format!("/live/{stream}/source/index.m3u8");
    loop {
        let r = server.get(&path);
        if r.status == 200 && String::from_utf8_lossy(&r.body).contains("#EXTINF") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{stream} never went live:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs the watch page script with `args`; returns its JSON report, panicking with it when
/// a check failed.
fn run_browser(server: &Server, test: &str, args: &[&str]) -> serde_json::Value {
    run_browser_at(server, &format!("http://{}", server.addr), test, args)
}

/// [`run_browser`] with the pages at `base` (an https:// one, say).
fn run_browser_at(server: &Server, base: &str, test: &str, args: &[&str]) -> serde_json::Value {
    common::browser::run_script(server, "watch.mjs", base, test, args)
}

#[test]
fn the_watch_page_plays_and_shows_another_pages_chats_in_order_and_its_gift() {
    let config = format!("[auth]\nsecret = \"{SECRET}\"\n[transcode]\nenabled = false\n");
    let server = Server::start("auto", 2, &config);
    server.credit(SECRET, "alice", 1000, "e2e-web-credit");
    let token = mint_token(&["--user", "alice", "--secret", SECRET]);
    let _publisher = publish(&format!("rtmp://{}/live/x", server.rtmp_addr), 120);
    wait_live(&server, "x");

    let report = run_browser(
        &server,
        "watch",
        &[
            "--stream", "x", "--token", &token, "--gift", "2", "--chats", "5",
        ],
    );
    assert_eq!(report["video"]["width"], 1280, "{report}");
    assert_eq!(report["sender"], "alice");
    assert_eq!(report["bullets"].as_array().unwrap().len(), 5, "{report}");
    // The gift is in the ledger once: 1000 - rocket (100).
    assert_eq!(report["balance"], "900", "{report}");
    let admin = admin_token(SECRET);
    let wallet = request(
        &server,
        "GET",
        "/api/v1/wallets/alice",
        &format!("Authorization: Bearer {admin}\r\n"),
    );
    assert_eq!(json(&wallet)["balance"], 900);
}

/// The same page over TLS: hls.js plays over HTTPS, the chat goes over WSS, and the
/// publisher comes in over RTMPS. The certificate is self-signed (`shardcast cert`), which
/// the browser is told to accept.
#[test]
fn the_watch_page_plays_over_https_and_chats_over_wss() {
    let dir = common::TempDir::new("web-tls");
    let (cert, key) = common::self_signed_cert(&dir.0, "cert");
    let config = format!(
        "[auth]\nsecret = \"{SECRET}\"\n[transcode]\nenabled = false\n[tls]\ncert_file = \"{}\"\n\
         key_file = \"{}\"\nhttps_listen = \"127.0.0.1:0\"\nrtmps_listen = \"127.0.0.1:0\"\n",
        cert.display(),
        key.display()
    );
    let server = Server::start_in(dir, "auto", 2, &config);
    let (https, rtmps) = (server.listener("https"), server.listener("rtmps"));
    server.credit(SECRET, "alice", 1000, "e2e-web-tls-credit");
    let token = mint_token(&["--user", "alice", "--secret", SECRET]);
    let _publisher = publish(&format!("rtmps://{rtmps}/live/sx"), 120);
    wait_live(&server, "sx");
    let base = format!("https://localhost:{}", https.port());
    let report = run_browser_at(
        &server,
        &base,
        "watch-https",
        &[
            "--stream",
            "sx",
            "--token",
            &token,
            "--gift",
            "2",
            "--chats",
            "3",
            "--insecure",
            "1",
        ],
    );
    assert_eq!(report["video"]["width"], 1280, "{report}");
    assert_eq!(report["bullets"].as_array().unwrap().len(), 3, "{report}");
    assert_eq!(report["balance"], "900", "{report}");
    assert!(server.metric("shardcast_engine_tls_handshakes_total") >= 3);
}

#[test]
fn with_no_configuration_a_visitor_watches_and_chats_as_a_guest() {
    let server = Server::start("auto", 2, "[transcode]\nenabled = false\n");
    let _publisher = publish(&format!("rtmp://{}/live/lobby", server.rtmp_addr), 120);
    wait_live(&server, "lobby");
    let report = run_browser(&server, "guest", &["--stream", "lobby", "--chats", "3"]);
    let sender = report["sender"].as_str().unwrap();
    assert!(sender.starts_with("guest-"), "{report}");
    assert_eq!(report["bullets"].as_array().unwrap().len(), 3, "{report}");
}

#[test]
fn the_pages_and_their_api_answer_and_guests_follow_the_config() {
    let server = Server::start("auto", 1, "[web]\nguest_tokens_per_minute = 3\n");
    for (path, marker) in [
        ("/", "Live now"),
        ("/watch/anything", "id=\"overlay\""),
        ("/publish", "Go live"),
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(String::from_utf8_lossy(&r.body).contains(marker), "{path}");
    }
    for asset in [
        "/web/player.js",
        "/web/watch.js",
        "/web/danmaku.js",
        "/web/vendor/shardcast-wire.js",
        "/web/vendor/hls.min.js",
        "/web/vendor/dash.mediaplayer.min.js",
    ] {
        let r = server.get(asset);
        assert_eq!(r.status, 200, "{asset}");
        assert_eq!(r.header("content-type"), Some("text/javascript"), "{asset}");
    }
    assert_eq!(server.get("/web/nothing.js").status, 404);
    assert_eq!(server.get("/watch/").status, 404);

    let web = json(&server.get("/api/v1/web"));
    assert_eq!(web["guests"], true);
    assert_eq!(web["gifts"][1]["name"], "rocket");
    assert_eq!(web["rtmp_port"], server.rtmp_addr.port());

    // Three guest tokens a minute from one address, then 429; each names a new guest.
    let mut users = std::collections::HashSet::new();
    for _ in 0..3 {
        let r = request(&server, "POST", "/api/v1/guest", "");
        assert_eq!(r.status, 200);
        let guest = json(&r);
        assert!(guest["token"].as_str().unwrap().contains('.'));
        assert!(users.insert(guest["user"].as_str().unwrap().to_string()));
    }
    let refused = request(&server, "POST", "/api/v1/guest", "");
    assert_eq!(refused.status, 429);
    assert_eq!(json(&refused)["cause"], "rate");
    assert_eq!(request(&server, "GET", "/api/v1/guest", "").status, 405);

    // The publish key is shown only to whoever has it (or an admin token).
    assert_eq!(server.get("/api/v1/publish-info").status, 401);
    let wrong = request(
        &server,
        "GET",
        "/api/v1/publish-info",
        "Authorization: Bearer nope\r\n",
    );
    assert_eq!(wrong.status, 403);
}

#[test]
fn a_server_with_its_own_accounts_has_no_guests_unless_told() {
    let config = format!("[auth]\nsecret = \"{SECRET}\"\n");
    let server = Server::start("auto", 1, &config);
    let refused = request(&server, "POST", "/api/v1/guest", "");
    assert_eq!(refused.status, 403);
    assert_eq!(json(&refused)["cause"], "guests_off");
    assert_eq!(json(&server.get("/api/v1/web"))["guests"], false);
    // The leaderboard is public by default; the rest of the admin API is not.
    assert_eq!(server.get("/api/v1/rooms/r/leaderboard").status, 200);
    assert_eq!(server.get("/api/v1/rooms/r/gifts").status, 401);
    drop(server);

    let config = format!(
        "[auth]\nsecret = \"{SECRET}\"\n[web]\nguests = \"on\"\nleaderboard_public = false\n"
    );
    let server = Server::start("auto", 1, &config);
    let guest = request(&server, "POST", "/api/v1/guest", "");
    assert_eq!(guest.status, 200);
    assert_eq!(server.get("/api/v1/rooms/r/leaderboard").status, 401);

    let config = "[web]\nenabled = false\n";
    let server = Server::start("auto", 1, config);
    assert_eq!(server.get("/").status, 404);
    assert_eq!(request(&server, "POST", "/api/v1/guest", "").status, 405);
}
