//! A client certificate's node identity: the URI SAN `spiffe://meshplug/node/<node id>`
//! (what `meshplug pki issue --node-id` writes; a user's own CA issues the same). With a
//! client CA configured, an ADS or stats stream may speak only for the node its certificate
//! names.

use rustls_pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The URI SAN prefix of a node identity.
pub const NODE_URI_PREFIX: &str = "spiffe://meshplug/node/";

/// The URI of `node_id`'s identity.
pub fn node_uri(node_id: &str) -> String {
    format!("{NODE_URI_PREFIX}{node_id}")
}

/// The node ids a certificate names (its `spiffe://meshplug/node/…` URI SANs).
pub fn node_ids(cert: &CertificateDer<'_>) -> Result<Vec<String>, String> {
    let (_, cert) = X509Certificate::from_der(cert.as_ref())
        .map_err(|e| format!("the client certificate does not parse: {e}"))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("the client certificate's SAN does not parse: {e}"))?;
    Ok(san
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|name| match name {
                    GeneralName::URI(uri) => uri.strip_prefix(NODE_URI_PREFIX),
                    _ => None,
                })
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

/// Whether the peer that presented `certs` (leaf first; already verified against the client
/// CA by the handshake) may speak for `node_id`: `Err` says why not, for the client.
pub fn authorize(node_id: &str, certs: Option<&[CertificateDer<'_>]>) -> Result<(), String> {
    let Some(leaf) = certs.and_then(<[_]>::first) else {
        return Err(format!(
            "node {node_id:?} refused: this control plane binds nodes to client certificates, \
             and the connection presented none (a certificate naming {} is needed)",
            node_uri(node_id)
        ));
    };
    let ids = node_ids(leaf)?;
    if ids.iter().any(|id| id == node_id) {
        return Ok(());
    }
    Err(match ids.as_slice() {
        [] => format!(
            "node {node_id:?} refused: the client certificate names no node identity (a URI SAN \
             {NODE_URI_PREFIX}<node id>)"
        ),
        ids => format!(
            "node {node_id:?} refused: the client certificate is for {}",
            ids.iter()
                .map(|id| node_uri(id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}
