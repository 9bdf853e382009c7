//! Host names as Slipway keys them (the proxy's route table, custom domains, settings).

/// The host a request is for, as the route table keys it: lower case, no port, no
/// trailing dot, ASCII (`xn--` punycode) only. `None` for anything that is not a
/// well-formed host name (IP addresses included: sites are reached by name).
pub fn normalize_host(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 260 || raw.starts_with('[') {
        return None;
    }
    let host = match raw.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => raw,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let host = host.to_ascii_lowercase();
    let well_formed = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    });
    let numeric = host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (well_formed && !numeric).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalize_to_one_key() {
        for raw in [
            "blog.localhost",
            "BLOG.LocalHost",
            "blog.localhost.",
            "blog.localhost:8080",
            "Blog.Localhost.:8080",
            " blog.localhost ",
        ] {
            assert_eq!(
                normalize_host(raw).as_deref(),
                Some("blog.localhost"),
                "{raw}"
            );
        }
        assert_eq!(
            normalize_host("xn--bcher-kva.example").as_deref(),
            Some("xn--bcher-kva.example")
        );
    }

    #[test]
    fn malformed_hosts_route_nowhere() {
        for raw in [
            "",
            ".",
            "blog..localhost",
            "blog.localhost..",
            "bücher.example",
            "blog.localhost:",
            "blog.localhost:80:80",
            "blog.localhost:http",
            "-blog.localhost",
            "blog_x.localhost",
            "blog.localhost/evil",
            "blog.localhost@other.localhost",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "*.localhost",
            &format!("{}.localhost", "a".repeat(64)),
            &"a.".repeat(130),
        ] {
            assert_eq!(normalize_host(raw), None, "{raw:?}");
        }
    }
}
