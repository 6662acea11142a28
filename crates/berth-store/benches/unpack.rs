//! Unpack throughput: a generated ~200 MB layer (many files of varied size, text-like data),
//! gzip'd and zstd'd. Times reading through the decompressor to io::sink versus apply_layer
//! into a fresh directory, and prints MB/s of uncompressed tar.
//!
//! cargo bench -p berth-store --bench unpack

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a panic is a failure

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use berth_store::unpack::{apply_layer, apply_layer_parallel, ApplyOptions, Compression, Limits};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn header(out: &mut Vec<u8>, name: &str, typeflag: u8, mode: u32, size: u64) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(format!("{mode:07o}\0").as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"14000000000\0");
    h[156] = typeflag;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
}

/// A tar of about `target` bytes: dirs of files, sizes from 100 B to 16 MiB (mostly small),
/// content made of words and some random bytes (compresses ~3x, like binaries/text mixes).
fn make_layer(target: usize) -> (Vec<u8>, usize) {
    const WORDS: &[&str] = &[
        "the ", "lib", "usr/", "0x7f", "ELF", "main", "return ", "int ", "\n", "{ ", "} ",
        "static ", "void ", "const ", "char *", "size_t ", "error", "%s\n", "();", "= ",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(target + (1 << 20));
    let mut files = 0;
    let mut content = Vec::new();
    let mut d = 0;
    while out.len() < target {
        if files % 200 == 0 {
            d += 1;
            header(&mut out, &format!("usr/share/d{d}/"), b'5', 0o755, 0);
        }
        let r = rng.next();
        let size = match r % 100 {
            0..=59 => 100 + (r >> 8) as usize % 4096,
            60..=89 => 4096 + (r >> 8) as usize % 65536,
            90..=98 => 65536 + (r >> 8) as usize % (1 << 20),
            _ if r % 1000 < 990 => (1 << 20) + (r >> 8) as usize % (3 << 20),
            _ => (4 << 20) + (r >> 8) as usize % (12 << 20),
        };
        content.clear();
        while content.len() < size {
            let x = rng.next();
            if x & 3 == 0 {
                content.extend_from_slice(&x.to_le_bytes());
            } else {
                content.extend_from_slice(WORDS[(x >> 8) as usize % WORDS.len()].as_bytes());
            }
        }
        content.truncate(size);
        header(
            &mut out,
            &format!("usr/share/d{d}/f{files}"),
            b'0',
            0o644,
            size as u64,
        );
        out.extend_from_slice(&content);
        out.resize(out.len().div_ceil(512) * 512, 0);
        files += 1;
    }
    out.extend_from_slice(&[0u8; 1024]);
    (out, files)
}

fn mbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn main() {
    let (tar, files) = make_layer(200 << 20);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    println!(
        "layer: {:.1} MB uncompressed, {files} files; gzip {:.1} MB, zstd {:.1} MB",
        tar.len() as f64 / 1e6,
        gz.len() as f64 / 1e6,
        zst.len() as f64 / 1e6
    );
    let hash = best_of(3, || berth_store::Digest::of(&tar));
    println!("sha256 alone: {:.0} MB/s", mbps(tar.len(), hash));
    let tmp =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let mut n = 0;
    for (label, comp, blob) in [
        ("none", Compression::None, &tar),
        ("gzip", Compression::Gzip, &gz),
        ("zstd", Compression::Zstd, &zst),
    ] {
        let decomp = best_of(3, || {
            let mut r: Box<dyn Read> = match comp {
                Compression::None => Box::new(&blob[..]),
                Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&blob[..])),
                Compression::Zstd => Box::new(zstd::Decoder::new(&blob[..]).unwrap()),
            };
            std::io::copy(&mut r, &mut std::io::sink()).unwrap()
        });
        let mut run = |parallel: bool| {
            (0..3)
                .map(|_| {
                    n += 1;
                    let dest = tmp.path().join(format!("d{n}"));
                    std::fs::create_dir(&dest).unwrap();
                    let t = Instant::now();
                    let a = if parallel {
                        apply_layer_parallel(&blob[..], comp, &dest, &ApplyOptions::default())
                    } else {
                        apply_layer(&blob[..], comp, &dest, &Limits::default())
                    }
                    .unwrap();
                    let d = t.elapsed();
                    assert_eq!(a.uncompressed_size, tar.len() as u64);
                    std::fs::remove_dir_all(&dest).unwrap();
                    d
                })
                .min()
                .unwrap()
        };
        let apply = run(false);
        let par = run(true);
        println!(
            "{label}: decompress-only {:.0} MB/s ({:.2}s), apply_layer {:.0} MB/s ({:.2}s), apply_layer_parallel {:.0} MB/s ({:.2}s)",
            mbps(tar.len(), decomp),
            decomp.as_secs_f64(),
            mbps(tar.len(), apply),
            apply.as_secs_f64(),
            mbps(tar.len(), par),
            par.as_secs_f64()
        );
    }
}
