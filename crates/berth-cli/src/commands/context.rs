//! `berth context …`: docker's contexts, in docker's own store (`$DOCKER_CONFIG`, else
//! `~/.docker`; see the berth-context crate), so `berth context use X` and `docker context use
//! X` switch both CLIs. Also where the CLI's engine is chosen: [`select`] and [`engine`] follow
//! docker's order (`-H`, `BERTH_HOST`/`DOCKER_HOST`, `DOCKER_CONTEXT`, `currentContext`, the
//! default socket or the Berth VM's).

use std::io::Write;

use berth_context::{Context, Error as StoreError, Store, DEFAULT_CONTEXT};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::ops::inspect_each;
use super::{usage, Failure, Res};
use crate::template::{self, Format};

/// What docker calls the default context in `context ls`.
const DEFAULT_DESCRIPTION: &str = "Current DOCKER_HOST based configuration";

#[derive(Subcommand)]
pub enum ContextCmd {
    /// Create a context
    Create(CreateArgs),
    /// List contexts
    #[command(visible_alias = "list")]
    Ls {
        /// Format output: table (default), json, or a Go template
        #[arg(long)]
        format: Option<String>,
        /// Only show context names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Set the current docker context (for berth and docker)
    Use {
        /// The context ("default": -H/DOCKER_HOST or the default socket)
        name: String,
    },
    /// Print the name of the current context
    Show,
    /// Display detailed information on one or more contexts
    Inspect {
        /// Format output using a custom template ('json' or a Go template)
        #[arg(short, long)]
        format: Option<String>,
        /// The contexts (default: the current one)
        names: Vec<String>,
    },
    /// Remove one or more contexts
    #[command(visible_alias = "remove")]
    Rm {
        /// Remove the current context too (the current context becomes "default")
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// Description of the context
    #[arg(long)]
    pub description: Option<String>,
    /// The docker endpoint: host=unix:///path[,skip-tls-verify=BOOL] or from=CONTEXT
    /// (default: the endpoint berth uses now)
    #[arg(long)]
    pub docker: Option<String>,
    /// The context's name
    pub name: String,
}

/// Which context is in effect, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// The context's name (`default` when a host was given or nothing chose another).
    pub context: String,
    /// The host given by `-H`, `BERTH_HOST` or `DOCKER_HOST` (which one, and its value):
    /// it overrides every context.
    pub host_override: Option<(&'static str, String)>,
    /// Where the context's name came from (`DOCKER_CONTEXT`, config.json), for messages.
    pub from: &'static str,
    /// A config.json that could not be read (the default context is used then).
    pub warning: Option<String>,
}

/// docker's choice of context: a host (`-H`, then `BERTH_HOST`, then `DOCKER_HOST`) means the
/// default context; else `DOCKER_CONTEXT`; else `currentContext` of config.json; else default.
pub fn select(
    flag: Option<String>,
    berth_env: Option<String>,
    docker_env: Option<String>,
    docker_context: Option<String>,
    store: Option<&Store>,
) -> Selection {
    let given = |v: Option<String>| v.filter(|s| !s.is_empty());
    let host_override = [
        ("-H", given(flag)),
        ("BERTH_HOST", given(berth_env)),
        ("DOCKER_HOST", given(docker_env)),
    ]
    .into_iter()
    .find_map(|(k, v)| v.map(|v| (k, v)));
    let mut sel = Selection {
        context: DEFAULT_CONTEXT.to_string(),
        host_override,
        from: "default",
        warning: None,
    };
    if sel.host_override.is_some() {
        return sel;
    }
    if let Some(name) = given(docker_context) {
        sel.context = name;
        sel.from = "DOCKER_CONTEXT";
        return sel;
    }
    if let Some(store) = store {
        match store.current() {
            Ok(Some(name)) => {
                sel.context = name;
                sel.from = "currentContext in config.json";
            }
            Ok(None) => {}
            Err(e) => {
                sel.warning = Some(format!(
                    "WARNING: cannot read the current context, using \"default\": {e}"
                ))
            }
        }
    }
    sel
}

/// The engine host for `sel` and whether something chose it (else the default socket, which
/// may fall back to the VM's): the override, the context's docker endpoint, or the default.
pub fn engine(sel: &Selection, store: Option<&Store>) -> Result<(String, bool), String> {
    if let Some((_, host)) = &sel.host_override {
        return Ok((host.clone(), true));
    }
    if sel.context == DEFAULT_CONTEXT {
        return Ok((crate::DEFAULT_HOST.to_string(), false));
    }
    let name = &sel.context;
    let Some(store) = store else {
        return Err(format!(
            "context {name:?} (from {}): {}",
            sel.from,
            StoreError::NoConfigDir
        ));
    };
    match store.get(name) {
        Ok(c) => match c.host {
            Some(h) if !h.is_empty() => Ok((h, true)),
            _ => Err(format!(
                "context {name:?} has no docker endpoint: recreate it with \
                 berth context create {name} --docker host=unix:///path"
            )),
        },
        Err(StoreError::NotFound(_)) => Err(format!(
            "context {name:?} (from {}) does not exist: list the contexts with \
             `berth context ls`, or go back to the default with {}",
            sel.from,
            if sel.from == "DOCKER_CONTEXT" {
                "`unset DOCKER_CONTEXT`"
            } else {
                "`berth context use default`"
            }
        )),
        Err(e) => Err(format!("context {name:?}: {e}")),
    }
}

/// The default context's endpoint as berth would use it: the override, else the default
/// socket (or the Berth VM's when no native engine is there).
fn default_endpoint(sel: &Selection) -> String {
    match &sel.host_override {
        Some((_, h)) => h.clone(),
        None => crate::vm_fallback(crate::DEFAULT_HOST.to_string(), false),
    }
}

fn store_err(e: StoreError) -> Failure {
    usage(e.to_string())
}

/// Run one `context` command; the exit code (1 on failure, as docker).
pub fn run(cmd: ContextCmd, sel: &Selection, store: Result<Store, StoreError>) -> i32 {
    let result = match store {
        Ok(store) => dispatch(cmd, sel, &store),
        Err(e) => Err(store_err(e)),
    };
    let _ = std::io::stdout().flush();
    match result {
        Ok(()) => 0,
        Err(Failure::Exit(code)) => code,
        Err(Failure::Usage(m) | Failure::Daemon(m) | Failure::Connect(m)) => {
            eprintln!("{m}");
            1
        }
    }
}

fn dispatch(cmd: ContextCmd, sel: &Selection, store: &Store) -> Res<()> {
    match cmd {
        ContextCmd::Create(a) => create(a, sel, store),
        ContextCmd::Ls { format, quiet } => ls(format.as_deref(), quiet, sel, store),
        ContextCmd::Use { name } => use_context(&name, sel, store),
        ContextCmd::Show => {
            println!("{}", sel.context);
            Ok(())
        }
        ContextCmd::Inspect { format, names } => {
            let names = if names.is_empty() {
                vec![sel.context.clone()]
            } else {
                names
            };
            inspect_each(&names, format.as_deref(), |n| inspected(n, sel, store))
        }
        ContextCmd::Rm { force, names } => rm(&names, force, sel, store),
    }
}

/// `--docker host=…,skip-tls-verify=…` or `from=CONTEXT`: the host.
fn docker_endpoint(spec: &str, sel: &Selection, store: &Store) -> Res<(String, bool)> {
    let mut host = None;
    let mut skip = false;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            return Err(usage(format!(
                "--docker {spec:?}: {part:?} is not key=value; give host=unix:///path"
            )));
        };
        match k.trim() {
            "host" => host = Some(v.trim().to_string()),
            "skip-tls-verify" => {
                skip = v.trim().parse::<bool>().map_err(|_| {
                    usage(format!(
                        "--docker {spec:?}: skip-tls-verify takes true or false, not {v:?}"
                    ))
                })?
            }
            "from" => {
                let from = v.trim();
                host =
                    Some(if from == DEFAULT_CONTEXT {
                        default_endpoint(sel)
                    } else {
                        store.get(from).map_err(store_err)?.host.ok_or_else(|| {
                            usage(format!("context {from:?} has no docker endpoint"))
                        })?
                    });
            }
            "ca" | "cert" | "key" => {
                return Err(usage(format!(
                    "--docker {spec:?}: berth does not store TLS files for contexts (berthd \
                     listens on a unix socket); create a TLS context with docker context create"
                )))
            }
            other => {
                return Err(usage(format!(
                    "--docker {spec:?}: unrecognized config key {other:?}; use host=, \
                     skip-tls-verify= or from="
                )))
            }
        }
    }
    let host = host.ok_or_else(|| {
        usage(format!(
            "--docker {spec:?}: no host; give host=unix:///path/to/engine.sock"
        ))
    })?;
    berth_context::validate_host(&host).map_err(usage)?;
    Ok((host, skip))
}

fn create(a: CreateArgs, sel: &Selection, store: &Store) -> Res<()> {
    berth_context::validate_name(&a.name).map_err(store_err)?;
    let (host, skip) = match &a.docker {
        Some(spec) => docker_endpoint(spec, sel, store)?,
        // docker's default: the endpoint in use now.
        None => match engine(sel, Some(store)) {
            Ok((h, chosen)) => (crate::vm_fallback(h, chosen), false),
            Err(e) => return Err(usage(e)),
        },
    };
    let mut ctx = Context::new(&a.name, &host, a.description.as_deref());
    if skip {
        ctx.skip_tls_verify = true;
        ctx.meta["Endpoints"]["docker"]["SkipTLSVerify"] = Value::Bool(true);
    }
    store.create(&ctx).map_err(store_err)?;
    println!("{}", a.name);
    eprintln!("Successfully created context {:?}", a.name);
    Ok(())
}

/// `ls` rows: docker's placeholders (Name, Description, DockerEndpoint, Current, Error).
fn ls_rows(sel: &Selection, store: &Store) -> Res<Vec<Value>> {
    let (contexts, broken) = store.list().map_err(store_err)?;
    for b in &broken {
        eprintln!(
            "WARNING: skipping the context in {}: {}",
            b.path.display(),
            b.why
        );
    }
    let mut rows = vec![json!({
        "Name": DEFAULT_CONTEXT,
        "Description": DEFAULT_DESCRIPTION,
        "DockerEndpoint": default_endpoint(sel),
        "Current": sel.context == DEFAULT_CONTEXT,
        "Error": "",
    })];
    for c in contexts {
        rows.push(json!({
            "Name": c.name,
            "Description": c.description,
            "DockerEndpoint": c.host.unwrap_or_default(),
            "Current": sel.context == c.name,
            "Error": "",
        }));
    }
    // docker sorts the default context among the others.
    rows.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    Ok(rows)
}

fn ls(format: Option<&str>, quiet: bool, sel: &Selection, store: &Store) -> Res<()> {
    let rows = ls_rows(sel, store)?;
    if !rows.iter().any(|r| r["Current"] == true) {
        eprintln!(
            "WARNING: the current context {:?} (from {}) does not exist",
            sel.context, sel.from
        );
    }
    if quiet {
        for r in &rows {
            println!("{}", r["Name"].as_str().unwrap_or_default());
        }
        return Ok(());
    }
    let format = Format::parse(format);
    let rows: Vec<Value> = match format {
        // The table marks the current context with " *" after its name, as docker's.
        Format::Table | Format::TableTemplate(_) => rows
            .into_iter()
            .map(|mut r| {
                if r["Current"] == true {
                    let starred = format!("{} *", r["Name"].as_str().unwrap_or_default());
                    r["Name"] = Value::String(starred);
                }
                r
            })
            .collect(),
        _ => rows,
    };
    let out = template::print(
        &format,
        &rows,
        &[
            ("Name", "NAME"),
            ("Description", "DESCRIPTION"),
            ("DockerEndpoint", "DOCKER ENDPOINT"),
            ("Error", "ERROR"),
        ],
        &[("Current", "CURRENT")],
    )
    .map_err(usage)?;
    print!("{out}");
    Ok(())
}

fn use_context(name: &str, sel: &Selection, store: &Store) -> Res<()> {
    if name != DEFAULT_CONTEXT {
        store.get(name).map_err(store_err)?;
    }
    store.set_current(Some(name)).map_err(store_err)?;
    println!("{name}");
    eprintln!("Current context is now {name:?}");
    if let Some((var, _)) = &sel.host_override {
        if *var != "-H" {
            eprintln!(
                "Warning: {var} environment variable overrides the active context. To use a \
                 context, unset {var}."
            );
        }
    } else if sel.from == "DOCKER_CONTEXT" {
        eprintln!(
            "Warning: DOCKER_CONTEXT environment variable overrides the active context. To use \
             {name:?}, unset DOCKER_CONTEXT."
        );
    }
    Ok(())
}

/// The TLS files docker keeps for each endpoint of the context (none for berth's own).
fn tls_material(store: &Store, name: &str) -> Value {
    let mut out = serde_json::Map::new();
    if let Ok(dirs) = std::fs::read_dir(store.tls_dir(name)) {
        for d in dirs.flatten() {
            let mut files: Vec<String> = std::fs::read_dir(d.path())
                .map(|fs| {
                    fs.flatten()
                        .map(|f| f.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            out.insert(d.file_name().to_string_lossy().into_owned(), json!(files));
        }
    }
    Value::Object(out)
}

/// One context as docker's `context inspect` prints it (its key order), as JSON bytes.
fn inspected(name: &str, sel: &Selection, store: &Store) -> Res<Vec<u8>> {
    let (meta, tls, storage) = if name == DEFAULT_CONTEXT {
        let meta = json!({
            "Name": DEFAULT_CONTEXT,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": default_endpoint(sel), "SkipTLSVerify": false}},
        });
        let storage = json!({"MetadataPath": "<IN MEMORY>", "TLSPath": "<IN MEMORY>"});
        (meta, json!({}), storage)
    } else {
        let c = store.get(name).map_err(store_err)?;
        let storage = json!({
            "MetadataPath": store.meta_dir(name).display().to_string(),
            "TLSPath": store.tls_dir(name).display().to_string(),
        });
        (c.meta, tls_material(store, name), storage)
    };
    let field = |k: &str| meta.get(k).cloned().unwrap_or_else(|| json!({}));
    let text = format!(
        "{{\"Name\":{},\"Metadata\":{},\"Endpoints\":{},\"TLSMaterial\":{tls},\"Storage\":{{\"MetadataPath\":{},\"TLSPath\":{}}}}}",
        Value::String(name.to_string()),
        field("Metadata"),
        field("Endpoints"),
        storage["MetadataPath"],
        storage["TLSPath"],
    );
    Ok(text.into_bytes())
}

fn rm(names: &[String], force: bool, sel: &Selection, store: &Store) -> Res<()> {
    let configured = store.current().ok().flatten();
    let mut failed = false;
    for name in names {
        let current = *name == sel.context || configured.as_deref() == Some(name.as_str());
        let result = if name == DEFAULT_CONTEXT {
            Err(format!(
                "context {name:?} cannot be removed: it is the built-in one (-H/DOCKER_HOST)"
            ))
        } else if current && !force {
            Err(format!(
                "context {name:?} is in use, set -f flag to force remove (the current context \
                 then becomes \"default\")"
            ))
        } else {
            store
                .remove(name)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    if configured.as_deref() == Some(name.as_str()) {
                        store.set_current(None).map_err(|e| {
                            format!("removed {name:?} but could not reset the current context: {e}")
                        })
                    } else {
                        Ok(())
                    }
                })
        };
        match result {
            Ok(()) => println!("{name}"),
            Err(m) => {
                let _ = std::io::stdout().flush();
                eprintln!("{m}");
                failed = true;
            }
        }
    }
    if failed {
        Err(Failure::Exit(1))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a test failure

    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn selection_order_is_dockers() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store
            .create(&Context::new("cfg", "unix:///cfg.sock", None))
            .unwrap();
        store
            .create(&Context::new("env", "unix:///env.sock", None))
            .unwrap();
        store.set_current(Some("cfg")).unwrap();
        let st = Some(&store);

        // A host wins over every context; -H over BERTH_HOST over DOCKER_HOST.
        let sel = select(s("unix:///h"), s("unix:///b"), s("unix:///d"), s("env"), st);
        assert_eq!(sel.host_override, Some(("-H", "unix:///h".into())));
        assert_eq!(sel.context, "default");
        assert_eq!(engine(&sel, st).unwrap(), ("unix:///h".into(), true));
        let sel = select(None, s("unix:///b"), s("unix:///d"), s("env"), st);
        assert_eq!(engine(&sel, st).unwrap().0, "unix:///b");
        let sel = select(s(""), None, s("unix:///d"), s("env"), st);
        assert_eq!(sel.host_override, Some(("DOCKER_HOST", "unix:///d".into())));

        // Then DOCKER_CONTEXT, then currentContext.
        let sel = select(None, s(""), None, s("env"), st);
        assert_eq!((sel.context.as_str(), sel.from), ("env", "DOCKER_CONTEXT"));
        assert_eq!(engine(&sel, st).unwrap(), ("unix:///env.sock".into(), true));
        let sel = select(None, None, None, s(""), st);
        assert_eq!(sel.context, "cfg");
        assert_eq!(engine(&sel, st).unwrap(), ("unix:///cfg.sock".into(), true));

        // DOCKER_CONTEXT=default beats currentContext: the default socket, not chosen.
        let sel = select(None, None, None, s("default"), st);
        assert_eq!(
            engine(&sel, st).unwrap(),
            (crate::DEFAULT_HOST.to_string(), false)
        );

        // Nothing anywhere: default.
        let empty = tempfile::tempdir().unwrap();
        let e = Store::new(empty.path());
        let sel = select(None, None, None, None, Some(&e));
        assert_eq!(sel.context, "default");
        assert!(!engine(&sel, Some(&e)).unwrap().1);
        assert_eq!(
            select(None, None, None, None, None).context,
            "default",
            "no config directory: default"
        );
    }

    #[test]
    fn missing_context_is_one_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        let sel = select(None, None, None, s("gone"), Some(&store));
        let e = engine(&sel, Some(&store)).unwrap_err();
        assert!(
            e.contains("\"gone\" (from DOCKER_CONTEXT) does not exist"),
            "{e}"
        );
        assert!(e.contains("unset DOCKER_CONTEXT"), "{e}");
        store.set_current(Some("gone")).unwrap();
        let sel = select(None, None, None, None, Some(&store));
        let e = engine(&sel, Some(&store)).unwrap_err();
        assert!(e.contains("berth context use default"), "{e}");
        // A config.json that is not JSON: a warning, and the default context.
        std::fs::write(store.config_file(), "{").unwrap();
        let sel = select(None, None, None, None, Some(&store));
        assert_eq!(sel.context, "default");
        assert!(sel.warning.unwrap().contains("config.json"));
    }

    #[test]
    fn docker_endpoint_specs() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store
            .create(&Context::new("base", "unix:///base.sock", None))
            .unwrap();
        let sel = select(s("unix:///flag"), None, None, None, Some(&store));
        let ep = |spec: &str| docker_endpoint(spec, &sel, &store);
        assert_eq!(ep("host=unix:///x").unwrap(), ("unix:///x".into(), false));
        assert_eq!(
            ep("host=unix:///x,skip-tls-verify=true").unwrap(),
            ("unix:///x".into(), true)
        );
        assert_eq!(ep("from=base").unwrap().0, "unix:///base.sock");
        assert_eq!(ep("from=default").unwrap().0, "unix:///flag");
        for bad in [
            "host=/tmp/s",
            "foo=bar",
            "unix:///x",
            "skip-tls-verify=yes,host=unix:///x",
            "ca=/c.pem,host=unix:///x",
            "from=nope",
            "",
        ] {
            assert!(ep(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn inspect_keeps_dockers_key_order() {
        let d = tempfile::tempdir().unwrap();
        let store = Store::new(d.path());
        store
            .create(&Context::new("aa", "unix:///a.sock", Some("A")))
            .unwrap();
        let sel = select(None, None, None, None, Some(&store));
        let raw = String::from_utf8(inspected("aa", &sel, &store).unwrap()).unwrap();
        let keys: Vec<usize> = [
            "\"Name\"",
            "\"Metadata\"",
            "\"Endpoints\"",
            "\"TLSMaterial\"",
        ]
        .iter()
        .map(|k| raw.find(k).unwrap())
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{raw}");
        let v: Value = serde_json::from_str(&raw).unwrap();
        assert_eq!(v["Endpoints"]["docker"]["Host"], "unix:///a.sock");
        assert_eq!(v["Metadata"]["Description"], "A");
        assert_eq!(
            v["Storage"]["MetadataPath"],
            store.meta_dir("aa").display().to_string()
        );
        assert!(inspected("nope", &sel, &store).is_err());
    }
}
