//! `berth-test-bundle [--tty] [ARGS...]`: writes a busybox test bundle (the same one
//! the suites use) to a new temp dir, keeps it, and prints its path. Handy to
//! poke at a runtime by hand: `runc run -b "$(berth-test-bundle --tty sh)" x`.
//! `--tty` sets `process.terminal` (for an interactive shell).

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let tty = args.first().is_some_and(|a| a == "--tty");
    if tty {
        args.remove(0);
    }
    let args: Vec<&str> = if args.is_empty() {
        vec!["sh"]
    } else {
        args.iter().map(String::as_str).collect()
    };
    let b = berth_tests::busybox_bundle(&args);
    if tty {
        b.edit(|s| s["process"]["terminal"] = serde_json::Value::Bool(true));
    }
    println!("{}", b.keep().display());
}
