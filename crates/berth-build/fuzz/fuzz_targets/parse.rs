//! Feeds arbitrary bytes (lossy UTF-8) to the Dockerfile parser, the
//! expander and the .dockerignore parser: none of them may panic or hang.
#![no_main]

use berth_build::{expand_word, expand_words, parse, DockerIgnore};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lookup = |name: &str| (name.len() & 1 == 0).then(|| format!("v{name} x"));
    if let Ok(d) = parse(&text, "Dockerfile") {
        for stage in &d.stages {
            let _ = stage.expand_base(d.escape, &lookup);
            for ins in &stage.instructions {
                let _ = ins.expand(d.escape, &lookup);
            }
        }
    }
    let _ = expand_word(&text, '\\', &lookup);
    let _ = expand_words(&text, '`', &lookup);
    if let Ok(di) = DockerIgnore::parse(&text) {
        let _ = di.excluded("a/b/c.txt");
        let _ = di.may_contain_exceptions("a/b");
    }
});
