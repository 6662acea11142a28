//! `berth-test-bundle [ARGS...]`: writes a busybox test bundle (the same one
//! the suites use) to a new temp dir, keeps it, and prints its path. Handy to
//! poke at a runtime by hand: `runc run -b "$(berth-test-bundle sh)" x`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = if args.is_empty() {
        vec!["sh"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let b = berth_tests::busybox_bundle(&args);
    println!("{}", b.keep().display());
}
