//! The HTTPS certificate: a given one, or a self-signed one generated on first start and
//! kept in the data directory, so browsers that accepted it once keep accepting it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::info;

use crate::config::Config;
use crate::net;

/// Paths of the certificate chain and key to serve.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// The certificate to use: `--cert/--key` if given, else the generated one in the data
/// directory (created if missing).
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
    if files.cert.exists() && files.key.exists() {
        return Ok(files);
    }
    let names = subject_alt_names(&net::hostname(), &net::local_ipv4s());
    generate(&names, &files)?;
    info!(path = %files.cert.display(), ?names, "generated a self-signed certificate");
    Ok(files)
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

fn generate(names: &[String], files: &CertFiles) -> anyhow::Result<()> {
    let certified = rcgen::generate_simple_self_signed(names.to_vec())
        .context("generating the TLS certificate")?;
    write_private(&files.key, certified.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, certified.cert.pem())
        .with_context(|| format!("writing {}", files.cert.display()))?;
    Ok(())
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

    #[test]
    fn certificate_is_generated_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("lanmeet-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = Config {
            data_dir: dir.clone(),
            ..Config::default()
        };
        let first = ensure_certificate(&config).expect("generated");
        let pem = std::fs::read(&first.cert).expect("cert written");
        let again = ensure_certificate(&config).expect("reused");
        assert_eq!(pem, std::fs::read(&again.cert).expect("cert kept"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
