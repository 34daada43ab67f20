//! `meshplug pki`: a small CA for tests and small fleets, with `rcgen`. `init` makes the CA,
//! `server` the control plane's certificate (its DNS names and IP addresses), `issue` a
//! client certificate: for a node (`--node-id`, URI SAN `spiffe://meshplug/node/<id>`, what
//! the control plane binds the node id to) or for an admin client (`--client NAME`). Keys
//! are ECDSA P-256, written `0600`; a file that exists is not overwritten without `force`.
//! A user with their own CA issues the same SANs from it instead.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;
use crate::tls::identity::node_uri;

/// The CA's certificate and key under a pki folder.
pub const CA_CERT: &str = "ca.pem";
/// The CA's key.
pub const CA_KEY: &str = "ca-key.pem";

/// What a certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The control plane: these DNS names and IP addresses.
    Server(Vec<String>),
    /// A proxy (or its agent) speaking for this node id.
    Node(String),
    /// An admin client (the CLI, a dashboard), by name.
    Client(String),
}

impl Subject {
    /// The file stem: `server`, `node-<id>`, `client-<name>`.
    pub fn stem(&self) -> String {
        match self {
            Self::Server(_) => "server".into(),
            Self::Node(id) => format!("node-{}", file_safe(id)),
            Self::Client(name) => format!("client-{}", file_safe(name)),
        }
    }
}

fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '_',
        })
        .collect()
}

fn pki_error(e: impl std::fmt::Display) -> Error {
    Error::Pki(e.to_string())
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(300)).into();
    params.not_after = (now + std::time::Duration::from_secs(u64::from(days) * 86_400)).into();
}

/// Makes a CA in `dir`: `ca.pem` and `ca-key.pem`. Returns the certificate's path.
pub fn init(dir: &Path, days: u32, force: bool) -> Result<PathBuf, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "meshplug CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days);
    let key = KeyPair::generate().map_err(pki_error)?;
    let cert = params.self_signed(&key).map_err(pki_error)?;
    write_pair(dir, "ca", &cert.pem(), &key.serialize_pem(), force)
}

/// Issues a certificate for `subject`, signed by the CA in `dir`: `<stem>.pem` and
/// `<stem>-key.pem` in `out`. Returns the certificate's path.
pub fn issue(
    dir: &Path,
    subject: &Subject,
    out: &Path,
    days: u32,
    force: bool,
) -> Result<PathBuf, Error> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|e| {
            Error::Pki(format!(
                "reading {}: {e} (make a CA first: meshplug pki init --dir {})",
                path.display(),
                dir.display()
            ))
        })
    };
    let (cert, key) = issue_pem((&read(CA_CERT)?, &read(CA_KEY)?), subject, days)?;
    write_pair(out, &subject.stem(), &cert, &key, force)
}

/// Issues a certificate for `subject` signed by the CA `(certificate PEM, key PEM)`, in
/// memory: (certificate PEM, key PEM).
pub fn issue_pem(
    (ca_cert, ca_key): (&str, &str),
    subject: &Subject,
    days: u32,
) -> Result<(String, String), Error> {
    let ca_key = KeyPair::from_pem(ca_key).map_err(pki_error)?;
    let issuer = Issuer::from_ca_cert_pem(ca_cert, ca_key).map_err(pki_error)?;
    let mut params = params_for(subject)?;
    validity(&mut params, days);
    let key = KeyPair::generate().map_err(pki_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(pki_error)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn params_for(subject: &Subject) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let (common_name, eku) = match subject {
        Subject::Server(names) => {
            if names.is_empty() {
                return Err(Error::Pki(
                    "a server certificate needs at least one --name".into(),
                ));
            }
            params = CertificateParams::new(names.clone()).map_err(pki_error)?;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            (names[0].clone(), ExtendedKeyUsagePurpose::ServerAuth)
        }
        Subject::Node(id) => {
            params.subject_alt_names = vec![uri(&node_uri(id))?];
            (id.clone(), ExtendedKeyUsagePurpose::ClientAuth)
        }
        Subject::Client(name) => {
            params.subject_alt_names = vec![uri(&format!("spiffe://meshplug/client/{name}"))?];
            (name.clone(), ExtendedKeyUsagePurpose::ClientAuth)
        }
    };
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![eku];
    Ok(params)
}

fn uri(value: &str) -> Result<SanType, Error> {
    Ok(SanType::URI(value.try_into().map_err(|e| {
        Error::Pki(format!("{value:?} is not a valid URI SAN: {e}"))
    })?))
}

/// Writes `<stem>.pem` and `<stem>-key.pem` (the key `0600`), each through a temporary file
/// renamed into place, so a reader (Envoy's SDS, the control plane's reload) never sees half.
fn write_pair(
    dir: &Path,
    stem: &str,
    cert: &str,
    key: &str,
    force: bool,
) -> Result<PathBuf, Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let cert_path = dir.join(format!("{stem}.pem"));
    let key_path = dir.join(format!("{stem}-key.pem"));
    for path in [&cert_path, &key_path] {
        if path.exists() && !force {
            return Err(Error::Pki(format!(
                "{} exists; pass --force to replace it",
                path.display()
            )));
        }
    }
    for (path, text, mode) in [(&key_path, key, 0o600), (&cert_path, cert, 0o644)] {
        let tmp = path.with_extension("pem.tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(Error::io("creating", &tmp))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(Error::io("writing", &tmp))?;
        std::fs::rename(&tmp, path).map_err(Error::io("renaming", &tmp))?;
    }
    Ok(cert_path)
}

#[cfg(test)]
mod tests;
