use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::model::*;

/// A temp dir holding a project directory `myapp` with the given files.
struct Fixture {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Fixture {
    fn new(files: &[(&str, &str)]) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("myapp");
        fs::create_dir_all(&dir).unwrap();
        let f = Fixture { _tmp: tmp, dir };
        for (name, text) in files {
            f.write(name, text);
        }
        f
    }

    fn write(&self, name: &str, text: &str) {
        let p = self.dir.join(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(p, text).unwrap();
    }

    fn opts(&self) -> LoadOptions {
        LoadOptions {
            cwd: self.dir.clone(),
            ..LoadOptions::default()
        }
    }

    fn load(&self) -> Result<Project, LoadError> {
        load(&self.opts())
    }

    fn load_env(&self, env: &[(&str, &str)]) -> Result<Project, LoadError> {
        let mut o = self.opts();
        o.environment = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(&o)
    }
}

fn one(yaml: &str) -> Result<Project, LoadError> {
    Fixture::new(&[("compose.yaml", yaml)]).load()
}

fn ok(yaml: &str) -> Project {
    match one(yaml) {
        Ok(p) => p,
        Err(e) => panic!("load failed: {e}"),
    }
}

/// The error as `path: message`, without the (temp) file name.
fn short(e: &LoadError) -> String {
    match &e.path {
        Some(p) => format!("{p}: {}", e.message),
        None => e.message.clone(),
    }
}

fn err(yaml: &str) -> String {
    match one(yaml) {
        Ok(_) => panic!("expected an error for:\n{yaml}"),
        Err(e) => short(&e),
    }
}

fn svc<'a>(p: &'a Project, name: &str) -> &'a Service {
    p.services.get(name).unwrap()
}

fn interp(s: &str, vars: &[(&str, &str)]) -> Result<String, interp::InterpError> {
    let map: BTreeMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = |n: &str| map.get(n).cloned();
    let mut unset = Vec::new();
    interp::interpolate_str(s, &lookup, &mut unset)
}

// ------------------------------------------------------------------ interpolation

#[test]
fn interp_plain_and_braced() {
    assert_eq!(
        interp("$A-${B}x", &[("A", "1"), ("B", "2")]).unwrap(),
        "1-2x"
    );
    assert_eq!(interp("pre${A}post", &[("A", "v")]).unwrap(), "prevpost");
}

#[test]
fn interp_default_forms() {
    assert_eq!(interp("${A:-d}", &[]).unwrap(), "d");
    assert_eq!(interp("${A:-d}", &[("A", "")]).unwrap(), "d");
    assert_eq!(interp("${A-d}", &[("A", "")]).unwrap(), "");
    assert_eq!(interp("${A-d}", &[]).unwrap(), "d");
    assert_eq!(interp("${A:-d}", &[("A", "x")]).unwrap(), "x");
}

#[test]
fn interp_required_forms() {
    assert_eq!(
        interp("${A:?need A}", &[("A", "")]).unwrap_err().describe(),
        "required variable A is missing a value: need A"
    );
    assert_eq!(interp("${A?need A}", &[("A", "")]).unwrap(), "");
    assert_eq!(
        interp("${A?}", &[]).unwrap_err().describe(),
        "required variable A is missing a value"
    );
}

#[test]
fn interp_alternative_forms() {
    assert_eq!(interp("${A:+alt}", &[("A", "x")]).unwrap(), "alt");
    assert_eq!(interp("${A:+alt}", &[("A", "")]).unwrap(), "");
    assert_eq!(interp("${A+alt}", &[("A", "")]).unwrap(), "alt");
    assert_eq!(interp("${A+alt}", &[]).unwrap(), "");
}

#[test]
fn interp_escape_and_nesting() {
    assert_eq!(
        interp("cost $$5 $${A}", &[("A", "x")]).unwrap(),
        "cost $5 ${A}"
    );
    assert_eq!(interp("${A:-${B:-inner}}", &[]).unwrap(), "inner");
    assert_eq!(interp("${A:-${B}}", &[("B", "b")]).unwrap(), "b");
    assert_eq!(interp("${A:-x}}", &[]).unwrap(), "x}");
}

#[test]
fn interp_syntax_errors() {
    let e = interp("${A", &[]).unwrap_err().describe();
    assert!(
        e.starts_with("invalid interpolation format in \"${A\": unterminated"),
        "{e}"
    );
    let e = interp("price $5", &[]).unwrap_err().describe();
    assert!(e.contains("write \"$$\" for a literal \"$\""), "{e}");
    let e = interp("${A B}", &[]).unwrap_err().describe();
    assert!(e.contains("is not a valid variable reference"), "{e}");
}

#[test]
fn load_required_variable_error_names_path_and_message() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  db:\n    image: postgres\n    environment:\n      PASSWORD: ${DB_PASSWORD:?set it in .env}\n",
    )]);
    let e = f.load().unwrap_err();
    assert_eq!(
        short(&e),
        "services.db.environment.PASSWORD: required variable DB_PASSWORD is missing a value: set it in .env"
    );
    assert_eq!(
        e.file.as_deref(),
        Some(f.dir.join("compose.yaml").as_path())
    );
}

#[test]
fn load_interpolation_syntax_error_names_path() {
    assert_eq!(
        err("services:\n  web:\n    image: \"nginx:${TAG\"\n"),
        "services.web.image: invalid interpolation format in \"nginx:${TAG\": unterminated \"${\"; close it with \"}\" or write \"$$\" for a literal \"$\""
    );
}

#[test]
fn unset_variable_warns_once_and_is_blank() {
    let p = ok("services:\n  web:\n    image: nginx${TAG}\n    environment:\n      A: ${TAG}\n      B: $TAG\n");
    assert_eq!(svc(&p, "web").image.as_deref(), Some("nginx"));
    let w: Vec<&String> = p.warnings.iter().filter(|w| w.contains("TAG")).collect();
    assert_eq!(
        w,
        vec!["The \"TAG\" variable is not set. Defaulting to a blank string."]
    );
}

#[test]
fn interpolation_leaves_keys_and_extension_fields_alone() {
    let p = ok("x-tpl: ${NOPE\nservices:\n  web:\n    image: a\n    labels:\n      $KEY: v\n");
    assert_eq!(
        svc(&p, "web").labels.get("$KEY").map(String::as_str),
        Some("v")
    );
}

#[test]
fn dotenv_feeds_interpolation_and_process_env_wins() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: nginx:${TAG}\n    hostname: ${HOST}\n",
        ),
        (".env", "TAG=1.25\nHOST=fromfile\n"),
    ]);
    let p = f.load_env(&[("HOST", "fromenv")]).unwrap();
    assert_eq!(svc(&p, "web").image.as_deref(), Some("nginx:1.25"));
    assert_eq!(svc(&p, "web").hostname.as_deref(), Some("fromenv"));
}

#[test]
fn dotenv_interpolates_earlier_lines_and_process_env() {
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  web:\n    image: ${IMG}\n"),
        (".env", "BASE=nginx\nIMG=${REG}/${BASE}:'x'\n"),
    ]);
    let p = f.load_env(&[("REG", "reg.local")]).unwrap();
    assert_eq!(svc(&p, "web").image.as_deref(), Some("reg.local/nginx:'x'"));
}

#[test]
fn explicit_env_file_replaces_dotenv_and_must_exist() {
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  web:\n    image: ${IMG}\n"),
        (".env", "IMG=fromdotenv\n"),
        ("prod.env", "IMG=fromprod\n"),
    ]);
    let mut o = f.opts();
    o.env_files = vec![PathBuf::from("prod.env")];
    assert_eq!(
        svc(&load(&o).unwrap(), "web").image.as_deref(),
        Some("fromprod")
    );
    o.env_files = vec![PathBuf::from("missing.env")];
    let e = load(&o).unwrap_err();
    assert_eq!(e.message, "env file not found (given with --env-file)");
    assert_eq!(e.file, Some(f.dir.join("missing.env")));
}

// ------------------------------------------------------------------ env files

#[test]
fn read_env_file_forms() {
    let f = Fixture::new(&[(
        "a.env",
        "# comment\n\nexport A=1\nB = two words  # trailing\nC='single ${X} # kept'\nD=\"line\\nbreak \\\"q\\\"\"\nE=\"multi\nline\"\nF=\nG=a#b\nLONELY\n",
    )]);
    let got = read_env_file(&f.dir.join("a.env")).unwrap();
    let want: Vec<(String, String)> = [
        ("A", "1"),
        ("B", "two words"),
        ("C", "single ${X} # kept"),
        ("D", "line\nbreak \"q\""),
        ("E", "multi\nline"),
        ("F", ""),
        ("G", "a#b"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn env_file_bad_key_names_line() {
    let f = Fixture::new(&[("a.env", "A=1\nBAD KEY=2\n")]);
    let e = read_env_file(&f.dir.join("a.env")).unwrap_err();
    assert_eq!(e.line, Some(2));
    assert_eq!(
        e.message,
        "invalid variable name \"BAD KEY\": use letters, digits and underscores (KEY=VALUE)"
    );
}

#[test]
fn env_file_unterminated_quote() {
    let f = Fixture::new(&[("a.env", "A=\"open\nB=2\n")]);
    let e = read_env_file(&f.dir.join("a.env")).unwrap_err();
    assert_eq!(e.line, Some(1));
    assert_eq!(
        e.message,
        "unterminated quoted value for A: add the closing \""
    );
}

#[test]
fn read_env_file_missing_names_file() {
    let f = Fixture::new(&[]);
    let e = read_env_file(&f.dir.join("nope.env")).unwrap_err();
    assert_eq!(e.file, Some(f.dir.join("nope.env")));
    assert!(
        e.message.starts_with("cannot read env file"),
        "{}",
        e.message
    );
}

#[test]
fn service_env_file_forms_and_precedence() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: a\n    env_file:\n      - common.env\n      - path: local.env\n        required: false\n      - path: extra.env\n    environment:\n      B: fromcompose\n",
        ),
        ("common.env", "A=1\nB=2\nC=${HOSTVAR}\n"),
        ("extra.env", "D=4\nA=override\n"),
    ]);
    let p = f.load_env(&[("HOSTVAR", "h")]).unwrap();
    let env = &svc(&p, "web").environment;
    assert_eq!(env.get("A"), Some(&Some("override".to_string())));
    assert_eq!(env.get("B"), Some(&Some("fromcompose".to_string())));
    assert_eq!(env.get("C"), Some(&Some("h".to_string())));
    assert_eq!(env.get("D"), Some(&Some("4".to_string())));
    // The files read (the optional missing one is not), each with its variables in order.
    let files = &svc(&p, "web").env_files;
    assert_eq!(
        files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
        vec![f.dir.join("common.env"), f.dir.join("extra.env")]
    );
    let s = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
    assert_eq!(files[0].vars, vec![s("A", "1"), s("B", "2"), s("C", "h")]);
    assert_eq!(files[1].vars, vec![s("D", "4"), s("A", "override")]);
}

#[test]
fn env_file_names_without_values_are_recorded() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: a\n    env_file: web.env\n",
        ),
        ("web.env", "FROM_HOST\nMISSING\nX=1\n"),
    ]);
    let p = f.load_env(&[("FROM_HOST", "h")]).unwrap();
    let web = svc(&p, "web");
    assert_eq!(
        web.env_files[0].vars,
        vec![
            ("FROM_HOST".to_string(), Some("h".to_string())),
            ("MISSING".to_string(), None),
            ("X".to_string(), Some("1".to_string())),
        ]
    );
    // An unset name stays out of the container's environment.
    assert_eq!(
        web.environment.get("FROM_HOST"),
        Some(&Some("h".to_string()))
    );
    assert!(!web.environment.contains_key("MISSING"));
}

#[test]
fn service_env_file_missing_required() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    env_file: web.env\n",
    )]);
    let e = f.load().unwrap_err();
    assert_eq!(
        short(&e),
        format!(
            "services.web.env_file[0]: env file {} not found; create it or mark it optional with required: false",
            f.dir.join("web.env").display()
        )
    );
}

// ------------------------------------------------------------------ finding files

#[test]
fn finds_file_in_parent_with_override() {
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  web:\n    image: a\n"),
        ("compose.override.yaml", "services:\n  web:\n    image: b\n"),
        ("sub/deeper/.keep", ""),
    ]);
    let files = find_files(&f.dir.join("sub/deeper")).unwrap();
    assert_eq!(
        files,
        vec![
            f.dir.join("compose.yaml"),
            f.dir.join("compose.override.yaml")
        ]
    );
    let mut o = f.opts();
    o.cwd = f.dir.join("sub/deeper");
    let p = load(&o).unwrap();
    assert_eq!(svc(&p, "web").image.as_deref(), Some("b"));
    assert_eq!(p.working_dir, f.dir);
    assert_eq!(p.name, "myapp");
}

#[test]
fn docker_compose_yml_with_override_yml() {
    let f = Fixture::new(&[
        ("docker-compose.yml", "services:\n  web:\n    image: a\n"),
        (
            "docker-compose.override.yml",
            "services:\n  web:\n    image: c\n",
        ),
    ]);
    assert_eq!(
        find_files(&f.dir).unwrap(),
        vec![
            f.dir.join("docker-compose.yml"),
            f.dir.join("docker-compose.override.yml")
        ]
    );
}

#[test]
fn several_names_warn_and_first_wins() {
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  web:\n    image: first\n"),
        (
            "docker-compose.yml",
            "services:\n  web:\n    image: second\n",
        ),
    ]);
    let p = f.load().unwrap();
    assert_eq!(svc(&p, "web").image.as_deref(), Some("first"));
    assert!(
        p.warnings
            .iter()
            .any(|w| w.starts_with("Found multiple config files with supported names:")),
        "{:?}",
        p.warnings
    );
}

#[test]
fn no_file_found() {
    let f = Fixture::new(&[]);
    let e = find_files(&f.dir).unwrap_err();
    assert!(
        e.message.starts_with(
            "no configuration file provided: not found (looked for compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml in "
        ),
        "{}",
        e.message
    );
}

#[test]
fn missing_dash_f_file_is_named() {
    let f = Fixture::new(&[]);
    let mut o = f.opts();
    o.files = vec![PathBuf::from("nope.yaml")];
    let e = load(&o).unwrap_err();
    assert_eq!(e.file, Some(f.dir.join("nope.yaml")));
    assert_eq!(e.message, "no such file (named with -f nope.yaml)");
}

#[test]
fn dash_f_files_merge_in_order_and_set_project_dir() {
    let f = Fixture::new(&[
        (
            "conf/base.yml",
            "services:\n  web:\n    image: a\n    ports: [\"80\"]\n",
        ),
        ("conf/prod.yml", "services:\n  web:\n    image: b\n"),
    ]);
    let mut o = f.opts();
    o.files = vec![
        PathBuf::from("conf/base.yml"),
        PathBuf::from("./conf/prod.yml"),
    ];
    let p = load(&o).unwrap();
    assert_eq!(svc(&p, "web").image.as_deref(), Some("b"));
    assert_eq!(svc(&p, "web").ports.len(), 1);
    assert_eq!(p.working_dir, f.dir.join("conf"));
    assert_eq!(p.name, "conf");
    assert_eq!(
        p.files,
        vec![f.dir.join("conf/base.yml"), f.dir.join("conf/prod.yml")]
    );
}

#[test]
fn compose_file_variable_names_files() {
    let f = Fixture::new(&[
        ("a.yml", "services:\n  web:\n    image: a\n"),
        ("b.yml", "services:\n  web:\n    image: b\n"),
    ]);
    let p = f.load_env(&[("COMPOSE_FILE", "a.yml:b.yml")]).unwrap();
    assert_eq!(svc(&p, "web").image.as_deref(), Some("b"));
}

// ------------------------------------------------------------------ YAML and top level

#[test]
fn yaml_syntax_error_has_line_and_column() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n   bad: [\n",
    )]);
    let e = f.load().unwrap_err();
    assert_eq!(e.file, Some(f.dir.join("compose.yaml")));
    assert!(e.line.is_some() && e.column.is_some(), "{e:?}");
    assert!(!e.message.contains(" at line "), "{}", e.message);
    assert!(e
        .to_string()
        .contains(&format!(":{}:{}: ", e.line.unwrap(), e.column.unwrap())));
}

#[test]
fn yaml_duplicate_key_is_an_error() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    image: b\n",
    )]);
    let e = f.load().unwrap_err();
    assert!(e.message.contains("duplicate entry"), "{}", e.message);
    assert!(e.line.is_some());
}

#[test]
fn yaml_merge_keys_apply() {
    let p = ok(
        "x-base: &base\n  image: shared\n  restart: always\nservices:\n  web:\n    <<: *base\n    hostname: w\n  api:\n    <<: *base\n    image: own\n",
    );
    assert_eq!(svc(&p, "web").image.as_deref(), Some("shared"));
    assert_eq!(svc(&p, "web").restart.as_deref(), Some("always"));
    assert_eq!(svc(&p, "api").image.as_deref(), Some("own"));
}

#[test]
fn top_level_must_be_mapping() {
    let f = Fixture::new(&[("compose.yaml", "- a\n- b\n")]);
    assert_eq!(
        f.load().unwrap_err().message,
        "the top level must be a mapping (services:, networks:, volumes:...), got a list"
    );
}

#[test]
fn empty_file_is_an_error() {
    let f = Fixture::new(&[("compose.yaml", "# nothing\n")]);
    assert_eq!(
        f.load().unwrap_err().message,
        "the file is empty; a compose file needs at least a \"services:\" section"
    );
}

#[test]
fn version_is_ignored_with_warning() {
    let p = ok("version: \"3.8\"\nservices:\n  web:\n    image: a\n");
    assert!(p
        .warnings
        .iter()
        .any(|w| w.ends_with("the attribute `version` is obsolete, it will be ignored, please remove it to avoid potential confusion")));
}

#[test]
fn include_and_models_are_not_supported() {
    assert_eq!(
        err("services:\n  web:\n    image: a\ninclude:\n  - other.yaml\n"),
        "include: not supported by berth compose (remove the top-level \"include\" section)"
    );
    assert_eq!(
        err("models: {}\nservices:\n  web:\n    image: a\n"),
        "models: not supported by berth compose (remove the top-level \"models\" section)"
    );
}

#[test]
fn unknown_top_level_key_suggests() {
    assert_eq!(
        err("servics:\n  web:\n    image: a\n"),
        "servics: unknown key; did you mean \"services\"?"
    );
}

// ------------------------------------------------------------------ merging

fn two(base: &str, over: &str) -> Project {
    let f = Fixture::new(&[("compose.yaml", base), ("compose.override.yaml", over)]);
    f.load().unwrap()
}

#[test]
fn merge_scalars_replaced_ports_appended_deduplicated() {
    let p = two(
        "services:\n  web:\n    image: a\n    ports: [\"80:80\", \"443:443\"]\n    expose: [9000]\n    cap_add: [NET_ADMIN]\n",
        "services:\n  web:\n    image: b\n    ports: [\"443:443\", \"8080:8080\"]\n    expose: [\"9000\", \"9001\"]\n    cap_add: [SYS_TIME]\n",
    );
    let w = svc(&p, "web");
    assert_eq!(w.image.as_deref(), Some("b"));
    let published: Vec<Option<u16>> = w.ports.iter().map(|p| p.published).collect();
    assert_eq!(published, vec![Some(80), Some(443), Some(8080)]);
    assert_eq!(w.expose, vec!["9000", "9001"]);
    assert_eq!(w.cap_add, vec!["NET_ADMIN", "SYS_TIME"]);
}

#[test]
fn merge_environment_and_labels_by_key_across_forms() {
    let p = two(
        "services:\n  web:\n    image: a\n    environment:\n      - A=1\n      - B=2\n    labels: [\"x=1\"]\n",
        "services:\n  web:\n    environment:\n      B: 3\n      C: 4\n    labels:\n      y: \"2\"\n",
    );
    let w = svc(&p, "web");
    let env: Vec<(&str, Option<&str>)> = w
        .environment
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    assert_eq!(
        env,
        vec![("A", Some("1")), ("B", Some("3")), ("C", Some("4"))]
    );
    assert_eq!(w.labels.len(), 2);
}

#[test]
fn merge_volumes_by_target() {
    let p = two(
        "services:\n  web:\n    image: a\n    volumes:\n      - ./a:/data\n      - /logs\nvolumes:\n  v: {}\n",
        "services:\n  web:\n    volumes:\n      - type: volume\n        source: v\n        target: /data\n      - ./cfg:/etc/cfg:ro\n",
    );
    let w = svc(&p, "web");
    let t: Vec<(&str, MountKind)> = w
        .volumes
        .iter()
        .map(|m| (m.target.as_str(), m.kind))
        .collect();
    assert_eq!(
        t,
        vec![
            ("/data", MountKind::Volume),
            ("/logs", MountKind::Volume),
            ("/etc/cfg", MountKind::Bind)
        ]
    );
}

#[test]
fn merge_command_and_healthcheck_test_replaced() {
    let p = two(
        "services:\n  web:\n    image: a\n    command: [a, b, c]\n    healthcheck:\n      test: [CMD, x, y]\n      interval: 5s\n",
        "services:\n  web:\n    command: [z]\n    healthcheck:\n      test: [CMD, q]\n",
    );
    let w = svc(&p, "web");
    assert_eq!(w.command, Some(vec!["z".to_string()]));
    let h = w.healthcheck.as_ref().unwrap();
    assert_eq!(h.test, vec!["CMD", "q"]);
    assert_eq!(h.interval_ns, Some(5_000_000_000));
}

#[test]
fn merge_depends_on_and_networks_by_key() {
    let p = two(
        "services:\n  web:\n    image: a\n    depends_on: [db]\n    networks:\n      front:\n        aliases: [w]\n  db:\n    image: p\n  cache:\n    image: r\nnetworks:\n  front: {}\n  back: {}\n",
        "services:\n  web:\n    depends_on:\n      cache:\n        condition: service_healthy\n    networks: [back, front]\n",
    );
    let w = svc(&p, "web");
    assert_eq!(w.depends_on.keys().collect::<Vec<_>>(), vec!["cache", "db"]);
    assert_eq!(w.depends_on["cache"].condition, Condition::ServiceHealthy);
    assert_eq!(w.networks.keys().collect::<Vec<_>>(), vec!["back", "front"]);
    assert_eq!(w.networks["front"].aliases, vec!["w"]);
}

#[test]
fn merge_reset_and_override_tags() {
    let p = two(
        "services:\n  web:\n    image: a\n    ports: [\"80:80\"]\n    environment:\n      A: 1\n      B: 2\n",
        "services:\n  web:\n    ports: !reset []\n    environment: !override\n      C: 3\n",
    );
    let w = svc(&p, "web");
    assert!(w.ports.is_empty());
    assert_eq!(w.environment.keys().collect::<Vec<_>>(), vec!["C"]);
}

#[test]
fn override_adds_a_service_and_build_args_merge() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    build:\n      context: .\n      args: [A=1, B=2]\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  web:\n    build:\n      args:\n        B: 3\n  extra:\n    image: e\n",
        ),
    ]);
    let p = f.load().unwrap();
    let b = svc(&p, "web").build.as_ref().unwrap();
    assert_eq!(b.args.get("A"), Some(&Some("1".to_string())));
    assert_eq!(b.args.get("B"), Some(&Some("3".to_string())));
    assert!(p.services.contains_key("extra"));
}

// ------------------------------------------------------------------ services

#[test]
fn unknown_service_key_suggests() {
    assert_eq!(
        err("services:\n  web:\n    imgae: nginx\n"),
        "services.web.imgae: unknown key; did you mean \"image\"?"
    );
}

#[test]
fn environment_wrong_type() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    environment: 5\n"),
        "services.web.environment: expected a mapping or a list of KEY=VALUE strings, got a number"
    );
}

#[test]
fn environment_null_takes_from_environment() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    environment:\n      - FROM_HOST\n      - NOT_SET\n      - EMPTY=\n",
    )]);
    let p = f.load_env(&[("FROM_HOST", "h")]).unwrap();
    let env = &svc(&p, "web").environment;
    assert_eq!(env["FROM_HOST"], Some("h".to_string()));
    assert_eq!(env["NOT_SET"], None);
    assert_eq!(env["EMPTY"], Some(String::new()));
}

#[test]
fn needs_image_or_build() {
    assert_eq!(
        err("services:\n  web:\n    restart: always\n"),
        "services.web: the service has neither an image nor a build context; add \"image:\" or \"build:\""
    );
}

#[test]
fn wrong_scalar_types() {
    assert_eq!(
        err("services:\n  web:\n    image: [a]\n"),
        "services.web.image: expected a string, got a list"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    tty: maybe\n"),
        "services.web.tty: expected true or false, got \"maybe\""
    );
    assert_eq!(
        err("services: [web]\n"),
        "services: expected a mapping, got a list"
    );
}

#[test]
fn booleans_from_interpolated_strings() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    privileged: ${PRIV}\n    init: \"false\"\n",
    )]);
    let p = f.load_env(&[("PRIV", "true")]).unwrap();
    assert!(svc(&p, "web").privileged);
    assert_eq!(svc(&p, "web").init, Some(false));
}

#[test]
fn ignored_keys_warn_once_each() {
    let p = ok("services:\n  web:\n    image: a\n    logging:\n      driver: json-file\n    ulimits:\n      nofile: 1024\n");
    assert!(p.warnings.contains(
        &"services.web.logging is not supported by berth compose and is ignored".to_string()
    ));
    assert!(p.warnings.contains(
        &"services.web.ulimits is not supported by berth compose and is ignored".to_string()
    ));
}

#[test]
fn extends_is_an_error() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    extends: base\n"),
        "services.web.extends: not supported by berth compose; copy the settings into this service"
    );
}

#[test]
fn command_and_entrypoint_forms() {
    let p = ok("services:\n  web:\n    image: a\n    command: sh -c 'echo \"hi there\"' \"a b\" c\\ d\n    entrypoint: [\"/bin/tini\", \"--\"]\n");
    let w = svc(&p, "web");
    assert_eq!(
        w.command,
        Some(vec![
            "sh".into(),
            "-c".into(),
            "echo \"hi there\"".into(),
            "a b".into(),
            "c d".into()
        ])
    );
    assert_eq!(w.entrypoint, Some(vec!["/bin/tini".into(), "--".into()]));
    assert_eq!(
        err("services:\n  web:\n    image: a\n    command: echo 'oops\n"),
        "services.web.command: cannot split \"echo 'oops\": unterminated single quote"
    );
}

#[test]
fn shell_split_cases() {
    assert_eq!(convert::shell_split("  a   b ").unwrap(), vec!["a", "b"]);
    assert_eq!(convert::shell_split("''").unwrap(), vec![""]);
    assert_eq!(convert::shell_split("a\"b c\"d").unwrap(), vec!["ab cd"]);
    assert_eq!(convert::shell_split("\"\\$HOME\"").unwrap(), vec!["$HOME"]);
}

// ports

#[test]
fn ports_short_forms() {
    let p = ok("services:\n  web:\n    image: a\n    ports:\n      - \"80\"\n      - 8080:81\n      - \"127.0.0.1:9090:90\"\n      - \"53:53/udp\"\n      - 3000\n      - \"[::1]:7000:70\"\n      - \"127.0.0.1::6000\"\n");
    let ports = &svc(&p, "web").ports;
    let got: Vec<(u16, Option<u16>, &str, &str)> = ports
        .iter()
        .map(|p| {
            (
                p.target,
                p.published,
                p.host_ip.as_str(),
                p.protocol.as_str(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (80, None, "", "tcp"),
            (81, Some(8080), "", "tcp"),
            (90, Some(9090), "127.0.0.1", "tcp"),
            (53, Some(53), "", "udp"),
            (3000, None, "", "tcp"),
            (70, Some(7000), "::1", "tcp"),
            (6000, None, "127.0.0.1", "tcp"),
        ]
    );
}

#[test]
fn port_ranges_expand() {
    let p = ok("services:\n  web:\n    image: a\n    ports:\n      - \"8000-8001:80-81\"\n      - \"9000-9001\"\n");
    let got: Vec<(u16, Option<u16>)> = svc(&p, "web")
        .ports
        .iter()
        .map(|p| (p.target, p.published))
        .collect();
    assert_eq!(
        got,
        vec![
            (80, Some(8000)),
            (81, Some(8001)),
            (9000, None),
            (9001, None)
        ]
    );
}

#[test]
fn invalid_port_message() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    ports: [\"80:eighty\"]\n"),
        "services.web.ports[0]: invalid port \"80:eighty\": expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], like \"8080:80\""
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    ports: [\"80\", \"99999:80\"]\n"),
        "services.web.ports[1]: invalid port \"99999:80\": expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], like \"8080:80\""
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    ports: [\"80/icmp\"]\n"),
        "services.web.ports[0]: invalid port \"80/icmp\": the protocol must be tcp, udp or sctp"
    );
}

#[test]
fn port_range_length_mismatch() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    ports: [\"8000-8002:80-81\"]\n"),
        "services.web.ports[0]: invalid port \"8000-8002:80-81\": the host port range 8000-8002 and the container port range 80-81 must be the same length"
    );
}

#[test]
fn ports_long_form() {
    let p = ok("services:\n  web:\n    image: a\n    ports:\n      - target: 80\n        published: \"8080\"\n        host_ip: 127.0.0.1\n        protocol: udp\n        mode: host\n      - target: 90\n");
    let ports = &svc(&p, "web").ports;
    assert_eq!(
        ports[0],
        Port {
            target: 80,
            published: Some(8080),
            host_ip: "127.0.0.1".into(),
            protocol: "udp".into()
        }
    );
    assert_eq!(ports[1].published, None);
    assert_eq!(
        err("services:\n  web:\n    image: a\n    ports:\n      - published: 80\n"),
        "services.web.ports[0]: missing \"target\" (the container port)"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    ports:\n      - target: 80\n        publish: 80\n"),
        "services.web.ports[0].publish: unknown key; did you mean \"published\"?"
    );
}

#[test]
fn expose_forms() {
    let p = ok("services:\n  web:\n    image: a\n    expose: [80, \"8000-8010\", \"53/udp\"]\n");
    assert_eq!(svc(&p, "web").expose, vec!["80", "8000-8010", "53/udp"]);
    assert_eq!(
        err("services:\n  web:\n    image: a\n    expose: [\"http\"]\n"),
        "services.web.expose[0]: invalid port \"http\": expected PORT[/PROTOCOL] or a range, like \"80\", \"8000-8010\" or \"53/udp\""
    );
}

// volumes

#[test]
fn volumes_short_forms() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    volumes:\n      - data:/var/lib/data\n      - ./src:/app:ro\n      - /etc/hosts:/h:ro\n      - /anon\n      - ~/cache:/cache\n      - ../shared:/shared:rw,z\nvolumes:\n  data:\n",
    )]);
    let p = f.load_env(&[("HOME", "/home/u")]).unwrap();
    let v = &svc(&p, "web").volumes;
    assert_eq!(v[0].kind, MountKind::Volume);
    assert_eq!(v[0].source.as_deref(), Some("data"));
    assert_eq!(v[1].kind, MountKind::Bind);
    assert_eq!(
        v[1].source,
        Some(f.dir.join("src").to_string_lossy().into_owned())
    );
    assert!(v[1].read_only && v[1].create_host_path);
    assert_eq!(v[2].source.as_deref(), Some("/etc/hosts"));
    assert_eq!(
        (v[3].kind, v[3].source.as_deref()),
        (MountKind::Volume, None)
    );
    assert_eq!(v[4].source.as_deref(), Some("/home/u/cache"));
    assert_eq!(
        v[5].source,
        Some(
            f.dir
                .parent()
                .unwrap()
                .join("shared")
                .to_string_lossy()
                .into_owned()
        )
    );
    assert!(!v[5].read_only);
}

#[test]
fn undeclared_named_volume() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    volumes: [\"data:/d\"]\n"),
        "services.web.volumes[0]: volume \"data\" is not declared in the top-level volumes section; add it there (volumes: {data: {}})"
    );
}

#[test]
fn volume_errors() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    volumes: [\"./x:rel\"]\n"),
        "services.web.volumes[0]: invalid mount target \"rel\": the container path must be absolute"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    volumes: [\"./x:/y:rx\"]\n"),
        "services.web.volumes[0]: invalid volume mode \"rx\" in \"./x:/y:rx\": expected ro or rw"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    volumes:\n      - source: x\n        target: /x\n"),
        "services.web.volumes[0]: missing \"type\": expected volume, bind or tmpfs"
    );
}

#[test]
fn volumes_long_forms() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\n    volumes:\n      - type: bind\n        source: ./conf\n        target: /conf\n        read_only: true\n        bind:\n          create_host_path: true\n      - type: volume\n        source: data\n        target: /data\n        volume:\n          nocopy: true\n      - type: tmpfs\n        target: /tmp\n        tmpfs:\n          size: 64m\nvolumes:\n  data: {}\n",
    )]);
    let p = f.load().unwrap();
    let v = &svc(&p, "web").volumes;
    assert_eq!(
        v[0],
        Mount {
            kind: MountKind::Bind,
            source: Some(f.dir.join("conf").to_string_lossy().into_owned()),
            target: "/conf".into(),
            read_only: true,
            create_host_path: true,
            tmpfs_size: None,
            nocopy: false
        }
    );
    assert!(v[1].nocopy);
    assert_eq!(v[2].tmpfs_size, Some(64 * 1024 * 1024));
    assert_eq!(v[2].source, None);
}

#[test]
fn tmpfs_string_or_list() {
    let p = ok("services:\n  a:\n    image: a\n    tmpfs: /run\n  b:\n    image: b\n    tmpfs: [/run, \"/tmp:size=64m\"]\n");
    assert_eq!(svc(&p, "a").tmpfs, vec!["/run"]);
    assert_eq!(svc(&p, "b").tmpfs, vec!["/run", "/tmp:size=64m"]);
}

// networks

#[test]
fn service_networks_forms_and_default() {
    let p = ok("services:\n  web:\n    image: a\n    networks:\n      front:\n        aliases: [www]\n        ipv4_address: 172.20.0.5\n  api:\n    image: b\n  host:\n    image: c\n    network_mode: host\nnetworks:\n  front:\n    ipam:\n      config:\n        - subnet: 172.20.0.0/16\n          gateway: 172.20.0.1\n");
    let web = svc(&p, "web");
    assert_eq!(web.networks["front"].aliases, vec!["www"]);
    assert_eq!(
        web.networks["front"].ipv4_address.as_deref(),
        Some("172.20.0.5")
    );
    assert_eq!(
        svc(&p, "api").networks.keys().collect::<Vec<_>>(),
        vec!["default"]
    );
    assert!(svc(&p, "host").networks.is_empty());
    assert_eq!(p.networks["default"].name, "myapp_default");
    assert_eq!(p.networks["front"].name, "myapp_front");
    assert_eq!(
        p.networks["front"].subnets,
        vec![Subnet {
            subnet: "172.20.0.0/16".into(),
            gateway: Some("172.20.0.1".into())
        }]
    );
}

#[test]
fn no_default_network_when_all_use_network_mode() {
    let p = ok("services:\n  a:\n    image: a\n    network_mode: none\n");
    assert!(p.networks.is_empty());
}

#[test]
fn undeclared_network() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    networks: [back]\n"),
        "services.web.networks.back: network \"back\" is not declared in the top-level networks section; add it there (networks: {back: {}})"
    );
}

#[test]
fn network_mode_with_networks_is_an_error() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    network_mode: host\n    networks: [default]\n"),
        "services.web.network_mode: network_mode cannot be combined with networks; use one or the other"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    network_mode: \"service:nope\"\n"),
        "services.web.network_mode: service \"nope\" is not defined in this project"
    );
}

#[test]
fn top_level_networks_and_volumes() {
    let p = ok("services:\n  web:\n    image: a\n    volumes: [db:/db, ext:/ext]\nnetworks:\n  default:\n    driver: bridge\n    driver_opts:\n      com.docker.network.bridge.name: br0\n  outside:\n    external: true\n  named:\n    name: custom-net\n    internal: true\n    labels: [a=b]\nvolumes:\n  db:\n    driver: local\n    labels:\n      k: v\n  ext:\n    external: true\n    name: real-ext\n  plain:\n");
    assert_eq!(p.networks["default"].name, "myapp_default");
    assert_eq!(p.networks["default"].driver.as_deref(), Some("bridge"));
    assert_eq!(
        p.networks["default"].driver_opts["com.docker.network.bridge.name"],
        "br0"
    );
    assert_eq!(p.networks["outside"].name, "outside");
    assert!(p.networks["outside"].external);
    assert_eq!(p.networks["named"].name, "custom-net");
    assert!(p.networks["named"].internal);
    assert_eq!(p.volumes["db"].name, "myapp_db");
    assert_eq!(p.volumes["ext"].name, "real-ext");
    assert_eq!(p.volumes["plain"].name, "myapp_plain");
    assert_eq!(
        err("services:\n  web:\n    image: a\nvolumes:\n  db:\n    drivr: local\n"),
        "volumes.db.drivr: unknown key; did you mean \"driver\"?"
    );
}

// depends_on

#[test]
fn depends_on_forms() {
    let p = ok("services:\n  web:\n    image: a\n    depends_on:\n      db:\n        condition: service_healthy\n        restart: true\n      migrate:\n        condition: service_completed_successfully\n      optional:\n        required: false\n  db:\n    image: p\n  migrate:\n    image: m\n    depends_on: [db]\n");
    let d = &svc(&p, "web").depends_on;
    assert_eq!(
        d["db"],
        Dependency {
            condition: Condition::ServiceHealthy,
            required: true,
            restart: true
        }
    );
    assert_eq!(
        d["migrate"].condition,
        Condition::ServiceCompletedSuccessfully
    );
    assert!(!d["optional"].required);
    assert_eq!(
        svc(&p, "migrate").depends_on["db"].condition,
        Condition::ServiceStarted
    );
}

#[test]
fn depends_on_unknown_service() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    depends_on: [cache]\n"),
        "services.web.depends_on.cache: service \"cache\" is not defined in this project (set required: false to make it optional)"
    );
    assert_eq!(
        err("services:\n  web:\n    image: a\n    depends_on:\n      web2:\n        condition: started\n  web2:\n    image: b\n"),
        "services.web.depends_on.web2.condition: invalid condition \"started\": expected service_started, service_healthy or service_completed_successfully"
    );
}

#[test]
fn dependency_cycle_is_named() {
    assert_eq!(
        err("services:\n  web:\n    image: a\n    depends_on: [api]\n  api:\n    image: b\n    depends_on: [web]\n"),
        "dependency cycle: api -> web -> api"
    );
    assert_eq!(
        err("services:\n  a:\n    image: a\n    depends_on: [a]\n"),
        "dependency cycle: a -> a"
    );
}

// healthcheck, durations, restart, deploy

#[test]
fn healthcheck_forms() {
    let p = ok("services:\n  a:\n    image: a\n    healthcheck:\n      test: curl -f http://localhost\n      interval: 1m30s\n      timeout: 500ms\n      start_period: 10s\n      start_interval: 1.5s\n      retries: 3\n  b:\n    image: b\n    healthcheck:\n      disable: true\n  c:\n    image: c\n    healthcheck:\n      test: [CMD, pg_isready]\n");
    let h = svc(&p, "a").healthcheck.as_ref().unwrap();
    assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://localhost"]);
    assert_eq!(h.interval_ns, Some(90_000_000_000));
    assert_eq!(h.timeout_ns, Some(500_000_000));
    assert_eq!(h.start_period_ns, Some(10_000_000_000));
    assert_eq!(h.start_interval_ns, Some(1_500_000_000));
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        svc(&p, "b").healthcheck.as_ref().unwrap().test,
        vec!["NONE"]
    );
    assert_eq!(
        svc(&p, "c").healthcheck.as_ref().unwrap().test,
        vec!["CMD", "pg_isready"]
    );
}

#[test]
fn healthcheck_errors() {
    assert_eq!(
        err("services:\n  db:\n    image: a\n    healthcheck:\n      interval: 10 seconds\n"),
        "services.db.healthcheck.interval: invalid duration \"10 seconds\": expected a duration like \"10s\", \"1m30s\" or \"500ms\""
    );
    assert_eq!(
        err("services:\n  db:\n    image: a\n    healthcheck:\n      test: [pg_isready]\n"),
        "services.db.healthcheck.test: expected a list starting with \"CMD\", \"CMD-SHELL\" or \"NONE\", or a shell command string"
    );
    assert_eq!(
        err("services:\n  db:\n    image: a\n    healthcheck:\n      intervall: 5s\n"),
        "services.db.healthcheck.intervall: unknown key; did you mean \"interval\"?"
    );
}

#[test]
fn duration_and_size_parsing() {
    assert_eq!(convert::parse_duration("1h2m3s"), Some(3_723_000_000_000));
    assert_eq!(convert::parse_duration("250us"), Some(250_000));
    assert_eq!(convert::parse_duration("0"), Some(0));
    assert_eq!(convert::parse_duration("10"), None);
    assert_eq!(convert::parse_duration("5d"), None);
    assert_eq!(convert::parse_bytes("512M"), Some(512 * 1024 * 1024));
    assert_eq!(convert::parse_bytes("1g"), Some(1024 * 1024 * 1024));
    assert_eq!(convert::parse_bytes("1.5k"), Some(1536));
    assert_eq!(convert::parse_bytes("100"), Some(100));
    assert_eq!(convert::parse_bytes("lots"), None);
}

#[test]
fn restart_values() {
    for r in [
        "no",
        "always",
        "on-failure",
        "on-failure:3",
        "unless-stopped",
    ] {
        let p = ok(&format!(
            "services:\n  a:\n    image: a\n    restart: \"{r}\"\n"
        ));
        assert_eq!(svc(&p, "a").restart.as_deref(), Some(r));
    }
    assert_eq!(
        err("services:\n  a:\n    image: a\n    restart: sometimes\n"),
        "services.a.restart: invalid restart policy \"sometimes\": expected no, always, on-failure, on-failure:N or unless-stopped"
    );
}

#[test]
fn deploy_replicas_and_limits() {
    let p = ok("services:\n  a:\n    image: a\n    deploy:\n      replicas: 3\n      resources:\n        limits:\n          cpus: \"0.5\"\n          memory: 512M\n          pids: 100\n        reservations:\n          memory: 1g\n  b:\n    image: b\n    mem_limit: 1g\n    cpus: 1.5\n    scale: 2\n");
    let a = svc(&p, "a");
    assert_eq!(a.replicas, 3);
    assert_eq!(
        a.limits,
        Limits {
            cpus: Some(0.5),
            memory: Some(512 * 1024 * 1024),
            pids: Some(100)
        }
    );
    let b = svc(&p, "b");
    assert_eq!(b.replicas, 2);
    assert_eq!(b.limits.memory, Some(1024 * 1024 * 1024));
    assert_eq!(b.limits.cpus, Some(1.5));
    assert!(p.warnings.contains(&"services.a.deploy.resources.reservations is not supported by berth compose and is ignored".to_string()));
    assert_eq!(
        err("services:\n  a:\n    image: a\n    deploy:\n      resources:\n        limits:\n          memory: lots\n"),
        "services.a.deploy.resources.limits.memory: invalid size \"lots\": expected bytes or a size like \"512m\" or \"1g\""
    );
    assert_eq!(
        err("services:\n  a:\n    image: a\n    deploy:\n      replicas: -1\n"),
        "services.a.deploy.replicas: expected 0 or more replicas, got -1"
    );
}

#[test]
fn misc_scalars() {
    let p = ok("services:\n  a:\n    image: a\n    container_name: c1\n    hostname: h\n    working_dir: /w\n    user: 1000\n    tty: true\n    stdin_open: true\n    read_only: true\n    cap_drop: [ALL]\n    stop_signal: SIGINT\n    stop_grace_period: 1m30s\n    pull_policy: if_not_present\n    profiles: [dev]\n");
    let a = p.disabled.get("a").unwrap();
    assert_eq!(a.container_name.as_deref(), Some("c1"));
    assert_eq!(a.user.as_deref(), Some("1000"));
    assert!(a.tty && a.stdin_open && a.read_only);
    assert_eq!(a.cap_drop, vec!["ALL"]);
    assert_eq!(a.stop_grace_period, Some(90));
    assert_eq!(a.pull_policy.as_deref(), Some("missing"));
    assert_eq!(
        err("services:\n  a:\n    image: a\n    pull_policy: sometimes\n"),
        "services.a.pull_policy: invalid pull_policy \"sometimes\": expected always, never, missing or build"
    );
}

#[test]
fn labels_and_extra_hosts_forms() {
    let p = ok("services:\n  a:\n    image: a\n    labels: [\"x=1\", \"flag\"]\n    extra_hosts: [\"db.local:10.0.0.5\", \"v6=::1\"]\n  b:\n    image: b\n    labels:\n      n: 5\n    extra_hosts:\n      db.local: 10.0.0.6\n");
    let a = svc(&p, "a");
    assert_eq!(a.labels["x"], "1");
    assert_eq!(a.labels["flag"], "");
    assert_eq!(a.extra_hosts, vec!["db.local:10.0.0.5", "v6:::1"]);
    let b = svc(&p, "b");
    assert_eq!(b.labels["n"], "5");
    assert_eq!(b.extra_hosts, vec!["db.local:10.0.0.6"]);
    assert_eq!(
        err("services:\n  a:\n    image: a\n    extra_hosts: [\"nohost\"]\n"),
        "services.a.extra_hosts[0]: invalid extra host \"nohost\": expected HOST:IP, like \"db.local:10.0.0.5\""
    );
}

#[test]
fn build_forms() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  a:\n    build: ./app\n  b:\n    build:\n      context: app\n      dockerfile: Dockerfile.dev\n      args:\n        - VERSION=1\n        - FROM_ENV\n      target: dev\n      labels:\n        l: v\n      network: host\n      tags: [\"b:dev\"]\n      cache_from: [x]\n",
        ),
        ("app/Dockerfile", "FROM scratch\n"),
    ]);
    let p = f.load_env(&[("FROM_ENV", "e")]).unwrap();
    let a = svc(&p, "a").build.as_ref().unwrap();
    assert_eq!(a.context, f.dir.join("app"));
    assert_eq!(a.dockerfile, "Dockerfile");
    let b = svc(&p, "b").build.as_ref().unwrap();
    assert_eq!(b.dockerfile, "Dockerfile.dev");
    assert_eq!(b.args["VERSION"], Some("1".into()));
    assert_eq!(b.args["FROM_ENV"], Some("e".into()));
    assert_eq!(b.target.as_deref(), Some("dev"));
    assert_eq!(b.network.as_deref(), Some("host"));
    assert_eq!(b.tags, vec!["b:dev"]);
    assert!(p.warnings.contains(
        &"services.b.build.cache_from is not supported by berth compose and is ignored".to_string()
    ));
}

#[test]
fn build_context_errors() {
    let f = Fixture::new(&[("compose.yaml", "services:\n  a:\n    build: ./missing\n")]);
    assert_eq!(
        short(&f.load().unwrap_err()),
        format!(
            "services.a.build.context: build context {} does not exist or is not a directory",
            f.dir.join("missing").display()
        )
    );
    assert_eq!(
        err("services:\n  a:\n    build:\n      context: https://github.com/x/y.git\n"),
        "services.a.build.context: remote build context \"https://github.com/x/y.git\" is not supported by berth compose; clone it and use a local path"
    );
}

// project name and profiles

#[test]
fn project_name_precedence() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "name: FromFile\nservices:\n  a:\n    image: a\n",
    )]);
    assert_eq!(f.load().unwrap().name, "fromfile");
    assert_eq!(
        f.load_env(&[("COMPOSE_PROJECT_NAME", "env")]).unwrap().name,
        "env"
    );
    let mut o = f.opts();
    o.project_name = Some("My.App_1".into());
    o.environment
        .insert("COMPOSE_PROJECT_NAME".into(), "env".into());
    let p = load(&o).unwrap();
    assert_eq!(p.name, "myapp_1");
    assert_eq!(p.networks["default"].name, "myapp_1_default");
}

#[test]
fn project_name_from_dir_normalised_and_empty_error() {
    assert_eq!(normalize_project_name("__My Project!"), "myproject");
    let f = Fixture::new(&[("compose.yaml", "services:\n  a:\n    image: a\n")]);
    let mut o = f.opts();
    o.project_name = Some("___".into());
    assert_eq!(
        load(&o).unwrap_err().message,
        "project name \"___\" (from -p) has no usable characters: a project name uses lower-case letters, digits, '-' and '_' and starts with a letter or digit; set one with -p NAME"
    );
}

#[test]
fn project_name_from_dotenv() {
    let f = Fixture::new(&[
        ("compose.yaml", "services:\n  a:\n    image: a\n"),
        (".env", "COMPOSE_PROJECT_NAME=fromdotenv\n"),
    ]);
    assert_eq!(f.load().unwrap().name, "fromdotenv");
}

#[test]
fn profiles_select_services() {
    let yaml = "services:\n  web:\n    image: a\n    depends_on: [debug]\n  debug:\n    image: b\n    profiles: [dev]\n  tools:\n    image: c\n    profiles: [tools, ops]\n";
    let f = Fixture::new(&[("compose.yaml", yaml)]);
    let p = f.load().unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["web"]);
    assert_eq!(
        p.disabled.keys().collect::<Vec<_>>(),
        vec!["debug", "tools"]
    );
    let mut o = f.opts();
    o.profiles = vec!["dev".into()];
    let p = load(&o).unwrap();
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["debug", "web"]);
    let p = f.load_env(&[("COMPOSE_PROFILES", "ops, dev")]).unwrap();
    assert_eq!(p.services.len(), 3);
    assert!(p.disabled.is_empty());
    let p = f.load_env(&[("COMPOSE_PROFILES", "*")]).unwrap();
    assert_eq!(p.services.len(), 3);
}

// ------------------------------------------------------------------ a whole app

#[test]
fn full_two_service_app() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            r#"
name: shop
services:
  web:
    build: .
    image: shop/web:${TAG:-latest}
    ports:
      - "8080:80"
    environment:
      DATABASE_URL: postgres://app:${DB_PASSWORD}@db/app
    depends_on:
      db:
        condition: service_healthy
    volumes:
      - ./static:/srv/static:ro
    restart: unless-stopped
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}
    volumes:
      - pgdata:/var/lib/postgresql/data
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U app"]
      interval: 5s
      retries: 10
volumes:
  pgdata:
"#,
        ),
        ("Dockerfile", "FROM nginx\n"),
        (".env", "DB_PASSWORD=s3cret\n"),
    ]);
    let p = f.load().unwrap();
    assert_eq!(p.name, "shop");
    assert_eq!(p.files, vec![f.dir.join("compose.yaml")]);
    let web = svc(&p, "web");
    assert_eq!(web.image.as_deref(), Some("shop/web:latest"));
    assert_eq!(web.build.as_ref().unwrap().context, f.dir);
    assert_eq!(
        web.environment["DATABASE_URL"],
        Some("postgres://app:s3cret@db/app".into())
    );
    assert_eq!(web.depends_on["db"].condition, Condition::ServiceHealthy);
    assert_eq!(web.networks.keys().collect::<Vec<_>>(), vec!["default"]);
    assert_eq!(web.replicas, 1);
    let db = svc(&p, "db");
    assert_eq!(db.environment["POSTGRES_PASSWORD"], Some("s3cret".into()));
    assert_eq!(db.volumes[0].source.as_deref(), Some("pgdata"));
    assert_eq!(p.volumes["pgdata"].name, "shop_pgdata");
    assert_eq!(p.networks["default"].name, "shop_default");
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    // The serialised form is what `config` prints and the hash is stable.
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(json["services"]["web"]["ports"][0]["published"], 8080);
    assert_eq!(
        web.config_hash(),
        svc(&f.load().unwrap(), "web").config_hash()
    );

    // Without the .env the required variable fails with the user's message.
    fs::remove_file(f.dir.join(".env")).unwrap();
    assert_eq!(
        short(&f.load().unwrap_err()),
        "services.db.environment.POSTGRES_PASSWORD: required variable DB_PASSWORD is missing a value: set DB_PASSWORD in .env"
    );
}

#[test]
fn did_you_mean_helper() {
    assert_eq!(did_you_mean("imgae", &["image", "build"]), Some("image"));
    assert_eq!(did_you_mean("zzzzzz", &["image", "build"]), None);
    assert_eq!(distance("kitten", "sitting"), 3);
    assert_eq!(clean_path(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
}

// ------------------------------------------------------------------ configs and secrets

const FILE_OBJECTS: &str = r#"services:
  web:
    image: a
    configs:
      - app_conf
      - source: banner
        target: /etc/motd
        mode: 0440
      - source: banner
        target: etc/banner
    secrets:
      - db_pass
      - source: api_key
        target: api.key
        uid: "1000"
        gid: 1001
        mode: 0o400
      - source: api_key
        target: /keys/api
        mode: 288
configs:
  app_conf:
    file: ./conf/app.conf
    labels: [tier=front]
  banner:
    content: "hello ${WHO}"
  shared:
    external: true
    name: shared-conf
secrets:
  db_pass:
    environment: DB_PASS
  api_key:
    file: api.key
    name: custom-api
  ext:
    external: true
"#;

fn file_objects_fixture() -> Fixture {
    Fixture::new(&[
        ("compose.yaml", FILE_OBJECTS),
        ("conf/app.conf", "a=1\n"),
        ("api.key", "k\n"),
        (".env", "DB_PASS=from-dotenv\nWHO=dotenv\n"),
    ])
}

#[test]
fn top_level_configs_and_secrets_each_source() {
    let f = file_objects_fixture();
    // The process environment wins over .env, as in interpolation.
    let p = f.load_env(&[("DB_PASS", "s3cret")]).unwrap();
    let c = &p.configs;
    assert_eq!(c["app_conf"].name, "myapp_app_conf");
    assert_eq!(
        c["app_conf"].source,
        FileSource::File(f.dir.join("conf/app.conf"))
    );
    assert_eq!(
        c["app_conf"].labels,
        BTreeMap::from([("tier".to_string(), "front".to_string())])
    );
    assert_eq!(
        c["banner"].source,
        FileSource::Content("hello dotenv".to_string())
    );
    assert_eq!(c["shared"].name, "shared-conf");
    assert_eq!(c["shared"].source, FileSource::External(true));
    let s = &p.secrets;
    assert_eq!(s["db_pass"].name, "myapp_db_pass");
    assert_eq!(
        s["db_pass"].source,
        FileSource::Environment {
            var: "DB_PASS".to_string(),
            value: Some("s3cret".to_string())
        }
    );
    assert_eq!(s["api_key"].name, "custom-api");
    assert_eq!(s["api_key"].source, FileSource::File(f.dir.join("api.key")));
    // External without a name: the key itself.
    assert_eq!(s["ext"].name, "ext");
    // Without the process's value, .env's.
    let p = f.load().unwrap();
    assert_eq!(
        p.secrets["db_pass"].source,
        FileSource::Environment {
            var: "DB_PASS".to_string(),
            value: Some("from-dotenv".to_string())
        }
    );
}

#[test]
fn service_configs_and_secrets_short_and_long() {
    let p = file_objects_fixture().load().unwrap();
    let web = svc(&p, "web");
    let r = |source: &str, target: &str, uid: Option<&str>, gid: Option<&str>, mode| FileRef {
        source: source.to_string(),
        target: target.to_string(),
        uid: uid.map(str::to_string),
        gid: gid.map(str::to_string),
        mode,
    };
    assert_eq!(
        web.configs,
        vec![
            r("app_conf", "/app_conf", None, None, None),
            // YAML reads 0440 as the string "0440": octal.
            r("banner", "/etc/motd", None, None, Some(0o440)),
            // A relative config target goes under /.
            r("banner", "/etc/banner", None, None, None),
        ]
    );
    assert_eq!(
        web.secrets,
        vec![
            r("db_pass", "/run/secrets/db_pass", None, None, None),
            // A relative secret target goes under /run/secrets; 0o400 is YAML's octal number.
            r(
                "api_key",
                "/run/secrets/api.key",
                Some("1000"),
                Some("1001"),
                Some(0o400)
            ),
            // A plain number is the mode's value (288 = 0o440), as docker compose reads it.
            r("api_key", "/keys/api", None, None, Some(0o440)),
        ]
    );
    // File-backed ones are bind-mounted as they are: their uid/gid/mode are ignored, once
    // each, with a warning naming them.
    assert!(p.warnings.contains(&"services.web.secrets[1]: uid, gid and mode are ignored for a secret from a file (it is bind-mounted read-only as it is)".to_string()), "{:?}", p.warnings);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.starts_with("services.web.secrets[2]:")));
    assert!(!p
        .warnings
        .iter()
        .any(|w| w.starts_with("services.web.configs")));
}

#[test]
fn interpolation_applies_to_configs_and_secrets() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: a\n    secrets:\n      - source: s\n        target: ${T}\n        mode: ${M}\nsecrets:\n  s:\n    environment: ${VAR_NAME}\n    name: ${N}\n",
        ),
    ]);
    let p = f
        .load_env(&[
            ("T", "/x/y"),
            ("M", "0400"),
            ("VAR_NAME", "PW"),
            ("PW", "v"),
            ("N", "named"),
        ])
        .unwrap();
    let r = &svc(&p, "web").secrets[0];
    assert_eq!((r.target.as_str(), r.mode), ("/x/y", Some(0o400)));
    assert_eq!(p.secrets["s"].name, "named");
    assert_eq!(
        p.secrets["s"].source,
        FileSource::Environment {
            var: "PW".to_string(),
            value: Some("v".to_string())
        }
    );
}

#[test]
fn configs_and_secrets_merge_across_files() {
    let f = Fixture::new(&[
        (
            "compose.yaml",
            "services:\n  web:\n    image: a\n    secrets: [a, {source: b, target: /t/b}]\nsecrets:\n  a: {file: a.txt}\n  b: {file: b.txt, name: bee}\nconfigs:\n  c: {content: one}\n",
        ),
        (
            "compose.override.yaml",
            "services:\n  web:\n    secrets: [{source: a, mode: \"0400\"}, {source: c2, target: /t/b}]\n    configs: [c]\nsecrets:\n  c2: {file: b.txt}\n  b: {labels: {x: y}}\nconfigs:\n  c: {content: two}\n",
        ),
        ("a.txt", "a"),
        ("b.txt", "b"),
    ]);
    let p = f.load().unwrap();
    let web = svc(&p, "web");
    // Same target: the later file's entry replaces the earlier one.
    let got: Vec<(&str, &str, Option<u32>)> = web
        .secrets
        .iter()
        .map(|r| (r.source.as_str(), r.target.as_str(), r.mode))
        .collect();
    assert_eq!(
        got,
        vec![("a", "/run/secrets/a", Some(0o400)), ("c2", "/t/b", None)]
    );
    assert_eq!(web.configs.len(), 1);
    // Top-level entries merge by key.
    assert_eq!(p.secrets["b"].name, "bee");
    assert_eq!(
        p.secrets["b"].labels.get("x").map(String::as_str),
        Some("y")
    );
    assert_eq!(
        p.configs["c"].source,
        FileSource::Content("two".to_string())
    );
}

#[test]
fn config_and_secret_source_errors() {
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\nsecrets:\n  db_password:\n    file: ./missing.txt\n",
    )]);
    assert_eq!(
        short(&f.load().unwrap_err()),
        format!(
            "secrets.db_password.file: {}: no such file",
            f.dir.join("missing.txt").display()
        )
    );
    let f = Fixture::new(&[(
        "compose.yaml",
        "services:\n  web:\n    image: a\nconfigs:\n  d:\n    file: ./sub\n",
    )]);
    fs::create_dir_all(f.dir.join("sub")).unwrap();
    assert_eq!(
        short(&f.load().unwrap_err()),
        format!(
            "configs.d.file: {}: is not a file",
            f.dir.join("sub").display()
        )
    );
    let head = "services:\n  web:\n    image: a\n";
    assert_eq!(
        err(&format!("{head}secrets:\n  s:\n    environment: NOPE_UNSET_VAR\n")),
        "secrets.s.environment: variable NOPE_UNSET_VAR is not set; set it in the environment or in .env"
    );
    assert_eq!(
        err(&format!("{head}secrets:\n  s: {{}}\n")),
        "secrets.s: missing the secret's source: set one of file, environment or external: true"
    );
    assert_eq!(
        err(&format!("{head}secrets:\n  s:\n")),
        "secrets.s: missing the secret's source: set one of file, environment or external: true"
    );
    assert_eq!(
        err(&format!("{head}configs:\n  c:\n    external: false\n")),
        "configs.c: missing the config's source: set one of file, environment, content or external: true"
    );
    assert_eq!(
        err(&format!("{head}configs:\n  c:\n    content: x\n    external: true\n")),
        "configs.c: content and external are given; set only one of file, environment, content or external: true"
    );
    assert_eq!(
        err(&format!("{head}secrets:\n  s:\n    content: x\n")),
        "secrets.s.content: content is only for configs; put a secret's value in a file (file:) or a variable (environment:)"
    );
    assert_eq!(
        err(&format!("{head}secrets:\n  s:\n    fiel: x\n")),
        "secrets.s.fiel: unknown key; did you mean \"file\"?"
    );
    assert_eq!(
        err(&format!("{head}configs:\n  c: ./x.conf\n")),
        "configs.c: expected a mapping, got a string"
    );
}

#[test]
fn service_config_and_secret_reference_errors() {
    let top = "secrets:\n  s:\n    file: compose.yaml\nconfigs:\n  c:\n    content: x\n";
    let e = |svc_part: &str| err(&format!("services:\n  web:\n    image: a\n{svc_part}{top}"));
    assert_eq!(
        e("    secrets:\n      - x\n"),
        "services.web.secrets[0]: secret \"x\" is not defined in the top-level secrets"
    );
    assert_eq!(
        e("    configs:\n      - c\n      - source: s\n"),
        "services.web.configs[1]: config \"s\" is not defined in the top-level configs"
    );
    assert_eq!(
        e("    secrets:\n      - source: s\n        traget: /x\n"),
        "services.web.secrets[0].traget: unknown key; did you mean \"target\"?"
    );
    assert_eq!(
        e("    secrets:\n      - target: /x\n"),
        "services.web.secrets[0]: missing \"source\" (the secret's key in the top-level secrets)"
    );
    assert_eq!(
        e("    secrets:\n      - source: s\n        mode: \"0999\"\n"),
        "services.web.secrets[0].mode: invalid mode \"0999\": expected octal permissions like \"0440\""
    );
    assert_eq!(
        e("    secrets:\n      - source: s\n        mode: 70000\n"),
        "services.web.secrets[0].mode: invalid mode 0o210560: expected octal permissions like \"0440\""
    );
    assert_eq!(
        e("    secrets:\n      - source: s\n        uid: root\n"),
        "services.web.secrets[0].uid: invalid ID \"root\": expected a number like \"1000\""
    );
    assert_eq!(
        e("    secrets:\n      - s\n      - source: s\n        target: /run/secrets/s\n"),
        "services.web.secrets[1]: duplicate target \"/run/secrets/s\" (also at services.web.secrets[0])"
    );
    assert_eq!(
        e("    secrets: s\n"),
        "services.web.secrets: expected a list of secret names or mappings with source/target, got a string"
    );
    assert_eq!(
        e("    secrets:\n      - source: s\n        target: /run/secrets/\n"),
        "services.web.secrets[0].target: invalid target \"/run/secrets/\": expected a file path, like \"/run/secrets/db_password\""
    );
}
