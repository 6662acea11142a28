//! An OCI image layout (image-spec 1.x) holding the busybox rootfs as one
//! gzip'd layer, for store/engine/build tests that need an image without a
//! registry.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::json;

use crate::bundle::{rootfs_entries, Entry};
use crate::host::sha256_hex;

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// What [`oci_image_layout`] wrote. Digests are `sha256:<hex>`.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub config_size: u64,
    /// Digest of the compressed (gzip) layer blob.
    pub layer_digest: String,
    pub layer_size: u64,
    /// sha256 of the uncompressed layer tar (the config's rootfs.diff_ids[0]).
    pub diff_id: String,
    /// The ref name annotation in index.json ("latest").
    pub ref_name: String,
}

impl ImageLayout {
    /// Path of the blob for `digest` ("sha256:<hex>").
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.dir.join("blobs/sha256").join(hex)
    }
}

/// The OCI architecture name of the host.
pub fn host_oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => panic!("no OCI architecture name for {other}"),
    }
}

/// The busybox rootfs as an uncompressed tar (deterministic: mtime 0, root-owned).
pub fn busybox_layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in rootfs_entries() {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match e {
            Entry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .expect("tar dir");
            }
            Entry::File { path, mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())
                    .expect("tar file");
            }
            Entry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).expect("tar symlink");
            }
        }
    }
    b.into_inner().expect("finish tar")
}

fn write_blob(dir: &Path, data: &[u8]) -> (String, u64) {
    let hex = sha256_hex(data);
    std::fs::write(dir.join("blobs/sha256").join(&hex), data).expect("write blob");
    (format!("sha256:{hex}"), data.len() as u64)
}

/// Writes an OCI image layout with a busybox image into `dir` (created if
/// missing) and returns its digests.
pub fn oci_image_layout(dir: &Path) -> ImageLayout {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir blobs/sha256");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");

    let tar = busybox_layer_tar();
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&tar).expect("gzip layer");
    let layer = gz.finish().expect("finish gzip");
    let (layer_digest, layer_size) = write_blob(dir, &layer);

    let config = json!({
        "architecture": host_oci_arch(),
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"]
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "berth-tests busybox fixture"}]
    });
    let config_bytes = serde_json::to_vec(&config).expect("serialize config");
    let (config_digest, config_size) = write_blob(dir, &config_bytes);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer_digest, "size": layer_size}]
    });
    let manifest_bytes = serde_json::to_vec(&manifest).expect("serialize manifest");
    let (manifest_digest, manifest_size) = write_blob(dir, &manifest_bytes);

    let ref_name = "latest".to_string();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "platform": {"architecture": host_oci_arch(), "os": "linux"},
            "annotations": {REF_NAME_ANNOTATION: ref_name}
        }]
    });
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec_pretty(&index).expect("serialize index"),
    )
    .expect("write index.json");

    ImageLayout {
        dir: dir.to_path_buf(),
        manifest_digest,
        manifest_size,
        config_digest,
        config_size,
        layer_digest,
        layer_size,
        diff_id,
        ref_name,
    }
}

/// The image `docker load` says it loaded (`Loaded image ID: sha256:…` for an untagged image,
/// `Loaded image: name:tag` otherwise). Panics, quoting the output, when it names none.
pub fn loaded_image_id(load_output: &str) -> String {
    load_output
        .lines()
        .find_map(|l| {
            l.strip_prefix("Loaded image ID: ")
                .or_else(|| l.strip_prefix("Loaded image: "))
        })
        .unwrap_or_else(|| panic!("docker load said: {load_output}"))
        .trim()
        .to_string()
}

/// `dir` (an OCI image layout) as a tarball `docker load` reads.
pub fn tar_layout(dir: &Path, tarball: &Path) {
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(tarball)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(st.success(), "tar of the OCI layout {}", dir.display());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::io::Read;

    fn read_verified(layout: &ImageLayout, desc: &Value) -> Vec<u8> {
        let digest = desc["digest"].as_str().unwrap();
        let data = std::fs::read(layout.blob_path(digest)).unwrap();
        assert_eq!(
            format!("sha256:{}", sha256_hex(&data)),
            digest,
            "digest mismatch"
        );
        assert_eq!(
            data.len() as u64,
            desc["size"].as_u64().unwrap(),
            "size mismatch"
        );
        data
    }

    #[test]
    fn layout_round_trips_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = oci_image_layout(&tmp.path().join("img"));

        let oci_layout: Value =
            serde_json::from_slice(&std::fs::read(layout.dir.join("oci-layout")).unwrap()).unwrap();
        assert_eq!(oci_layout["imageLayoutVersion"], "1.0.0");

        let index: Value =
            serde_json::from_slice(&std::fs::read(layout.dir.join("index.json")).unwrap()).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(m["annotations"][REF_NAME_ANNOTATION], "latest");
        assert_eq!(m["digest"], json!(layout.manifest_digest));
        assert_eq!(m["mediaType"], MEDIA_MANIFEST);

        let manifest: Value = serde_json::from_slice(&read_verified(&layout, m)).unwrap();
        assert_eq!(manifest["mediaType"], MEDIA_MANIFEST);
        assert_eq!(manifest["config"]["digest"], json!(layout.config_digest));
        assert_eq!(manifest["config"]["size"], json!(layout.config_size));

        let config: Value =
            serde_json::from_slice(&read_verified(&layout, &manifest["config"])).unwrap();
        assert_eq!(config["os"], "linux");
        assert_eq!(config["architecture"], host_oci_arch());
        assert_eq!(config["config"]["Cmd"], json!(["sh"]));

        let ldesc = &manifest["layers"][0];
        assert_eq!(ldesc["digest"], json!(layout.layer_digest));
        assert_eq!(ldesc["mediaType"], MEDIA_LAYER_GZIP);
        let gz = read_verified(&layout, ldesc);
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let diff_id = format!("sha256:{}", sha256_hex(&tar_bytes));
        assert_eq!(diff_id, layout.diff_id);
        assert_eq!(config["rootfs"]["diff_ids"][0], json!(diff_id));

        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let (mut busybox, mut sh_link, mut tmp_mode) = (None, None::<String>, None);
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().to_string();
            match path.trim_end_matches('/') {
                "bin/busybox" => {
                    busybox = Some((entry.header().mode().unwrap(), entry.size()));
                }
                "bin/sh" => {
                    assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
                    sh_link = entry
                        .link_name()
                        .unwrap()
                        .map(|l| l.to_string_lossy().into());
                }
                "tmp" => tmp_mode = Some(entry.header().mode().unwrap()),
                _ => {}
            }
        }
        let (mode, size) = busybox.expect("layer contains bin/busybox");
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            size,
            std::fs::metadata(crate::bundle::HOST_BUSYBOX)
                .unwrap()
                .len()
        );
        assert_eq!(sh_link.as_deref(), Some("busybox"));
        assert_eq!(tmp_mode.map(|m| m & 0o7777), Some(0o1777));
    }
}
