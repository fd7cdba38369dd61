//! TLS setup: certificates from `[tls]`, the rustls configurations of the HTTPS and RTMPS
//! listeners, their reload on SIGHUP, and `shardcast cert --self-signed`.
//!
//! The shards drive the TLS connections themselves (`shardcast_engine::tls`); this only
//! makes what they accept with. Both listeners share one certificate resolver: the `sni`
//! entry whose name the client asks for, else `cert_file`'s. HTTPS offers ALPN `http/1.1`
//! (WebSocket upgrades are HTTP/1.1 too); RTMPS offers none.

use super::config::{SniCertConfig, Tls};
use shardcast_engine::rustls;
use shardcast_engine::rustls::pki_types::pem::PemObject;
use shardcast_engine::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use shardcast_engine::rustls::server::{ClientHello, ResolvesServerCert};
use shardcast_engine::rustls::sign::CertifiedKey;
use shardcast_engine::{TlsAcceptor, TlsLimits};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// The TLS listeners' acceptors, and what rebuilds them.
pub struct TlsSetup {
    config: Tls,
    /// HTTPS and WSS.
    pub https: Arc<TlsAcceptor>,
    /// RTMPS.
    pub rtmps: Arc<TlsAcceptor>,
}

impl TlsSetup {
    /// Loads every certificate of `config`; `None` when no `cert_file` is set.
    pub fn load(config: &Tls) -> Result<Option<TlsSetup>, String> {
        if config.cert_file.is_empty() {
            return Ok(None);
        }
        let (https, rtmps) = server_configs(config)?;
        let limits = TlsLimits {
            handshake_timeout_ms: config.handshake_timeout_ms,
            seal_ahead_bytes: config.seal_ahead_bytes,
        };
        Ok(Some(TlsSetup {
            config: config.clone(),
            https: Arc::new(TlsAcceptor::new(https, limits)),
            rtmps: Arc::new(TlsAcceptor::new(rtmps, limits)),
        }))
    }

    /// Reads every certificate again (SIGHUP). On an error the ones in use stay.
    pub fn reload(&self) -> Result<(), String> {
        let (https, rtmps) = server_configs(&self.config)?;
        self.https.replace(https);
        self.rtmps.replace(rtmps);
        Ok(())
    }
}

type Configs = (Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>);

/// The HTTPS and RTMPS server configurations of `config`.
fn server_configs(config: &Tls) -> Result<Configs, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let resolver = Arc::new(Resolver::load(config, &provider)?);
    let build = |alpn: &[&[u8]]| -> Result<Arc<rustls::ServerConfig>, String> {
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Stateless resumption: a returning client skips the key exchange, and no shard
        // shares a session cache.
        server.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
            .map_err(|e| format!("TLS: session tickets: {e}"))?;
        server.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(server))
    };
    Ok((build(&[b"http/1.1"])?, build(&[])?))
}

/// Picks the certificate for the name a client asks for.
#[derive(Debug)]
struct Resolver {
    default: Arc<CertifiedKey>,
    /// Lowercase names, exact or `*.rest`.
    by_name: HashMap<String, Arc<CertifiedKey>>,
}

impl Resolver {
    fn load(config: &Tls, provider: &rustls::crypto::CryptoProvider) -> Result<Resolver, String> {
        let default = Arc::new(certified_key(
            "tls.cert_file",
            &config.cert_file,
            &config.key_file,
            provider,
        )?);
        let mut by_name = HashMap::new();
        for (
            i,
            SniCertConfig {
                names,
                cert_file,
                key_file,
            },
        ) in config.sni.iter().enumerate()
        {
            let key = Arc::new(certified_key("tls.sni", cert_file, key_file, provider)?);
            if names.is_empty() {
                return Err(format!("tls.sni[{i}] ({cert_file}) has no names"));
            }
            for name in names {
                by_name.insert(name.to_ascii_lowercase(), key.clone());
            }
        }
        Ok(Resolver { default, by_name })
    }

    fn pick(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name.map(|n| n.to_ascii_lowercase()) else {
            return self.default.clone();
        };
        if let Some(key) = self.by_name.get(&name) {
            return key.clone();
        }
        let wildcard = name.split_once('.').map(|(_, rest)| format!("*.{rest}"));
        wildcard
            .and_then(|w| self.by_name.get(&w).cloned())
            .unwrap_or_else(|| self.default.clone())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()))
    }
}

/// A certificate chain and its key from PEM files, checked to belong together.
fn certified_key(
    field: &str,
    cert_file: &str,
    key_file: &str,
    provider: &rustls::crypto::CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("{field}: cannot read certificates from {cert_file}: {e}"))?;
    if chain.is_empty() {
        return Err(format!("{field}: no certificate in {cert_file}"));
    }
    if key_file.is_empty() {
        return Err(format!("{field}: {cert_file} has no key_file"));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| format!("{field}: cannot read a private key from {key_file}: {e}"))?;
    let certified = CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("{field}: {cert_file} and {key_file}: {e}"))?;
    Ok(certified)
}

/// `shardcast cert --self-signed HOST`: a certificate for HOST (and `localhost`, 127.0.0.1,
/// ::1) and its key, written as PEM to `cert` and `key`.
pub fn write_self_signed(host: &str, cert: &Path, key: &Path) -> Result<(), String> {
    let mut names = vec![host.to_string()];
    for extra in ["localhost", "127.0.0.1", "::1"] {
        if !names.iter().any(|n| n == extra) {
            names.push(extra.to_string());
        }
    }
    let certified = rcgen::generate_simple_self_signed(names)
        .map_err(|e| format!("cannot make a certificate for {host}: {e}"))?;
    std::fs::write(cert, certified.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert.display()))?;
    write_private(key, certified.signing_key.serialize_pem().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", key.display()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str, host: &str) -> (String, String) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        write_self_signed(host, &cert, &key).unwrap();
        (cert.display().to_string(), key.display().to_string())
    }

    #[test]
    fn sni_picks_the_certificate_named_and_falls_back_to_the_default() {
        let dir = std::env::temp_dir().join(format!("shardcast-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_file, key_file) = pair(&dir, "default", "default.test");
        let (a_cert, a_key) = pair(&dir, "a", "a.test");
        let (w_cert, w_key) = pair(&dir, "w", "x.wild.test");
        let config = Tls {
            cert_file,
            key_file,
            sni: vec![
                SniCertConfig {
                    names: vec!["A.test".into()],
                    cert_file: a_cert,
                    key_file: a_key,
                },
                SniCertConfig {
                    names: vec!["*.wild.test".into()],
                    cert_file: w_cert,
                    key_file: w_key,
                },
            ],
            ..Tls::default()
        };
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let resolver = Resolver::load(&config, &provider).unwrap();
        let leaf = |k: Arc<CertifiedKey>| k.cert[0].clone();
        let default = leaf(resolver.pick(None));
        let a = leaf(resolver.pick(Some("a.test")));
        assert_ne!(a, default);
        assert_eq!(
            leaf(resolver.pick(Some("A.TEST"))),
            a,
            "names are case-blind"
        );
        let w = leaf(resolver.pick(Some("x.wild.test")));
        assert_ne!(w, default);
        assert_ne!(w, a);
        assert_eq!(
            leaf(resolver.pick(Some("y.wild.test"))),
            w,
            "one wildcard label"
        );
        assert_eq!(
            leaf(resolver.pick(Some("z.y.wild.test"))),
            default,
            "only one label"
        );
        assert_eq!(leaf(resolver.pick(Some("other.test"))), default);

        // A key that is not the certificate's is refused with both files named.
        let mut wrong = config.clone();
        wrong.key_file = config.sni[0].key_file.clone();
        let err = TlsSetup::load(&wrong)
            .err()
            .expect("mismatched key refused");
        assert!(err.contains("tls.cert_file"), "{err}");
        // A missing file names itself.
        let mut missing = config.clone();
        missing.cert_file = dir.join("nothing.pem").display().to_string();
        let err = TlsSetup::load(&missing)
            .err()
            .expect("missing file refused");
        assert!(err.contains("nothing.pem"), "{err}");
        // No certificate: no TLS.
        assert!(TlsSetup::load(&Tls::default()).unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
