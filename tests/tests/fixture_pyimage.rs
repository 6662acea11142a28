//! The python base-image fixture (`berth_tests::pyimage`) against today's engine: the image
//! loads into berthd, its python runs, and the tutorial app it exists for serves its pages
//! (context bind-mounted, the Dockerfile's RUN step run by hand, as `berth build` will).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use berth_tests::berthd::Berthd;
use berth_tests::pyimage::{
    load_python, tutorial_app, PYTHON_TAG, TUTORIAL_HELLO, TUTORIAL_INSTALLED, TUTORIAL_RUN,
};

#[test]
fn python_image_loads_and_runs_the_tutorial_app() {
    if !berth_tests::require_root("python_image_loads_and_runs_the_tutorial_app") {
        return;
    }
    let d = Berthd::start();
    let Some(id) = load_python(&d, PYTHON_TAG) else {
        return; // load_python printed why
    };
    assert!(id.starts_with("sha256:"), "image ID {id}");

    let out = d.ok(&[
        "run",
        "--rm",
        PYTHON_TAG,
        "python3",
        "-c",
        "import http.server; print(42)",
    ]);
    assert_eq!(out.trim(), "42");

    let cfg = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{json .Config.Env}}",
        PYTHON_TAG,
    ]);
    assert_eq!(
        cfg.trim(),
        r#"["python3"] ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]"#
    );

    // python3 is found through the image PATH.
    let out = d.ok(&["run", "--rm", PYTHON_TAG, "python3", "--version"]);
    assert!(
        out.starts_with("Python 3.11."),
        "python3 --version said {out:?}"
    );

    // The tutorial app: the RUN step, then the server, queried from inside the container.
    let ctx = d.dir.path().join("tutorial");
    tutorial_app(&ctx);
    let script = format!(
        "cd /app && {TUTORIAL_RUN} && \
         (python3 app.py >/tmp/app.log 2>&1 &) && \
         i=0; until wget -qO- http://127.0.0.1:5000/ 2>/dev/null; do \
           i=$((i+1)); [ $i -gt 100 ] && cat /tmp/app.log && exit 1; sleep 0.1; done; \
         echo ---; wget -qO- http://127.0.0.1:5000/pkg"
    );
    let mount = format!("{}:/app", ctx.display());
    let out = d.ok(&["run", "--rm", "-v", &mount, PYTHON_TAG, "sh", "-c", &script]);
    assert_eq!(out, format!("{TUTORIAL_HELLO}---\n{TUTORIAL_INSTALLED}"));
    assert_eq!(
        std::fs::read_to_string(ctx.join("installed.txt")).unwrap(),
        TUTORIAL_INSTALLED
    );
}
