//! Where an OAuth authorization server publishes its metadata (RFC 8414 §3),
//! in one place: the verifier's key discovery, the client shim and the
//! conformance suite derive the URLs from the issuer identifier with this.
//! Pure string work on the identifier as configured: no normalization (RFC
//! 8414 §3.3 compares the metadata `issuer` with the identifier exactly).

/// The RFC 8414 §3 well-known suffix.
pub const WELL_KNOWN_AUTHORIZATION_SERVER: &str = "/.well-known/oauth-authorization-server";

/// Why an issuer identifier has no metadata URL (RFC 8414 §2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataUrlError {
    /// Not an `http://` or `https://` URL.
    #[error("not an http(s) URL")]
    NotHttp,
    /// The URL has no host.
    #[error("no host")]
    NoHost,
    /// RFC 8414 §2: the issuer identifier has "no query or fragment components".
    #[error("has a query or fragment (RFC 8414 §2)")]
    QueryOrFragment,
}

/// The RFC 8414 metadata URLs of `issuer`, in the order they are tried: the
/// §3.1 form (the well-known suffix inserted between the host and the path,
/// any terminating `/` removed), then, for an issuer with a path, the appended
/// form some deployments serve. An issuer without a path has one URL.
///
/// # Errors
///
/// [`MetadataUrlError`] when `issuer` is not an absolute http(s) URL with a
/// host and without query or fragment (RFC 8414 §2).
pub fn authorization_server_metadata_urls(issuer: &str) -> Result<Vec<String>, MetadataUrlError> {
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or(MetadataUrlError::NotHttp)?;
    if issuer.contains(['?', '#']) {
        return Err(MetadataUrlError::QueryOrFragment);
    }
    let host_len = rest.find('/').unwrap_or(rest.len());
    if host_len == 0 {
        return Err(MetadataUrlError::NoHost);
    }
    let (origin, path) = issuer.split_at(issuer.len() - rest.len() + host_len);
    let path = path.trim_end_matches('/');
    let suffix = WELL_KNOWN_AUTHORIZATION_SERVER;
    if path.is_empty() {
        return Ok(vec![format!("{origin}{suffix}")]);
    }
    Ok(vec![
        format!("{origin}{suffix}{path}"),
        format!("{origin}{path}{suffix}"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8414_s3_1_example_inserted_form_first_then_appended() {
        // The example of RFC 8414 §3.1: issuer https://example.com/issuer1.
        assert_eq!(
            authorization_server_metadata_urls("https://example.com/issuer1").unwrap(),
            [
                "https://example.com/.well-known/oauth-authorization-server/issuer1",
                "https://example.com/issuer1/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            authorization_server_metadata_urls("http://127.0.0.1:8080/a/b/").unwrap(),
            [
                "http://127.0.0.1:8080/.well-known/oauth-authorization-server/a/b",
                "http://127.0.0.1:8080/a/b/.well-known/oauth-authorization-server",
            ]
        );
    }

    #[test]
    fn rfc8414_s3_issuer_without_path_has_one_url() {
        for issuer in [
            "https://example.com",
            "https://example.com/",
            "https://example.com//",
        ] {
            assert_eq!(
                authorization_server_metadata_urls(issuer).unwrap(),
                ["https://example.com/.well-known/oauth-authorization-server"]
            );
        }
    }

    #[test]
    fn rfc8414_s2_identifiers_that_are_not_issuers_are_refused() {
        use MetadataUrlError::*;
        for (bad, why) in [
            ("host/tenant", NotHttp),
            ("ftp://x", NotHttp),
            ("", NotHttp),
            ("http://", NoHost),
            ("https:///path", NoHost),
            ("http://h/p?x=1", QueryOrFragment),
            ("http://h#f", QueryOrFragment),
        ] {
            assert_eq!(authorization_server_metadata_urls(bad), Err(why), "{bad}");
        }
    }
}
