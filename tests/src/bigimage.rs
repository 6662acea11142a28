//! A large multi-layer OCI image layout for pull/unpack benchmarks, written in a streaming
//! way (bounded memory). File contents are deterministic pseudo-random bytes mixed with
//! repeated text, so gzip shrinks them to roughly half, like real images.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::image::{
    host_oci_arch, MEDIA_CONFIG, MEDIA_LAYER_GZIP, MEDIA_MANIFEST, REF_NAME_ANNOTATION,
};

/// A writer that hashes and counts what passes through.
struct Hashing<W: Write> {
    inner: W,
    h: Sha256,
    n: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What [`big_image_layout`] wrote.
#[derive(Debug, Clone)]
pub struct BigImage {
    pub dir: PathBuf,
    /// Sum of the uncompressed layer tars.
    pub uncompressed: u64,
    /// Sum of the compressed layer blobs.
    pub compressed: u64,
    pub layers: usize,
    pub files: u64,
}

fn fill(seed: &mut u64, buf: &mut [u8]) {
    // Half the buffer pseudo-random (incompressible), half repeated text.
    let half = buf.len() / 2;
    for chunk in buf[..half].chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let b = seed.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
    let text = b"berth benchmark payload: the quick brown fox jumps over the lazy dog. ";
    for (i, b) in buf[half..].iter_mut().enumerate() {
        *b = text[i % text.len()];
    }
}

/// Write an image of `layers` gzip layers of about `mib_per_layer` MiB uncompressed each.
pub fn big_image_layout(dir: &Path, layers: usize, mib_per_layer: u64) -> BigImage {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir blobs");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    let (mut total_u, mut total_c, mut files) = (0u64, 0u64, 0u64);
    let sizes = [4 << 10, 64 << 10, 512 << 10, 2 << 20, 8 << 20];
    let mut buf = vec![0u8; 8 << 20];
    for l in 0..layers {
        let tmp = dir.join(format!("layer-{l}.tmp"));
        let file = std::fs::File::create(&tmp).expect("layer tmp");
        let comp = Hashing {
            inner: std::io::BufWriter::with_capacity(1 << 20, file),
            h: Sha256::new(),
            n: 0,
        };
        let gz = GzEncoder::new(comp, flate2::Compression::fast());
        let unc = Hashing {
            inner: gz,
            h: Sha256::new(),
            n: 0,
        };
        let mut tar = tar::Builder::new(unc);
        let budget = mib_per_layer << 20;
        let mut written = 0u64;
        let mut i = 0usize;
        while written < budget {
            let size = sizes[i % sizes.len()]
                .min((budget - written) as usize)
                .max(1);
            fill(&mut seed, &mut buf[..size]);
            let mut h = tar::Header::new_gnu();
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_entry_type(tar::EntryType::Regular);
            let name = format!("layer{l}/dir{}/file{i}.bin", i % 16);
            tar.append_data(&mut h, name, &buf[..size])
                .expect("tar append");
            written += size as u64;
            i += 1;
            files += 1;
        }
        let unc = tar.into_inner().expect("tar finish");
        let diff = format!("sha256:{}", hex::encode(unc.h.finalize()));
        total_u += unc.n;
        let mut comp = unc.inner.finish().expect("gzip finish");
        comp.flush().expect("flush");
        let digest_hex = hex::encode(comp.h.clone().finalize());
        total_c += comp.n;
        let size = comp.n;
        drop(comp);
        std::fs::rename(&tmp, dir.join("blobs/sha256").join(&digest_hex)).expect("rename layer");
        descs.push(json!({"mediaType": MEDIA_LAYER_GZIP, "digest": format!("sha256:{digest_hex}"), "size": size}));
        diff_ids.push(diff);
    }
    let put = |data: &[u8]| {
        let hex = hex::encode(Sha256::digest(data));
        std::fs::write(dir.join("blobs/sha256").join(&hex), data).expect("write blob");
        (format!("sha256:{hex}"), data.len() as u64)
    };
    let config = serde_json::to_vec(&json!({
        "architecture": host_oci_arch(), "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    }))
    .expect("config json");
    let (cd, cs) = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": cd, "size": cs},
        "layers": descs
    }))
    .expect("manifest json");
    let (md, ms) = put(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": MEDIA_MANIFEST, "digest": md, "size": ms,
            "platform": {"architecture": host_oci_arch(), "os": "linux"},
            "annotations": {REF_NAME_ANNOTATION: "latest"}}]
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index.json");
    BigImage {
        dir: dir.to_path_buf(),
        uncompressed: total_u,
        compressed: total_c,
        layers,
        files,
    }
}
