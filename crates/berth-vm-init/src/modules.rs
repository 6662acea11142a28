//! The module load-order list written by packaging/vm/build.sh at
//! `/lib/modules/<release>/berth-modules.order`: one path per line, relative to that
//! directory, dependencies before the modules that need them (the build resolves them with
//! depmod). `#` starts a comment.

/// The module paths to load, in order.
pub fn parse_order(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('/') || line.split('/').any(|c| c == "..") || !line.ends_with(".ko") {
            return Err(format!(
                "line {}: \"{line}\" is not a relative path to an uncompressed .ko file \
                 (rebuild the image with packaging/vm/build.sh)",
                i + 1
            ));
        }
        if !out.iter().any(|p: &String| p == line) {
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// The module's name as the kernel knows it (`kernel/fs/9p/9p.ko` -> `9p`; `-` becomes `_`).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.trim_end_matches(".ko").replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_file() {
        let got = parse_order(
            "# generated\nkernel/fs/netfs/netfs.ko\n\nkernel/fs/9p/9p.ko  # share\nkernel/fs/netfs/netfs.ko\n",
        )
        .unwrap();
        assert_eq!(got, vec!["kernel/fs/netfs/netfs.ko", "kernel/fs/9p/9p.ko"]);
    }

    #[test]
    fn order_file_rejects_unsafe_or_compressed() {
        assert!(parse_order("/lib/x.ko").is_err());
        assert!(parse_order("../x.ko").is_err());
        let e = parse_order("ok.ko\nkernel/x.ko.xz").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn names() {
        assert_eq!(module_name("kernel/net/9p/9pnet_virtio.ko"), "9pnet_virtio");
        assert_eq!(module_name("kernel/drivers/x/virtio-rng.ko"), "virtio_rng");
    }
}
