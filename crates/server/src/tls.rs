//! The HTTPS certificate: a given one, or a self-signed one generated in the data
//! directory, so browsers that accepted it once keep accepting it.
//!
//! The generated certificate is valid for about a year ([`VALIDITY`]) and names the
//! machine as it is now: at each start it is renewed when it expires within
//! [`RENEW_BEFORE`], and regenerated when the host name or local addresses are no
//! longer all among its names. Both keep the key pair, so a browser that pinned the
//! key by accepting it is not surprised more than needed.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tracing::{info, warn};

use crate::config::Config;
use crate::net;

/// How long a generated certificate is valid (browsers refuse more than 398 days).
pub const VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// A generated certificate expiring sooner than this is renewed at start.
pub const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// A generated certificate valid longer than this from now was made by an older
/// lanmeet (valid until 4096): it is replaced.
const LONGEST_KEPT: Duration = Duration::from_secs(398 * 24 * 3600);

/// Paths of the certificate chain and key to serve.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The certificate to use: `--cert/--key` if given, else the generated one in the data
/// directory (created, renewed or regenerated as needed).
pub fn ensure_certificate(config: &Config) -> anyhow::Result<CertFiles> {
    if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
        return Ok(CertFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    let files = CertFiles {
        cert: config.data_dir.join("cert.pem"),
        key: config.data_dir.join("key.pem"),
    };
    let names = subject_alt_names(&net::hostname(), &net::local_ipv4s());
    if let Some(reason) = ensure_generated(&files, &names, SystemTime::now())? {
        info!(path = %files.cert.display(), ?names, reason, "generated a self-signed certificate");
    }
    Ok(files)
}

/// What a certificate says about itself, as far as renewal cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity, seconds since the Unix epoch.
    pub not_before: i64,
    /// End of validity, seconds since the Unix epoch.
    pub not_after: i64,
    /// Its DNS names and IP addresses (as text).
    pub names: Vec<String>,
}

/// Reads validity and names of the first certificate in `pem`.
pub fn inspect(pem: &[u8]) -> anyhow::Result<CertInfo> {
    use x509_parser::extensions::GeneralName;
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).context("reading PEM")?;
    let cert = pem.parse_x509().context("parsing the certificate")?;
    let mut names = Vec::new();
    if let Some(san) = cert
        .subject_alternative_name()
        .context("reading subject alternative names")?
    {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => names.push(n.to_string()),
                GeneralName::IPAddress(bytes) => {
                    let ip = match bytes.len() {
                        4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                        16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    Ok(CertInfo {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        names,
    })
}

/// Makes sure `files` hold a generated certificate for `names` fit for use at `now`;
/// returns why one was (re)generated, or `None` if the existing one was kept.
pub fn ensure_generated(
    files: &CertFiles,
    names: &[String],
    now: SystemTime,
) -> anyhow::Result<Option<&'static str>> {
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let key = std::fs::read_to_string(&files.key).ok();
    let reason = match (std::fs::read(&files.cert), &key) {
        (Ok(pem), Some(_)) => match inspect(&pem) {
            Err(e) => {
                warn!("the generated certificate is unreadable ({e:#}); making a new one");
                Some("unreadable")
            }
            Ok(info) if info.not_after < now_s + RENEW_BEFORE.as_secs() as i64 => {
                Some("expires soon")
            }
            Ok(info) if info.not_after > now_s + LONGEST_KEPT.as_secs() as i64 => {
                Some("valid for longer than browsers accept")
            }
            Ok(info) if !names.iter().all(|n| info.names.contains(n)) => {
                Some("the machine's name or addresses changed")
            }
            Ok(_) => None,
        },
        _ => Some("none yet"),
    };
    if let Some(reason) = reason {
        // Keep the key pair when there is a readable one.
        let key = key.and_then(|pem| rcgen::KeyPair::from_pem(&pem).ok());
        generate(names, files, key, now_s)?;
        return Ok(Some(reason));
    }
    Ok(None)
}

/// The names a browser on the LAN may use for this machine.
pub fn subject_alt_names(hostname: &str, ips: &[IpAddr]) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if !hostname.is_empty() && hostname != "localhost" {
        names.push(hostname.to_string());
        if !hostname.ends_with(".local") {
            names.push(format!("{hostname}.local"));
        }
    }
    names.push("127.0.0.1".into());
    names.push("::1".into());
    for ip in ips {
        let s = ip.to_string();
        if !names.contains(&s) {
            names.push(s);
        }
    }
    names
}

fn generate(
    names: &[String],
    files: &CertFiles,
    key: Option<rcgen::KeyPair>,
    now_s: i64,
) -> anyhow::Result<()> {
    let date = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs).context("certificate date out of range")
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).context("certificate names")?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "lanmeet");
    // A day's margin for clocks that are a little behind.
    params.not_before = date(now_s - 24 * 3600)?;
    params.not_after = date(now_s + VALIDITY.as_secs() as i64)?;
    let key = match key {
        Some(key) => key,
        None => {
            let key = rcgen::KeyPair::generate().context("generating the TLS key")?;
            write_private(&files.key, key.serialize_pem().as_bytes())?;
            key
        }
    };
    let cert = params
        .self_signed(&key)
        .context("generating the TLS certificate")?;
    write_private(&files.cert, cert.pem().as_bytes())
}

/// Writes the key readable only by its owner.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans_cover_host_mdns_and_ips() {
        let ips = ["192.168.1.20".parse().expect("ip")];
        let names = subject_alt_names("lab-pc", &ips);
        for want in [
            "localhost",
            "lab-pc",
            "lab-pc.local",
            "127.0.0.1",
            "192.168.1.20",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{want} missing in {names:?}"
            );
        }
    }

    fn files_in(tag: &str) -> (PathBuf, CertFiles) {
        let dir = std::env::temp_dir().join(format!("lanmeet-tls-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let files = CertFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        (dir, files)
    }

    const DAY: u64 = 24 * 3600;

    #[test]
    fn certificate_is_generated_once_and_kept() {
        let (dir, files) = files_in("kept");
        let config = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let first = ensure_certificate(&config).expect("generated");
        let pem = std::fs::read(&first.cert).expect("cert written");
        let again = ensure_certificate(&config).expect("reused");
        assert_eq!(pem, std::fs::read(&again.cert).expect("cert kept"));
        assert_eq!(first.cert, files.cert);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_year_of_validity_renewed_before_expiry_with_the_same_key() {
        let (dir, files) = files_in("renew");
        let names = subject_alt_names("lab-pc", &["192.168.1.20".parse().expect("ip")]);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        assert_eq!(
            ensure_generated(&files, &names, t0).expect("ok"),
            Some("none yet")
        );
        let info = inspect(&std::fs::read(&files.cert).expect("cert")).expect("parses");
        let t0s = 1_780_000_000i64;
        assert!(info.not_before <= t0s && info.not_before >= t0s - 2 * DAY as i64);
        assert_eq!(info.not_after, t0s + 365 * DAY as i64);
        for n in &names {
            assert!(info.names.contains(n), "{n} missing in {:?}", info.names);
        }
        let key = std::fs::read(&files.key).expect("key");
        // Months later: kept. Eleven months and more: renewed, same key.
        let later = t0 + Duration::from_secs(300 * DAY);
        assert_eq!(ensure_generated(&files, &names, later).expect("ok"), None);
        let late = t0 + Duration::from_secs(340 * DAY);
        assert_eq!(
            ensure_generated(&files, &names, late).expect("ok"),
            Some("expires soon")
        );
        let renewed = inspect(&std::fs::read(&files.cert).expect("cert")).expect("parses");
        assert_eq!(renewed.not_after, t0s + (340 + 365) * DAY as i64);
        assert_eq!(std::fs::read(&files.key).expect("key"), key, "key kept");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn new_addresses_and_old_certificates_bring_a_new_one() {
        let (dir, files) = files_in("names");
        let now = SystemTime::now();
        let home = subject_alt_names("lab-pc", &["192.168.1.20".parse().expect("ip")]);
        ensure_generated(&files, &home, now).expect("generated");
        let key = std::fs::read(&files.key).expect("key");
        let office = subject_alt_names("lab-pc", &["10.0.0.7".parse().expect("ip")]);
        assert_eq!(
            ensure_generated(&files, &office, now).expect("ok"),
            Some("the machine's name or addresses changed")
        );
        let info = inspect(&std::fs::read(&files.cert).expect("cert")).expect("parses");
        assert!(
            info.names.contains(&"10.0.0.7".to_string()),
            "{:?}",
            info.names
        );
        assert_eq!(std::fs::read(&files.key).expect("key"), key, "key kept");
        assert_eq!(ensure_generated(&files, &office, now).expect("ok"), None);
        // One from an older lanmeet (rcgen's default validity, 1975 to 4096) is replaced.
        let old = rcgen::generate_simple_self_signed(office.clone()).expect("old style");
        std::fs::write(&files.cert, old.cert.pem()).expect("write");
        assert_eq!(
            ensure_generated(&files, &office, now).expect("ok"),
            Some("valid for longer than browsers accept")
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
