//! Where the load goes and where it comes from: `http://HOST:PORT/PATH` targets and the
//! source-address ranges client sockets bind to.

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};

/// Most source addresses one range may name. Each address carries at most ~10k connections
/// before connects slow down, so 4096 addresses already exceed what a machine holds.
pub const SOURCE_ADDRS_MAX: usize = 4096;

/// Why a target or source-address string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The URL does not start with `http://` (TLS is not spoken).
    #[error("`{0}`: only http:// URLs are supported")]
    Scheme(String),
    /// The host part was empty or the port was not a number.
    #[error("`{0}`: expected http://HOST:PORT/PATH")]
    Malformed(String),
    /// The host did not resolve to any address.
    #[error("`{0}`: host does not resolve: {1}")]
    Resolve(String, String),
    /// A source address was not an IPv4 address.
    #[error("`{0}` is not an IPv4 address or A-B range")]
    BadAddr(String),
    /// A range ran backwards.
    #[error("range `{0}` ends before it starts")]
    Backwards(String),
    /// The ranges named more addresses than [`SOURCE_ADDRS_MAX`].
    #[error("source ranges name {seen} addresses; the limit is {limit}")]
    TooMany {
        /// [`SOURCE_ADDRS_MAX`].
        limit: usize,
        /// How many the ranges named.
        seen: usize,
    },
}

/// One parsed and resolved `http://HOST:PORT/PATH` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL as given.
    pub text: String,
    /// The resolved address the connections go to.
    pub addr: SocketAddr,
    /// The value of the `Host` header (`HOST:PORT` as written).
    pub authority: String,
    /// The request target, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses and resolves a URL. Resolution may block (it runs once, before the load).
    pub fn parse(text: &str) -> Result<Self, TargetError> {
        let rest = text
            .strip_prefix("http://")
            .ok_or_else(|| TargetError::Scheme(text.to_owned()))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let addr = resolve(authority, 80).map_err(|error| match error {
            TargetError::Malformed(_) => TargetError::Malformed(text.to_owned()),
            other => other,
        })?;
        Ok(Self {
            text: text.to_owned(),
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The bytes of one keep-alive `GET` for this URL.
    pub fn request_bytes(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: shardcast-bench\r\n\r\n",
            self.path, self.authority
        )
        .into_bytes()
    }
}

/// Resolves `HOST:PORT` (or `HOST` with `default_port`), preferring IPv4.
pub fn resolve(authority: &str, default_port: u16) -> Result<SocketAddr, TargetError> {
    if authority.is_empty() || authority.contains(char::is_whitespace) {
        return Err(TargetError::Malformed(authority.to_owned()));
    }
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let with_port = match authority.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            port.parse::<u16>()
                .map_err(|_| TargetError::Malformed(authority.to_owned()))?;
            authority.to_owned()
        }
        Some(_) => return Err(TargetError::Malformed(authority.to_owned())),
        None => format!("{authority}:{default_port}"),
    };
    let addrs: Vec<SocketAddr> = with_port
        .to_socket_addrs()
        .map_err(|error| TargetError::Resolve(authority.to_owned(), error.to_string()))?
        .collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| TargetError::Resolve(authority.to_owned(), "no addresses".to_owned()))
}

/// Parses source addresses: `127.0.0.2-127.0.0.9`, `127.0.0.2`, or a comma list of either.
/// Ranges are inclusive. Connections bind to them round-robin.
pub fn parse_source_addrs(text: &str) -> Result<Vec<Ipv4Addr>, TargetError> {
    let mut addrs = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (first, last) = match part.split_once('-') {
            Some((first, last)) => (parse_ipv4(first)?, parse_ipv4(last)?),
            None => {
                let only = parse_ipv4(part)?;
                (only, only)
            }
        };
        let (first, last) = (u32::from(first), u32::from(last));
        if last < first {
            return Err(TargetError::Backwards(part.to_owned()));
        }
        let seen = addrs.len() + (last - first) as usize + 1;
        if seen > SOURCE_ADDRS_MAX {
            return Err(TargetError::TooMany {
                limit: SOURCE_ADDRS_MAX,
                seen,
            });
        }
        addrs.extend((first..=last).map(Ipv4Addr::from));
    }
    Ok(addrs)
}

fn parse_ipv4(text: &str) -> Result<Ipv4Addr, TargetError> {
    text.trim()
        .parse()
        .map_err(|_| TargetError::BadAddr(text.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_with_port_and_path() {
        let url = HttpUrl::parse("http://127.0.0.1:8080/static/200b.bin").unwrap();
        assert_eq!(url.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(url.authority, "127.0.0.1:8080");
        assert_eq!(url.path, "/static/200b.bin");
        let request = String::from_utf8(url.request_bytes()).unwrap();
        assert!(request.starts_with("GET /static/200b.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
    }

    #[test]
    fn url_defaults() {
        let url = HttpUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!(url.addr.port(), 80);
        assert_eq!(url.path, "/");
        let url = HttpUrl::parse("http://localhost:9/x").unwrap();
        assert!(url.addr.ip().is_loopback());
    }

    #[test]
    fn url_refusals() {
        assert!(matches!(
            HttpUrl::parse("https://127.0.0.1/"),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            HttpUrl::parse("http://:80/"),
            Err(TargetError::Malformed(_))
        ));
        assert!(matches!(
            HttpUrl::parse("http://127.0.0.1:http/"),
            Err(TargetError::Malformed(_))
        ));
    }

    #[test]
    fn source_ranges() {
        let addrs = parse_source_addrs("127.0.0.2-127.0.0.4").unwrap();
        assert_eq!(
            addrs,
            vec![
                Ipv4Addr::new(127, 0, 0, 2),
                Ipv4Addr::new(127, 0, 0, 3),
                Ipv4Addr::new(127, 0, 0, 4)
            ]
        );
        let addrs = parse_source_addrs("127.0.0.9, 127.0.0.255-127.0.1.0").unwrap();
        assert_eq!(
            addrs,
            vec![
                Ipv4Addr::new(127, 0, 0, 9),
                Ipv4Addr::new(127, 0, 0, 255),
                Ipv4Addr::new(127, 0, 1, 0)
            ]
        );
        assert!(parse_source_addrs("").unwrap().is_empty());
    }

    #[test]
    fn source_refusals() {
        assert!(matches!(
            parse_source_addrs("127.0.0.9-127.0.0.2"),
            Err(TargetError::Backwards(_))
        ));
        assert!(matches!(
            parse_source_addrs("127.0.0.x"),
            Err(TargetError::BadAddr(_))
        ));
        assert_eq!(
            parse_source_addrs("10.0.0.0-10.1.0.0"),
            Err(TargetError::TooMany {
                limit: SOURCE_ADDRS_MAX,
                seen: 65537
            })
        );
    }
}
