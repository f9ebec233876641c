//! Where the sync may connect: the SSRF rule.
//!
//! An upstream page names the URLs of its files, and an upstream answer may redirect, so a
//! hostile upstream could make the mirror fetch (and, with a guessed hash, store and publish)
//! anything the mirror host can reach: cloud metadata endpoints, admin ports, intranet hosts.
//! The rule:
//!
//! * Only the upstream's origin (host and port), the XML-RPC endpoint's, and the configured
//!   file hosts (`sync.file_hosts`: `host` for any port, or `host:port`) are contacted, over
//!   http(s). Every URL is checked before the request is sent, and every redirect hop again
//!   (at most [`MAX_REDIRECTS`], loops refused).
//! * An IP literal the operator wrote (in `upstream`, `xmlrpc` or `file_hosts`) is allowed
//!   whatever its range; that is how a loopback test upstream works.
//! * A host *name* is resolved by [`FilteringResolver`], which drops private, loopback,
//!   link-local, unspecified, multicast and other non-public addresses (IPv4 and IPv6,
//!   including IPv4-mapped IPv6) unless `sync.allow_private_addresses` is set. The check is at
//!   connect time, on the addresses actually used, so DNS rebinding cannot slip past it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::{Host, Url};

/// Most redirect hops followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// The default `sync.file_hosts`: where PyPI serves its files.
pub const DEFAULT_FILE_HOSTS: &[&str] = &["files.pythonhosted.org"];

/// A URL the rule refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("URL `{url}` is not http(s)")]
    Scheme { url: String },
    #[error("URL `{url}` has no host")]
    NoHost { url: String },
    #[error(
        "host `{host}` of `{url}` is neither the upstream's nor a configured file host (sync.file_hosts); not contacted"
    )]
    Host { host: String, url: String },
    #[error("redirect loop at `{url}`")]
    Loop { url: String },
    #[error("more than {MAX_REDIRECTS} redirects, last to `{url}`")]
    TooManyRedirects { url: String },
    #[error(
        "host `{host}` resolves only to non-public addresses ({addrs}); refused (set sync.allow_private_addresses = true to allow)"
    )]
    PrivateAddress { host: String, addrs: String },
}

/// A `sync.file_hosts` entry (or upstream URL) that cannot be a host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sync.file_hosts entry `{entry}` must be a host name or IP, optionally with `:port`")]
pub struct InvalidFileHost {
    pub entry: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    host: Host<String>,
    /// `None`: any port.
    port: Option<u16>,
}

/// The hosts one sync may contact. See the module documentation.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    allowed: Vec<Allowed>,
    allow_private_addresses: bool,
}

impl HostPolicy {
    /// The upstream's origin, the XML-RPC endpoint's, and `file_hosts`.
    pub fn new(
        upstream: &Url,
        xmlrpc: Option<&Url>,
        file_hosts: &[String],
        allow_private_addresses: bool,
    ) -> Result<Self, InvalidFileHost> {
        let mut allowed = Vec::new();
        for url in std::iter::once(upstream).chain(xmlrpc) {
            let host = url
                .host()
                .map(|h| h.to_owned())
                .ok_or_else(|| InvalidFileHost { entry: redact(url) })?;
            allowed.push(Allowed {
                host: normalise(host),
                port: url.port_or_known_default(),
            });
        }
        for entry in file_hosts {
            let invalid = || InvalidFileHost {
                entry: entry.escape_debug().collect(),
            };
            let url = Url::parse(&format!("http://{}/", entry.trim())).map_err(|_| invalid())?;
            if url.path() != "/" || !url.username().is_empty() || url.password().is_some() {
                return Err(invalid());
            }
            let host = url.host().map(|h| h.to_owned()).ok_or_else(invalid)?;
            allowed.push(Allowed {
                host: normalise(host),
                port: url.port(),
            });
        }
        Ok(Self {
            allowed,
            allow_private_addresses,
        })
    }

    pub fn allow_private_addresses(&self) -> bool {
        self.allow_private_addresses
    }

    /// Whether a request to `url` may be sent.
    pub fn check(&self, url: &Url) -> Result<(), Refused> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::Scheme { url: redact(url) });
        }
        let host = url
            .host()
            .map(|h| normalise(h.to_owned()))
            .ok_or_else(|| Refused::NoHost { url: redact(url) })?;
        let port = url.port_or_known_default();
        let ok = self
            .allowed
            .iter()
            .any(|a| a.host == host && (a.port.is_none() || a.port == port));
        if ok {
            Ok(())
        } else {
            let shown = match port {
                Some(p) => format!("{host}:{p}"),
                None => host.to_string(),
            };
            Err(Refused::Host {
                host: shown.escape_debug().collect(),
                url: redact(url),
            })
        }
    }

    /// The check of one redirect hop: the rule, no loop, at most [`MAX_REDIRECTS`].
    pub fn check_redirect(&self, next: &Url, previous: &[Url]) -> Result<(), Refused> {
        if previous.contains(next) {
            return Err(Refused::Loop { url: redact(next) });
        }
        if previous.len() > MAX_REDIRECTS {
            return Err(Refused::TooManyRedirects { url: redact(next) });
        }
        self.check(next)
    }
}

fn normalise(host: Host<String>) -> Host<String> {
    match host {
        Host::Domain(d) => Host::Domain(d.trim_end_matches('.').to_ascii_lowercase()),
        ip => ip,
    }
}

/// The URL for display: userinfo (user name and password) replaced by `***`.
pub fn redact(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    if shown.set_username("***").is_err() {
        return format!("{}://***@…", url.scheme());
    }
    shown.to_string()
}

/// Whether an address is on the public internet. Private, loopback, link-local, unspecified,
/// multicast, broadcast, shared (CGNAT), benchmarking, documentation and reserved ranges are
/// not; IPv4-mapped, IPv4-compatible and NAT64 IPv6 addresses are judged by their IPv4 part.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let seg = ip.segments();
    // IPv4-compatible (deprecated) `::a.b.c.d`, and NAT64 `64:ff9b::a.b.c.d`.
    let embedded = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    if seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return is_public_v4(embedded);
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded);
    }
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xffc0) == 0xfe80 // link-local
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] & 0xfe00) == 0xfc00 // unique local
        || seg[0] == 0x2001 && seg[1] == 0x0db8 // documentation
        || seg[0] == 0x0100 && seg[1..4] == [0, 0, 0]) // discard-only
}

/// reqwest's DNS resolver for the sync: the system resolver, minus non-public addresses
/// unless they are allowed. IP literals never reach a resolver; [`HostPolicy::check`] covers
/// them.
#[derive(Debug, Clone)]
pub struct FilteringResolver {
    pub allow_private_addresses: bool,
}

impl reqwest::dns::Resolve for FilteringResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_private_addresses;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                addrs.into_iter().partition(|a| allow || is_public(a.ip()));
            if public.is_empty() && !refused.is_empty() {
                let shown: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
                let err: Box<dyn std::error::Error + Send + Sync> = Box::new(Refused::PrivateAddress {
                    host: host.escape_debug().collect(),
                    addrs: shown.join(", "),
                });
                return Err(err);
            }
            if !refused.is_empty() {
                tracing::warn!(host = %host.escape_debug(), "ignoring non-public addresses of an upstream host");
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn finding_03_only_the_upstream_and_file_hosts_are_contacted() {
        let p = HostPolicy::new(
            &u("https://pypi.org/simple/"),
            None,
            &["files.pythonhosted.org".into(), "127.0.0.1:9000".into()],
            false,
        )
        .unwrap();
        for ok in [
            "https://pypi.org/simple/x/",
            "https://PyPI.org./simple/x/",
            "https://files.pythonhosted.org/packages/a/b/x.whl",
            "http://files.pythonhosted.org:8080/x.whl",
            "http://127.0.0.1:9000/x.whl",
        ] {
            assert_eq!(p.check(&u(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "http://pypi.org/simple/",     // another port (80) of the upstream host
            "https://pypi.org:8443/",      // another port
            "http://127.0.0.1:9001/x.whl", // another port of a configured IP
            "http://127.0.0.2:9000/x.whl", // another loopback address
            "http://localhost:9000/x.whl", // a name, not the configured literal
            "http://169.254.169.254/latest/meta-data/iam",
            "http://[::ffff:127.0.0.1]:9000/x", // the configured IP, mapped: not the same
            "https://evil.example/x.whl",
        ] {
            assert!(matches!(p.check(&u(bad)), Err(Refused::Host { .. })), "{bad}");
        }
        assert!(matches!(
            p.check(&u("file:///etc/passwd")),
            Err(Refused::Scheme { .. })
        ));
        assert!(matches!(
            p.check(&u("ftp://pypi.org/x")),
            Err(Refused::Scheme { .. })
        ));
        let msg = p.check(&u("http://10.0.0.1/x")).unwrap_err().to_string();
        assert!(
            msg.contains("10.0.0.1:80") && msg.contains("sync.file_hosts"),
            "{msg}"
        );
    }

    #[test]
    fn finding_03_redirect_hops_loops_and_counts() {
        let p = HostPolicy::new(&u("http://127.0.0.1:8000/simple/"), None, &[], false).unwrap();
        let a = u("http://127.0.0.1:8000/a");
        let b = u("http://127.0.0.1:8000/b");
        assert_eq!(p.check_redirect(&b, std::slice::from_ref(&a)), Ok(()));
        assert!(matches!(
            p.check_redirect(&a, &[a.clone(), b.clone()]),
            Err(Refused::Loop { .. })
        ));
        let many: Vec<Url> = (0..=MAX_REDIRECTS)
            .map(|i| u(&format!("http://127.0.0.1:8000/{i}")))
            .collect();
        assert!(matches!(
            p.check_redirect(&b, &many),
            Err(Refused::TooManyRedirects { .. })
        ));
        assert!(matches!(
            p.check_redirect(&u("http://127.0.0.1:8001/"), &[a]),
            Err(Refused::Host { .. })
        ));
    }

    #[test]
    fn finding_03_non_public_addresses() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "151.101.0.223",
            "8.8.8.8",
            "2a04:4e42::223",
            "::ffff:151.101.0.223",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn finding_03_file_host_entries_are_checked() {
        let up = u("https://pypi.org/simple/");
        for bad in ["", "a/b", "user@host", "http://x", "a b"] {
            assert!(
                HostPolicy::new(&up, None, &[bad.into()], false).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn finding_09_redact_hides_userinfo() {
        assert_eq!(
            redact(&u("https://user:s3cret@pypi.example/simple/")),
            "https://***@pypi.example/simple/"
        );
        assert_eq!(
            redact(&u("https://tok@pypi.example/")),
            "https://***@pypi.example/"
        );
        assert_eq!(redact(&u("https://pypi.example/")), "https://pypi.example/");
    }

    #[tokio::test]
    async fn finding_03_resolver_refuses_names_of_loopback_addresses() {
        use reqwest::dns::Resolve as _;
        let strict = FilteringResolver {
            allow_private_addresses: false,
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let err = match strict.resolve(name).await {
            Ok(_) => panic!("localhost resolved"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("non-public") && err.contains("allow_private_addresses"),
            "{err}"
        );
        let lax = FilteringResolver {
            allow_private_addresses: true,
        };
        let addrs: Vec<SocketAddr> = lax.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }
}
