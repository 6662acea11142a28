//! `berth-test-image DIR [LAYERS MIB_PER_LAYER]`: write the busybox OCI image layout the
//! suites use into DIR, or with LAYERS and MIB_PER_LAYER a large generated image (for pull
//! benchmarks); prints the layout path. Push it with
//! `skopeo copy oci:DIR:latest docker://127.0.0.1:5000/name:tag`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: berth-test-image DIR [LAYERS MIB_PER_LAYER]");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);
    match (args.get(1), args.get(2)) {
        (Some(l), Some(m)) => {
            let (Ok(l), Ok(m)) = (l.parse::<usize>(), m.parse::<u64>()) else {
                eprintln!("LAYERS and MIB_PER_LAYER must be numbers");
                std::process::exit(2);
            };
            let img = berth_tests::bigimage::big_image_layout(dir, l, m);
            eprintln!(
                "{} layers, {} files, {} bytes uncompressed, {} compressed",
                img.layers, img.files, img.uncompressed, img.compressed
            );
        }
        _ => {
            berth_tests::oci_image_layout(dir);
        }
    }
    println!("{}", dir.display());
}
