//! Which web pages may open the signaling WebSocket.
//!
//! A browser lets any page open a WebSocket to any address and sends the page's origin
//! with it; nothing else stops a page on another site from joining a room through the
//! browser of a user on the LAN (cross-site WebSocket hijacking). So `/ws` accepts an
//! upgrade only when its `Origin` names this server, the way the browser reached it (the
//! `Host` header), or an origin the operator allowed (`--allowed-origin`, for a reverse
//! proxy that serves lanmeet under another name). A request without `Origin` does not
//! come from a web page (the load generator, tests, scripts) and is accepted: the attack
//! needs a browser, and every browser sends `Origin` on WebSocket upgrades.

use axum::http::{header, HeaderMap, Uri};

/// An origin as browsers send it: scheme, host and port, lowercase, the scheme's default
/// port left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    /// Parses `scheme://host[:port]` (no path, query or user), e.g.
    /// `https://meet.example.org`. The message says what is wrong.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let bad = |why: &str| {
            format!("{text:?} is not an origin ({why}); write e.g. https://meet.example.org")
        };
        let uri: Uri = text.parse().map_err(|_| bad("not a URL"))?;
        let scheme = uri.scheme_str().ok_or_else(|| bad("no scheme"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("an origin has no user name"));
        }
        // `Uri` accepts "https://a/" and "https://a"; an origin has neither path nor query.
        let rest = &text[text
            .find(authority.as_str())
            .map_or(0, |i| i + authority.as_str().len())..];
        if !rest.is_empty() {
            return Err(bad("an origin has no path"));
        }
        Ok(Origin(format!(
            "{scheme}://{}",
            without_default_port(&authority.as_str().to_ascii_lowercase(), &scheme)
        )))
    }

    /// Host and port, as a `Host` header would carry them.
    fn authority(&self) -> &str {
        self.0.split_once("://").map_or("", |(_, a)| a)
    }

    fn scheme(&self) -> &str {
        self.0.split_once("://").map_or("", |(s, _)| s)
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn without_default_port<'a>(authority: &'a str, scheme: &str) -> &'a str {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority.strip_suffix(default).unwrap_or(authority)
}

/// The origins `/ws` accepts besides the server's own.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: Vec<Origin>,
}

impl OriginPolicy {
    /// A policy accepting the server's own origin and `allowed`.
    pub fn new(allowed: Vec<Origin>) -> Self {
        OriginPolicy { allowed }
    }

    /// Whether a WebSocket upgrade with these headers (and request `uri`, whose
    /// authority stands in for `Host` over HTTP/2) may proceed; the error is the text
    /// for the refusal.
    pub fn check(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), String> {
        let Some(value) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let sent = value.to_str().unwrap_or("(not text)");
        let origin = Origin::parse(sent).map_err(|_| refusal(sent))?;
        if self.allowed.contains(&origin) {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| uri.authority().map(|a| a.as_str()))
            .map(str::to_ascii_lowercase);
        match host {
            Some(host) if without_default_port(&host, origin.scheme()) == origin.authority() => {
                Ok(())
            }
            _ => Err(refusal(sent)),
        }
    }
}

fn refusal(origin: &str) -> String {
    format!(
        "Refused: a page from {origin} may not open a lanmeet connection here. Open lanmeet \
         at its own address; if it is served through a proxy under another name, the \
         operator can allow that origin with --allowed-origin."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).expect("header"));
        }
        if let Some(o) = host {
            h.insert(header::HOST, HeaderValue::from_str(o).expect("header"));
        }
        h
    }

    #[test]
    fn origins_parse_to_their_canonical_form() {
        let ok = |s: &str| Origin::parse(s).map(|o| o.to_string());
        assert_eq!(
            ok("https://Meet.Example.org"),
            Ok("https://meet.example.org".into())
        );
        assert_eq!(
            ok("https://meet.example.org:443"),
            Ok("https://meet.example.org".into())
        );
        assert_eq!(
            ok("http://10.0.0.2:8080"),
            Ok("http://10.0.0.2:8080".into())
        );
        assert_eq!(ok("http://[::1]:80"), Ok("http://[::1]".into()));
        for bad in [
            "meet.example.org",
            "ftp://a",
            "https://a/path",
            "https://u@a",
            "null",
            "",
        ] {
            assert!(Origin::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn same_host_or_allowed_origins_pass() {
        let uri = Uri::from_static("/ws");
        let policy = OriginPolicy::new(vec![
            Origin::parse("https://meet.example.org").expect("origin")
        ]);
        let check = |o: Option<&str>, h: Option<&str>| policy.check(&headers(o, h), &uri).is_ok();
        assert!(
            check(None, Some("10.0.0.2:8443")),
            "no Origin: not a browser page"
        );
        assert!(check(Some("https://10.0.0.2:8443"), Some("10.0.0.2:8443")));
        assert!(check(Some("http://LOCALHOST:8080"), Some("localhost:8080")));
        assert!(check(Some("https://host.local"), Some("host.local:443")));
        assert!(check(
            Some("https://meet.example.org"),
            Some("127.0.0.1:8443")
        ));
        assert!(!check(Some("https://evil.example"), Some("10.0.0.2:8443")));
        assert!(!check(Some("https://10.0.0.2:9999"), Some("10.0.0.2:8443")));
        assert!(!check(Some("null"), Some("10.0.0.2:8443")));
        assert!(!check(Some("https://10.0.0.2:8443"), None));
        let h2 = Uri::from_static("https://10.0.0.2:8443/ws");
        assert!(policy
            .check(&headers(Some("https://10.0.0.2:8443"), None), &h2)
            .is_ok());
    }
}
