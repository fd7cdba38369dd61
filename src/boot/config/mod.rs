//! Configuration: every field has a documented default, so `shardcast serve` runs with no
//! file at all. A TOML file overrides fields by section; CLI flags override the file.
//!
//! Each section is declared once with [`config_section!`], which generates the struct, its
//! defaults, and the commented TOML that `shardcast config --print-default` prints, so the
//! docs, the defaults and the parser cannot drift apart.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Errors loading a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema (unknown fields are errors too).
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    /// The HTTP caps contradict each other.
    #[error("invalid config: http: {0}")]
    Limits(String),
    /// The RTMP limits contradict each other or leave their ranges.
    #[error("invalid config: rtmp: {0}")]
    Rtmp(String),
    /// The danmaku room limits (from `[danmaku]` and `[ws]`) contradict each other.
    #[error("invalid config: {0}")]
    Rooms(String),
    /// A value is out of its allowed range.
    #[error("invalid config: {field} = {value}: {why}")]
    Invalid {
        field: &'static str,
        value: String,
        why: &'static str,
    },
}

macro_rules! config_section {
    (
        $(#[doc = $sdoc:literal])*
        $name:ident [$key:literal] {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident : $ty:ty = $default:expr,
            )*
        }
    ) => {
        $(#[doc = $sdoc])*
        #[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            $($(#[doc = $fdoc])* pub $field: $ty,)*
        }

        impl Default for $name {
            fn default() -> Self {
                $name { $($field: $default,)* }
            }
        }

        impl $name {
            /// Writes this section as commented TOML with its defaults.
            pub(super) fn describe(out: &mut String) {
                let defaults = $name::default();
                let _ = writeln!(out);
                $(let _ = writeln!(out, "#{}", $sdoc);)*
                let _ = writeln!(out, "[{}]", $key);
                $(
                    $(let _ = writeln!(out, "#{}", $fdoc);)*
                    let _ = writeln!(out, "{} = {}", stringify!($field), toml_value(&defaults.$field));
                )*
            }
        }
    };
}

mod sections;
mod validate;

pub use sections::*;

fn toml_value<T: Serialize>(value: &T) -> String {
    // toml::Value renders inline (arrays of tables as `[{ .. }]`), which keeps one field on
    // one line.
    toml::Value::try_from(value)
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "\"\"".to_string())
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub shards: Shards,
    pub engine: Engine,
    pub http: Http,
    pub ws: Ws,
    pub danmaku: Danmaku,
    pub auth: Auth,
    pub rtmp: Rtmp,
    pub media: Media,
    pub transcode: Transcode,
    pub shutdown: Shutdown,
    pub state: State,
    pub ledger: Ledger,
    pub web: Web,
    pub tls: Tls,
    pub edge: Edge,
    pub webrtc: Webrtc,
    pub log: Log,
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        Ok(config)
    }

    /// Every field with its doc and default, as a TOML file.
    pub fn print_default() -> String {
        let mut out = String::from(
            "# shardcast configuration: every field, with its default.\n\
             # Pass a file with `shardcast serve --config FILE`; fields left out keep their default.\n",
        );
        Shards::describe(&mut out);
        Engine::describe(&mut out);
        Http::describe(&mut out);
        Ws::describe(&mut out);
        Danmaku::describe(&mut out);
        Auth::describe(&mut out);
        Rtmp::describe(&mut out);
        Media::describe(&mut out);
        Transcode::describe(&mut out);
        Shutdown::describe(&mut out);
        State::describe(&mut out);
        Ledger::describe(&mut out);
        Web::describe(&mut out);
        Tls::describe(&mut out);
        Edge::describe(&mut out);
        Webrtc::describe(&mut out);
        Log::describe(&mut out);
        out
    }

    /// The HTTP decoder's caps.
    pub fn http_limits(&self) -> shardcast_http::Limits {
        let h = &self.http;
        shardcast_http::Limits {
            request_line_max_bytes: h.request_line_max_bytes,
            head_max_bytes: h.head_max_bytes,
            headers_max_count: h.headers_max_count,
            body_max_bytes: h.body_max_bytes,
        }
    }
}

/// Parses `ADDR:PORT`, naming the field in the error.
pub fn parse_addr(field: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::Invalid {
        field,
        value: value.to_string(),
        why: "expected ADDR:PORT, e.g. 0.0.0.0:8080 or [::]:8080",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_defaults_parse_back_to_the_defaults() {
        let text = Config::print_default();
        let parsed: Config = toml::from_str(&text).expect("printed defaults parse");
        assert_eq!(parsed, Config::default());
        assert!(text.contains("# Connections per shard."), "{text}");
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = toml::from_str::<Config>("[http]\nlisten_adress = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_adress"), "{err}");
    }

    #[test]
    fn partial_files_keep_other_defaults() {
        let config: Config = toml::from_str("[http]\nmax_connections_per_shard = 7\n").unwrap();
        assert_eq!(config.http.max_connections_per_shard, 7);
        assert_eq!(config.http.idle_timeout_ms, Http::default().idle_timeout_ms);
    }

    #[test]
    fn ranges_are_checked() {
        let mut config = Config::default();
        config.engine.recv_buffers = 1000;
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.http.listen = "8080".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("http.listen"), "{err}");
        let mut config = Config::default();
        config.transcode.watermarks = vec![WatermarkConfig {
            stream: "s".into(),
            text: String::new(),
            image: String::new(),
            filter: String::new(),
        }];
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("transcode.watermarks"), "{err}");
    }

    #[test]
    fn rtmp_limits_are_checked_with_the_library_s_ranges() {
        let config: Config = toml::from_str("[rtmp]\nmessage_max_bytes = 16000000\n").unwrap();
        config
            .validate()
            .expect("a 16 MB message raises the unfinished-message cap");
        let config: Config = toml::from_str("[rtmp]\nmessage_max_bytes = 33554432\n").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("rtmp: message_max_bytes"), "{error}");
    }
}
