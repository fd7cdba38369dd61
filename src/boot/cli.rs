//! The command line: `shardcast serve`, `config`, `token`, `cert`, `probe` and `ladder`.

use super::config::Config;
use super::serve::{serve, Overrides};
use super::settings::{configured_secret, segmenter_config, transcode_settings};
use crate::common::auth::{parse_duration_s, Audience, Claims, Role, TokenKey};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "shardcast",
    version,
    about = "Live-streaming backend: thread-per-core shards on io_uring",
    long_about = "shardcast runs one shard per core, each owning its sockets on io_uring \
                  (or epoll where io_uring is unavailable).\n\n\
                  Start serving with defaults:  shardcast serve\n\
                  See every config field:       shardcast config --print-default"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve HTTP (health, metrics, info API, static files) on every shard until SIGTERM or
    /// SIGINT, then drain gracefully (stop accepting, finish in-flight responses within
    /// shutdown.grace_ms) and exit 0.
    Serve(ServeArgs),
    /// Inspect configuration.
    Config(ConfigArgs),
    /// Mint a danmaku token (HMAC-SHA256, signed with auth.secret) and print it.
    Token(TokenArgs),
    /// Make a TLS certificate for development: `shardcast cert --self-signed HOST` writes
    /// cert.pem and key.pem (for tls.cert_file and tls.key_file). Browsers and encoders warn
    /// about a self-signed certificate; use one from a CA in production.
    Cert(CertArgs),
    /// Try the video encoders in order (NVENC, QSV, VAAPI, then software) and print which
    /// opened and why each other failed.
    Probe(ProbeArgs),
    /// Run the configured transcode ladder ([transcode] and [media] of --config) over the
    /// video of a recorded FLV file as fast as one thread goes, packaging every rung as a live
    /// stream would, and report the speed and CPU time (what `just bench-transcode` measures).
    Ladder(LadderArgs),
}

#[derive(Parser, Debug)]
struct LadderArgs {
    /// The FLV file (e.g. `ffmpeg ... -f flv FILE`).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    /// Configuration file (TOML); without it, the defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write each rung's init.mp4 and {n}.m4s under DIR/{rung}/.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Parser, Debug)]
struct CertArgs {
    /// The host name (or address) the certificate is for; localhost, 127.0.0.1 and ::1 are
    /// added.
    #[arg(long, value_name = "HOST", required = true)]
    self_signed: String,
    /// Where to write the certificate (PEM).
    #[arg(long, value_name = "FILE", default_value = "cert.pem")]
    cert: PathBuf,
    /// Where to write the private key (PEM, readable by its owner only).
    #[arg(long, value_name = "FILE", default_value = "key.pem")]
    key: PathBuf,
}

#[derive(Parser, Debug)]
struct ProbeArgs {
    /// Probe the HEVC encoders instead of the H.264 ones.
    #[arg(long)]
    hevc: bool,
    /// Try only this encoder (e.g. libx264, h264_nvenc).
    #[arg(long, value_name = "NAME")]
    force: Option<String>,
}

#[derive(Parser, Debug)]
struct TokenArgs {
    /// The user the token speaks for (shown with their messages).
    #[arg(long)]
    user: String,
    /// The room it is valid in; "*" for every room.
    #[arg(long, default_value = "*")]
    room: String,
    /// viewer (chat, like, gift), speaker (the host: chats at paid priority), admin (may
    /// kick) or cohost (with --publish: joins the stream's co-hosting stage as a guest,
    /// publishing STREAM~1 … STREAM~N, never the stream itself or the owner's STREAM~0).
    #[arg(long, default_value = "viewer")]
    role: String,
    /// Lifetime, e.g. 90s, 15m, 12h, 7d.
    #[arg(long, default_value = "24h")]
    ttl: String,
    /// Configuration file holding auth.secret or auth.secret_file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Mint a publish token for the stream named by --stream (use it as
    /// rtmp://host/live/STREAM?token=TOKEN); media.publish_tokens must be on.
    #[arg(long, requires = "stream", conflicts_with_all = ["play", "admin"])]
    publish: bool,
    /// Mint a token for the admin API (wallet credits, gift logs, leaderboards), for the
    /// platform's own services; --user names the service in the logs.
    #[arg(long, conflicts_with_all = ["play", "stream"])]
    admin: bool,
    /// Mint a playback token (`/live/...?token=TOKEN`, for media.playback_tokens) for the
    /// stream named by --stream, or for every stream with --room '*'.
    #[arg(long)]
    play: bool,
    /// The stream a publish or playback token is for. Without --publish or --play the token
    /// is a chat token, and --stream is refused (use --room).
    #[arg(long)]
    stream: Option<String>,
    /// The secret itself (overrides the config file).
    #[arg(long)]
    secret: Option<String>,
}

#[derive(Parser, Debug)]
struct ServeArgs {
    /// HTTP listen address (overrides http.listen; default 0.0.0.0:8080). Port 0 picks a free
    /// port, logged at start.
    #[arg(long, value_name = "ADDR:PORT")]
    http: Option<String>,
    /// RTMP listen address for publishers (overrides rtmp.listen; default 0.0.0.0:1935).
    /// Port 0 picks a free port, logged at start.
    #[arg(long, value_name = "ADDR:PORT")]
    rtmp: Option<String>,
    /// HTTPS and WSS listen address (overrides tls.https_listen; default 0.0.0.0:443 once
    /// tls.cert_file is set). "off": none.
    #[arg(long, value_name = "ADDR:PORT")]
    https: Option<String>,
    /// RTMPS listen address (overrides tls.rtmps_listen; default 0.0.0.0:1936 once
    /// tls.cert_file is set). "off": none.
    #[arg(long, value_name = "ADDR:PORT")]
    rtmps: Option<String>,
    /// WebRTC (WHEP) UDP address and base port (overrides webrtc.udp_listen; default
    /// 0.0.0.0:0): shard i binds the port + i. "off": no WebRTC.
    #[arg(long, value_name = "ADDR:PORT")]
    webrtc_udp: Option<String>,
    /// Number of shards (default: one per core in shards.cores, or every allowed core).
    #[arg(long, value_name = "N")]
    shards: Option<usize>,
    /// I/O backend (overrides shards.io): auto picks io_uring when usable, else epoll.
    #[arg(long, value_enum)]
    io: Option<IoArg>,
    /// TOML configuration file; fields left out keep their defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum IoArg {
    Auto,
    Uring,
    Epoll,
}

#[derive(Parser, Debug)]
struct ConfigArgs {
    /// Print every field with its documentation and default value, as TOML.
    #[arg(long)]
    print_default: bool,
    /// Check a configuration file and report the first error.
    #[arg(long, value_name = "FILE")]
    check: Option<PathBuf>,
}

/// Runs the CLI; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => match serve(args.into()) {
            Ok(()) => 0,
            Err(message) => {
                log::error!("{message}");
                eprintln!("shardcast: {message}");
                1
            }
        },
        Command::Config(args) => config_command(args),
        Command::Probe(args) => {
            let report = if args.hevc {
                shardcast_native::probe_hevc(args.force.as_deref())
            } else {
                shardcast_native::probe_h264(args.force.as_deref())
            };
            println!("{report}");
            if report.chosen.is_some() {
                0
            } else {
                1
            }
        }
        Command::Cert(args) => {
            match super::tls::write_self_signed(&args.self_signed, &args.cert, &args.key) {
                Ok(()) => {
                    println!(
                        "wrote {} and {} for {}: set tls.cert_file and tls.key_file to them",
                        args.cert.display(),
                        args.key.display(),
                        args.self_signed
                    );
                    0
                }
                Err(message) => {
                    eprintln!("shardcast cert: {message}");
                    1
                }
            }
        }
        Command::Ladder(args) => match ladder_command(args) {
            Ok(()) => 0,
            Err(message) => {
                eprintln!("shardcast ladder: {message}");
                1
            }
        },
        Command::Token(args) => match token_command(args) {
            Ok(token) => {
                println!("{token}");
                0
            }
            Err(message) => {
                eprintln!("shardcast token: {message}");
                1
            }
        },
    }
}

fn ladder_command(args: LadderArgs) -> Result<(), String> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    super::logging::init(
        &config.log.level,
        super::logging::LogFormat::parse(&config.log.format)
            .unwrap_or(super::logging::LogFormat::Text),
    );
    shardcast_native::route_ffmpeg_log();
    let settings = transcode_settings(&config, segmenter_config(&config)?)?
        .ok_or("transcoding is off in this configuration (transcode.enabled, transcode.ladder)")?;
    let data = std::fs::read(&args.input)
        .map_err(|e| format!("cannot read {}: {e}", args.input.display()))?;
    let run = crate::transcode::file::transcode_flv(data.into(), settings, args.out.as_deref())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&run).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "{:.1} s of media in {:.2} s ({:.2}x real time) with {}; {:.2} CPU s, {:.2} CPU s per output minute",
        run.media_s, run.wall_s, run.speed, run.encoder, run.cpu_s, run.cpu_s_per_output_min
    );
    for rung in &run.rungs {
        println!(
            "  {:<8} {:>4} segments {:>5} parts {:>10} bytes {:>8.0} kb/s",
            rung.name, rung.segments, rung.parts, rung.bytes, rung.kbps
        );
    }
    Ok(())
}

fn token_command(args: TokenArgs) -> Result<String, String> {
    let config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    let secret = match args.secret {
        Some(secret) => secret.into_bytes(),
        None => configured_secret(&config)?.ok_or(
            "no secret: set auth.secret (or auth.secret_file) in --config FILE, or pass --secret",
        )?,
    };
    let role = Role::parse(&args.role).ok_or_else(|| {
        format!(
            "--role {}: must be viewer, speaker, admin or cohost",
            args.role
        )
    })?;
    let ttl_s = parse_duration_s(&args.ttl)
        .ok_or_else(|| format!("--ttl {}: expected e.g. 90s, 15m, 12h or 7d", args.ttl))?;
    if args.user.is_empty() || args.user.len() > 64 {
        return Err("--user must be 1 to 64 bytes".to_string());
    }
    let now = crate::common::clock::wall_s();
    let audience = match (args.publish, args.play, args.admin) {
        (true, ..) => Audience::Publish,
        (_, true, _) => Audience::Play,
        (.., true) => Audience::Admin,
        _ => Audience::Chat,
    };
    let room = match (&args.stream, audience) {
        (Some(_), Audience::Chat) => {
            return Err(
                "--stream names the stream of a publish or playback token: add --publish or \
                 --play (a chat token takes --room)"
                    .to_string(),
            );
        }
        (Some(stream), _) => {
            if !crate::media::names::is_valid_stream_name(stream) {
                return Err(format!(
                    "--stream {stream}: letters, digits, -, _ and . only"
                ));
            }
            stream.clone()
        }
        (None, _) => args.room,
    };
    let claims = Claims {
        user: args.user,
        room,
        role,
        expires_unix_s: now + ttl_s,
        audience,
    };
    Ok(TokenKey::new(&secret).mint(&claims))
}

impl From<ServeArgs> for Overrides {
    fn from(args: ServeArgs) -> Self {
        Overrides {
            http: args.http,
            rtmp: args.rtmp,
            https: args.https,
            rtmps: args.rtmps,
            webrtc_udp: args.webrtc_udp,
            shards: args.shards,
            io: args.io.map(|io| match io {
                IoArg::Auto => "auto",
                IoArg::Uring => "uring",
                IoArg::Epoll => "epoll",
            }),
            config: args.config,
        }
    }
}

fn config_command(args: ConfigArgs) -> i32 {
    if let Some(path) = args.check {
        return match Config::load(&path).and_then(|c| c.validate().map(|()| c)) {
            Ok(_) => {
                println!("{}: ok", path.display());
                0
            }
            Err(e) => {
                eprintln!("shardcast: {e}");
                1
            }
        };
    }
    if args.print_default {
        print!("{}", Config::print_default());
        return 0;
    }
    eprintln!("shardcast config: say --print-default or --check FILE (see --help)");
    2
}
