//! Certificates for the TLS tests, made with rcgen: a private CA and a
//! server certificate for `localhost` and 127.0.0.1 signed by it.

#![allow(dead_code)]

use std::sync::OnceLock;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

/// The test PKI (made once per test binary).
pub struct Pki {
    /// The CA's certificate: what a client must trust.
    pub ca_pem: String,
    /// The server's certificate, then the CA's.
    pub chain_pem: String,
    /// The server certificate's private key.
    pub key_pem: String,
    /// The server's certificate alone, DER.
    pub server_der: Vec<u8>,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sylvan test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        Pki {
            ca_pem: ca.pem(),
            chain_pem: format!("{}{}", cert.pem(), ca.pem()),
            key_pem: key.serialize_pem(),
            server_der: cert.der().to_vec(),
        }
    })
}

/// A fresh directory under the system's temporary directory, for this
/// process and `name`.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sylvan-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
