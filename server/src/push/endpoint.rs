//! Where the server agrees to send Web Push requests. An endpoint comes from
//! a client, so without rules it would let anyone make the server call
//! addresses inside its own network (SSRF): endpoints must be `https`, may
//! not name a loopback, private, link-local or otherwise special address,
//! and are never followed through redirects. Host names are checked again
//! when they resolve, on every connection (`PublicResolver`), so a name that
//! later points inward is refused too.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};

/// Why an endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Not a URL.
    #[error("the endpoint is not a URL")]
    NotUrl,
    /// Not `https`.
    #[error("the endpoint must be https")]
    NotHttps,
    /// A loopback, private, link-local or otherwise non-public address.
    #[error("the endpoint's address is not public")]
    NotPublic,
}

/// Checks an endpoint a client registers (and the server is about to call).
pub fn check(endpoint: &str, allow_private: bool) -> Result<reqwest::Url, EndpointError> {
    let url = reqwest::Url::parse(endpoint).map_err(|_| EndpointError::NotUrl)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(EndpointError::NotUrl);
    }
    let host = url.host().ok_or(EndpointError::NotUrl)?;
    if allow_private {
        return match url.scheme() {
            "https" | "http" => Ok(url),
            _ => Err(EndpointError::NotHttps),
        };
    }
    if url.scheme() != "https" {
        return Err(EndpointError::NotHttps);
    }
    match host {
        url::Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => Err(EndpointError::NotPublic),
        url::Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => Err(EndpointError::NotPublic),
        url::Host::Domain(name) if is_local_name(name) => Err(EndpointError::NotPublic),
        _ => Ok(url),
    }
}

fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost") || name.ends_with(".local")
}

/// Whether an address is one the public internet routes.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                // 100.64.0.0/10, carrier-grade NAT
                || (a == 100 && (64..128).contains(&b))
                // 198.18.0.0/15, benchmarking
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // 2001:db8::/32 documentation
                || (first == 0x2001 && v6.segments()[1] == 0x0db8))
        }
    }
}

/// A resolver that drops every non-public address a name resolves to, and
/// fails when none is left.
#[derive(Debug, Clone, Copy)]
pub struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = format!("{}:0", name.as_str());
            let found: Vec<SocketAddr> = tokio::net::lookup_host(host)
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err("the name resolves to no public address".into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inward_and_plain_endpoints_are_refused() {
        for (endpoint, why) in [
            ("http://push.example.com/x", EndpointError::NotHttps),
            ("https://127.0.0.1/x", EndpointError::NotPublic),
            ("https://10.0.0.1/x", EndpointError::NotPublic),
            ("https://192.168.1.5/x", EndpointError::NotPublic),
            ("https://169.254.169.254/latest", EndpointError::NotPublic),
            ("https://[::1]/x", EndpointError::NotPublic),
            ("https://[fd00::1]/x", EndpointError::NotPublic),
            ("https://[::ffff:127.0.0.1]/x", EndpointError::NotPublic),
            ("https://localhost/x", EndpointError::NotPublic),
            ("ftp://push.example.com/x", EndpointError::NotHttps),
            ("not a url", EndpointError::NotUrl),
            ("https://user:pw@push.example.com/x", EndpointError::NotUrl),
        ] {
            assert_eq!(check(endpoint, false), Err(why), "{endpoint}");
        }
        assert!(
            check(
                "https://updates.push.services.mozilla.com/wpush/v2/abc",
                false
            )
            .is_ok()
        );
        assert!(check("https://8.8.8.8/x", false).is_ok());
        assert!(check("http://127.0.0.1:9/x", true).is_ok());
        assert!(check("ftp://127.0.0.1:9/x", true).is_err());
    }
}
