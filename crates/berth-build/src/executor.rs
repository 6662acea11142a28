//! The build executor: walks a parsed Dockerfile stage by stage, keeps the build's state
//! (arguments in scope, the image config being made, step numbering, the cache keys) and asks
//! a [`Backend`] — the engine — for the things that touch images and file systems: resolving
//! a base image, looking a step up in the cache, running a command, copying files, storing
//! the result.
//!
//! Semantics follow Docker's classic builder: every instruction after `FROM` that changes the
//! image is a step with its own image (so a fully cached rebuild yields the same image ID);
//! config-only steps get an `empty_layer` history entry `/bin/sh -c #(nop) ...`; a `RUN`'s
//! history is its command, prefixed with `|N ARG=value ...` when build arguments are in scope
//! (they are part of the cache key, so changing one reruns the step). Unlike the classic
//! builder, only the stages the target needs are built.

use crate::ast::{
    CommandForm, CopySpec, Dockerfile, Healthcheck, Heredoc, Instruction, Kind, RunMount,
    RunNetwork, Stage,
};
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// What the caller asked for (`docker build` flags / `POST /build` parameters).
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--build-arg`: a `None` value means "declared but unset".
    pub build_args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `--label`, added to the final image.
    pub labels: BTreeMap<String, String>,
    /// `--network` for `RUN` steps (`default`, `none`, `host`, or a network name).
    pub network: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
}

/// An image as the executor sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The image ID, `sha256:<config digest>`.
    pub id: String,
    /// The whole OCI image config (`architecture`, `os`, `config`, `rootfs`, `history`, ...).
    pub config: Value,
}

impl Image {
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }
}

/// Where a `COPY`'s sources come from.
#[derive(Debug, Clone, PartialEq)]
pub enum CopyFrom {
    /// The build context.
    Context,
    /// Another stage's result or an image (`--from`).
    Image(Image),
}

/// A `COPY` or `ADD` step, resolved against the stage's state.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyStep {
    pub from: CopyFrom,
    /// Source paths as written (relative to the context or the image root).
    pub sources: Vec<String>,
    /// `COPY <<EOF name`: (file name, content).
    pub inline: Vec<(String, String)>,
    /// Absolute destination; a trailing `/` means "a directory".
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<u32>,
    /// `ADD`: local archives are extracted, URLs fetched.
    pub add: bool,
    /// `ADD --checksum=sha256:<hex>`: what a fetched URL must hash to.
    pub checksum: Option<String>,
    /// `--exclude` patterns.
    pub exclude: Vec<String>,
    /// `COPY --parents`: keep each source's path below the context.
    pub parents: bool,
    /// The user and working directory of the stage (for `--chown` names and relative paths).
    pub user: String,
}

/// A `RUN` step, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    pub argv: Vec<String>,
    /// `KEY=value`: the image's environment plus the build arguments in scope.
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    /// `default`, `none`, `host` or a network name.
    pub network: String,
    pub mounts: Vec<RunMount>,
    /// Images the mounts' `from=` names resolved to, by name.
    pub mount_images: BTreeMap<String, Image>,
}

/// What a step does to the file system.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Config only: no layer.
    None,
    Run(RunStep),
    Copy(CopyStep),
    /// `WORKDIR` of a directory that may not exist yet (made like `mkdir -p`, owned by the
    /// stage's user).
    Mkdir {
        path: String,
        user: String,
    },
}

/// A build failure, worded for the user. `line` is the Dockerfile line when one is to blame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    pub message: String,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BuildError {}

impl From<String> for BuildError {
    fn from(message: String) -> Self {
        BuildError { message }
    }
}

impl From<crate::ParseError> for BuildError {
    fn from(e: crate::ParseError) -> Self {
        BuildError {
            message: e.to_string(),
        }
    }
}

/// Progress text (Docker's `stream` messages): whole lines, each ending with `\n`.
pub trait Log {
    fn text(&mut self, s: &str);
}

impl<F: FnMut(&str)> Log for F {
    fn text(&mut self, s: &str) {
        self(s)
    }
}

/// What the executor needs from the engine.
pub trait Backend {
    /// The image `name` (pulled when missing, or always with `pull`).
    fn base_image(
        &mut self,
        name: &str,
        pull: bool,
        platform: Option<&str>,
        log: &mut dyn Log,
    ) -> Result<Image, BuildError>;

    /// The image a step with this cache key made before, if the engine still has it.
    fn cached(&mut self, key: &str) -> Option<Image>;

    /// A digest of everything a copy reads (names, contents, modes), for its cache key.
    fn copy_inputs(&mut self, step: &CopyStep) -> Result<String, BuildError>;

    /// Perform `change` on `parent`'s file system (or an empty one) and store the result with
    /// `config` (the executor's new config; the backend appends the layer's diff ID to
    /// `rootfs.diff_ids` and `history` to `history`, filling `created`) under `cache_key`.
    /// A `Change` that leaves the file system as it was stores no layer and marks the
    /// history entry `empty_layer`.
    fn commit(
        &mut self,
        parent: Option<&Image>,
        change: Change,
        config: Value,
        history: Value,
        cache_key: &str,
        log: &mut dyn Log,
    ) -> Result<Image, BuildError>;
}

/// The default shell of a stage without `SHELL`.
fn default_shell() -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into()]
}

/// Build `df` (the target stage, or the last one) and return the final image. Tagging is the
/// caller's.
pub fn build(
    df: &Dockerfile,
    opts: &BuildOptions,
    backend: &mut dyn Backend,
    log: &mut dyn Log,
) -> Result<Image, BuildError> {
    if df.stages.is_empty() {
        return Err(BuildError::from(
            "the Dockerfile has no FROM instruction: start it with FROM <image>".to_string(),
        ));
    }
    let esc = df.escape;
    // Meta ARGs (before the first FROM): their values are what FROM lines may use.
    let mut meta: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut used_args: BTreeSet<String> = BTreeSet::new();
    for a in &df.meta_args {
        // `--build-arg NAME` without a value (and NAME unset in the client's environment)
        // arrives as null: the Dockerfile's default stays.
        let v = match opts.build_args.get(&a.name) {
            Some(Some(v)) => {
                used_args.insert(a.name.clone());
                Some(v.clone())
            }
            Some(None) => {
                used_args.insert(a.name.clone());
                a.default.clone()
            }
            None => a.default.clone(),
        };
        meta.insert(a.name.clone(), v);
    }
    let target = match &opts.target {
        Some(t) => {
            let t = t.to_lowercase();
            df.stages
                .iter()
                .position(|s| s.name.as_deref() == Some(t.as_str()))
                .ok_or_else(|| {
                    let names: Vec<&str> =
                        df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
                    BuildError::from(if names.is_empty() {
                        format!(
                            "target stage \"{t}\" could not be found: the Dockerfile has no \
                             named stages (name one with FROM <image> AS {t})"
                        )
                    } else {
                        format!(
                            "target stage \"{t}\" could not be found: the stages are {}",
                            names.join(", ")
                        )
                    })
                })?
        }
        None => df.stages.len() - 1,
    };
    let meta_lookup = |name: &str| meta.get(name).cloned().flatten();
    let bases: Vec<String> = df
        .stages
        .iter()
        .map(|s| s.expand_base(esc, &meta_lookup))
        .collect::<Result<_, _>>()?;
    let needed = needed_stages(df, &bases, target, esc, &meta_lookup);
    let total: usize = needed
        .iter()
        .map(|&i| 1 + df.stages[i].instructions.len())
        .sum::<usize>()
        + usize::from(!opts.labels.is_empty());
    let mut step = 0usize;
    let mut done: HashMap<usize, Image> = HashMap::new();
    let mut last: Option<Image> = None;
    for &i in &needed {
        let stage = &df.stages[i];
        let img = build_stage(
            df,
            stage,
            &bases[i],
            &done,
            opts,
            &meta,
            &mut used_args,
            backend,
            log,
            &mut step,
            total,
        )?;
        done.insert(i, img.clone());
        last = Some(img);
    }
    let mut img = last.ok_or_else(|| BuildError::from("nothing to build".to_string()))?;
    if !opts.labels.is_empty() {
        step += 1;
        let pairs: Vec<String> = opts
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", quote_if_needed(k), quote_if_needed(v)))
            .collect();
        let text = format!("LABEL {}", pairs.join(" "));
        log.text(&format!("Step {step}/{total} : {text}\n"));
        let mut config = img.config.clone();
        {
            let c = inner_config(&mut config);
            let labels = obj(c, "Labels");
            for (k, v) in &opts.labels {
                labels.insert(k.clone(), Value::String(v.clone()));
            }
        }
        img = commit_step(
            backend,
            &img,
            Change::None,
            config,
            nop(&text),
            &cache_key(&img.id, &text, ""),
            opts.no_cache,
            log,
        )?;
    }
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !used_args.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        log.text(&format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            names.join(" ")
        ));
    }
    Ok(img)
}

/// Docker's predefined build arguments: usable without an `ARG`, never warned about.
const PREDEFINED_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The stages `target` depends on (by FROM, COPY --from and RUN --mount from=), in file
/// order, ending with `target`.
fn needed_stages(
    df: &Dockerfile,
    bases: &[String],
    target: usize,
    esc: char,
    meta: &dyn Fn(&str) -> Option<String>,
) -> Vec<usize> {
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let mut refs: Vec<String> = vec![bases[i].clone()];
        for ins in &df.stages[i].instructions {
            match &ins.kind {
                Kind::Copy(c) | Kind::Add(c) => {
                    if let Some(f) = &c.from {
                        refs.push(
                            crate::expand::expand_word(f, esc, meta).unwrap_or_else(|_| f.clone()),
                        );
                    }
                }
                Kind::Run(r) => refs.extend(r.mounts.iter().filter_map(|m| m.from.clone())),
                _ => {}
            }
        }
        for r in refs {
            if let Some(j) = stage_index(df, &r, i) {
                todo.push(j);
            }
        }
    }
    need.into_iter().collect()
}

/// The earlier stage a name or index refers to, seen from stage `current`.
fn stage_index(df: &Dockerfile, name: &str, current: usize) -> Option<usize> {
    if let Ok(n) = name.parse::<usize>() {
        return (n < current).then_some(n);
    }
    let lower = name.to_lowercase();
    df.stages[..current]
        .iter()
        .position(|s| s.name.as_deref() == Some(lower.as_str()))
}

fn scratch() -> Image {
    Image {
        id: String::new(),
        config: json!({
            "architecture": host_arch(),
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }),
    }
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

/// The `config` object (Docker's container config inside the image config).
fn inner_config(config: &mut Value) -> &mut Map<String, Value> {
    if !config.is_object() {
        *config = json!({});
    }
    ensure_obj(&mut config["config"])
}

fn ensure_obj(slot: &mut Value) -> &mut Map<String, Value> {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

fn obj<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    ensure_obj(m.entry(key.to_string()).or_insert(Value::Null))
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn env_get(env: &[String], key: &str) -> Option<String> {
    env.iter().rev().find_map(|e| {
        let (k, v) = e.split_once('=').unwrap_or((e, ""));
        (k == key).then(|| v.to_string())
    })
}

fn env_set(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// The cache key of a step: its parent, its history text and its inputs.
fn cache_key(parent: &str, text: &str, inputs: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"berth-build-cache-v1\0");
    h.update(parent.as_bytes());
    h.update(b"\0");
    h.update(text.as_bytes());
    h.update(b"\0");
    h.update(inputs.as_bytes());
    format!("sha256:{}", hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn nop(text: &str) -> Value {
    json!({"created_by": format!("/bin/sh -c #(nop)  {text}"), "empty_layer": true})
}

fn quote_if_needed(s: &str) -> String {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

#[allow(clippy::too_many_arguments)]
fn commit_step(
    backend: &mut dyn Backend,
    parent: &Image,
    change: Change,
    config: Value,
    history: Value,
    key: &str,
    no_cache: bool,
    log: &mut dyn Log,
) -> Result<Image, BuildError> {
    if !no_cache {
        if let Some(hit) = backend.cached(key) {
            log.text(" ---> Using cache\n");
            log.text(&format!(" ---> {}\n", hit.short_id()));
            return Ok(hit);
        }
    }
    let parent = (!parent.id.is_empty()).then_some(parent);
    let img = backend.commit(parent, change, config, history, key, log)?;
    log.text(&format!(" ---> {}\n", img.short_id()));
    Ok(img)
}

/// The stage-local state.
struct StageState {
    /// Build arguments declared in this stage (`ARG`), with their values.
    args: BTreeMap<String, Option<String>>,
}

#[allow(clippy::too_many_arguments)]
fn build_stage(
    df: &Dockerfile,
    stage: &Stage,
    base: &str,
    done: &HashMap<usize, Image>,
    opts: &BuildOptions,
    meta: &BTreeMap<String, Option<String>>,
    used_args: &mut BTreeSet<String>,
    backend: &mut dyn Backend,
    log: &mut dyn Log,
    step: &mut usize,
    total: usize,
) -> Result<Image, BuildError> {
    let esc = df.escape;
    *step += 1;
    log.text(&format!("Step {step}/{total} : {}\n", stage.source.trim()));
    let platform = stage.expand_platform(esc, &|n| meta.get(n).cloned().flatten())?;
    let mut img = if base.eq_ignore_ascii_case("scratch") {
        scratch()
    } else if let Some(j) = stage_index(df, base, stage.index) {
        done.get(&j).cloned().ok_or_else(|| {
            BuildError::from(format!(
                "{}:{}: stage {base} was not built before this one",
                stage.file, stage.loc.line
            ))
        })?
    } else {
        backend.base_image(
            base,
            opts.pull,
            platform.as_deref().or(opts.platform.as_deref()),
            log,
        )?
    };
    if !img.id.is_empty() {
        log.text(&format!(" ---> {}\n", img.short_id()));
    }
    let mut st = StageState {
        args: BTreeMap::new(),
    };
    // ONBUILD triggers of the base run first, then are cleared from the new image.
    let triggers = str_list(img.config.get("config").and_then(|c| c.get("OnBuild")));
    if !triggers.is_empty() {
        log.text(&format!(
            "# Executing {} build trigger{}\n",
            triggers.len(),
            if triggers.len() == 1 { "" } else { "s" }
        ));
        let text = format!("FROM scratch\n{}\n", triggers.join("\n"));
        let parsed = crate::parse(&text, &format!("ONBUILD trigger of {base}"))?;
        let mut config = img.config.clone();
        inner_config(&mut config).insert("OnBuild".into(), Value::Null);
        img.config = config;
        for ins in parsed.stages.iter().flat_map(|s| s.instructions.iter()) {
            img = run_instruction(
                df, stage, ins, img, done, opts, meta, used_args, &mut st, backend, log,
            )?;
        }
    }
    for ins in &stage.instructions {
        *step += 1;
        log.text(&format!(
            "Step {step}/{total} : {}\n",
            first_line(&ins.source)
        ));
        img = run_instruction(
            df, stage, ins, img, done, opts, meta, used_args, &mut st, backend, log,
        )?;
    }
    Ok(img)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

#[allow(clippy::too_many_arguments)]
fn run_instruction(
    df: &Dockerfile,
    stage: &Stage,
    ins: &Instruction,
    img: Image,
    done: &HashMap<usize, Image>,
    opts: &BuildOptions,
    meta: &BTreeMap<String, Option<String>>,
    used_args: &mut BTreeSet<String>,
    st: &mut StageState,
    backend: &mut dyn Backend,
    log: &mut dyn Log,
) -> Result<Image, BuildError> {
    let esc = df.escape;
    let env = str_list(img.config.get("config").and_then(|c| c.get("Env")));
    // Variables: the image's environment wins over build arguments, as in Docker.
    let lookup = |name: &str| -> Option<String> {
        env_get(&env, name).or_else(|| {
            st.args.get(name).cloned().flatten().or_else(|| {
                PREDEFINED_ARGS
                    .contains(&name)
                    .then(|| opts.build_args.get(name).cloned().flatten())
                    .flatten()
            })
        })
    };
    let e = ins.expand(esc, &lookup)?;
    let at = |msg: String| BuildError::from(format!("{}:{}: {msg}", ins.file, ins.loc.line));
    let mut config = img.config.clone();
    let c = inner_config(&mut config);
    let shell = {
        let s = str_list(c.get("Shell"));
        if s.is_empty() {
            default_shell()
        } else {
            s
        }
    };
    let workdir = c
        .get("WorkingDir")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("/")
        .to_string();
    let user = c
        .get("User")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let text = canonical_text(&e);
    let simple = |backend: &mut dyn Backend,
                  log: &mut dyn Log,
                  config: Value|
     -> Result<Image, BuildError> {
        commit_step(
            backend,
            &img,
            Change::None,
            config,
            nop(&text),
            &cache_key(&img.id, &text, ""),
            opts.no_cache,
            log,
        )
    };
    match &e.kind {
        Kind::Arg(decls) => {
            for d in decls {
                let v = match opts.build_args.get(&d.name) {
                    Some(Some(v)) => {
                        used_args.insert(d.name.clone());
                        Some(v.clone())
                    }
                    Some(None) => {
                        used_args.insert(d.name.clone());
                        d.default
                            .clone()
                            .or_else(|| meta.get(&d.name).cloned().flatten())
                    }
                    // An ARG without a default imports the meta ARG's value.
                    None => d
                        .default
                        .clone()
                        .or_else(|| meta.get(&d.name).cloned().flatten()),
                };
                st.args.insert(d.name.clone(), v);
            }
            // No new image: an ARG only changes what later steps see (and their cache keys).
            log.text(&format!(" ---> {}\n", short_or_scratch(&img)));
            Ok(img)
        }
        Kind::Env(pairs) => {
            let mut env = str_list(c.get("Env"));
            for (k, v) in pairs {
                env_set(&mut env, k, v);
            }
            c.insert("Env".into(), json!(env));
            simple(backend, log, config)
        }
        Kind::Label(pairs) => {
            let labels = obj(c, "Labels");
            for (k, v) in pairs {
                labels.insert(k.clone(), Value::String(v.clone()));
            }
            simple(backend, log, config)
        }
        Kind::Maintainer(m) => {
            config["author"] = Value::String(m.clone());
            simple(backend, log, config)
        }
        Kind::Expose(ports) => {
            let exposed = obj(c, "ExposedPorts");
            for p in ports {
                for port in expand_ports(p).map_err(at)? {
                    exposed.insert(port, json!({}));
                }
            }
            simple(backend, log, config)
        }
        Kind::Volume(vols) => {
            let v = obj(c, "Volumes");
            for vol in vols {
                if vol.trim().is_empty() {
                    return Err(at("VOLUME specified can not be an empty string".into()));
                }
                v.insert(vol.clone(), json!({}));
            }
            simple(backend, log, config)
        }
        Kind::User(u) => {
            c.insert("User".into(), Value::String(u.clone()));
            simple(backend, log, config)
        }
        Kind::StopSignal(s) => {
            c.insert("StopSignal".into(), Value::String(s.clone()));
            simple(backend, log, config)
        }
        Kind::Shell(s) => {
            c.insert("Shell".into(), json!(s));
            simple(backend, log, config)
        }
        Kind::Onbuild(inner) => {
            let mut list = str_list(c.get("OnBuild"));
            list.push(first_line(&inner.source).to_string());
            c.insert("OnBuild".into(), json!(list));
            simple(backend, log, config)
        }
        Kind::Healthcheck(h) => {
            c.insert("Healthcheck".into(), healthcheck_json(h));
            simple(backend, log, config)
        }
        Kind::Cmd(form) => {
            c.insert("Cmd".into(), json!(command(form, &shell)));
            simple(backend, log, config)
        }
        Kind::Entrypoint(form) => {
            c.insert("Entrypoint".into(), json!(command(form, &shell)));
            // Docker: a CMD inherited from the base image is reset by ENTRYPOINT.
            let own_cmd = stage
                .instructions
                .iter()
                .take_while(|i| i.loc != ins.loc)
                .any(|i| matches!(i.kind, Kind::Cmd(_)));
            if !own_cmd {
                c.insert("Cmd".into(), Value::Null);
            }
            simple(backend, log, config)
        }
        Kind::Workdir(w) => {
            let path = join_path(&workdir, w);
            c.insert("WorkingDir".into(), Value::String(path.clone()));
            commit_step(
                backend,
                &img,
                Change::Mkdir {
                    path,
                    user: user.clone(),
                },
                config,
                nop(&text),
                &cache_key(&img.id, &text, ""),
                opts.no_cache,
                log,
            )
        }
        Kind::Copy(spec) | Kind::Add(spec) => {
            let add = matches!(e.kind, Kind::Add(_));
            let from = match &spec.from {
                None => CopyFrom::Context,
                Some(f) => CopyFrom::Image(match stage_index(df, f, stage.index) {
                    Some(j) => done
                        .get(&j)
                        .cloned()
                        .ok_or_else(|| at(format!("stage {f} was not built before this one")))?,
                    None => backend.base_image(f, opts.pull, None, log)?,
                }),
            };
            let copy = copy_step(spec, from, add, &workdir, &user).map_err(at)?;
            let inputs = backend.copy_inputs(&copy)?;
            let key = cache_key(&img.id, &text, &inputs);
            let keyword = if add { "ADD" } else { "COPY" };
            let history = json!({
                "created_by": format!("/bin/sh -c #(nop) {keyword} {}", describe_copy(&copy, &inputs)),
            });
            commit_step(
                backend,
                &img,
                Change::Copy(copy),
                config,
                history,
                &key,
                opts.no_cache,
                log,
            )
        }
        Kind::Run(run) => {
            let argv = run_argv(run, &shell);
            // Build arguments in scope reach the command as environment variables (not
            // persisted in the image), and are part of the history and the cache key.
            let mut args_env: Vec<String> = Vec::new();
            for (k, v) in &st.args {
                if let Some(v) = v {
                    if env_get(&env, k).is_none() {
                        args_env.push(format!("{k}={v}"));
                    }
                }
            }
            for p in PREDEFINED_ARGS {
                if let Some(Some(v)) = opts.build_args.get(p) {
                    used_args.insert(p.to_string());
                    args_env.push(format!("{p}={v}"));
                }
            }
            let created_by = if args_env.is_empty() {
                argv.join(" ")
            } else {
                format!(
                    "|{} {} {}",
                    args_env.len(),
                    args_env.join(" "),
                    argv.join(" ")
                )
            };
            let mut run_env = env.clone();
            for a in &args_env {
                let (k, v) = a.split_once('=').unwrap_or((a, ""));
                env_set(&mut run_env, k, v);
            }
            let network = match run.network {
                Some(RunNetwork::None) => "none".to_string(),
                Some(RunNetwork::Host) => "host".to_string(),
                Some(RunNetwork::Default) | None => opts
                    .network
                    .clone()
                    .unwrap_or_else(|| "default".to_string()),
            };
            let mut mount_images = BTreeMap::new();
            for m in &run.mounts {
                if let Some(f) = &m.from {
                    let im = match stage_index(df, f, stage.index) {
                        Some(j) => done.get(&j).cloned().ok_or_else(|| {
                            at(format!("stage {f} was not built before this one"))
                        })?,
                        None => backend.base_image(f, opts.pull, None, log)?,
                    };
                    mount_images.insert(f.clone(), im);
                }
            }
            let mount_text: Vec<String> = run.mounts.iter().map(|m| format!("{m:?}")).collect();
            let mut inputs = mount_text.join("\n");
            for (n, im) in &mount_images {
                inputs.push_str(&format!("\n{n}={}", im.id));
            }
            let key = cache_key(&img.id, &format!("RUN {created_by}"), &inputs);
            let step = RunStep {
                argv,
                env: run_env,
                user: user.clone(),
                workdir: workdir.clone(),
                network,
                mounts: run.mounts.clone(),
                mount_images,
            };
            commit_step(
                backend,
                &img,
                Change::Run(step),
                config,
                json!({ "created_by": created_by }),
                &key,
                opts.no_cache,
                log,
            )
        }
    }
}

fn short_or_scratch(img: &Image) -> &str {
    if img.id.is_empty() {
        "scratch"
    } else {
        img.short_id()
    }
}

/// The instruction as Docker's history shows it (after substitution).
fn canonical_text(ins: &Instruction) -> String {
    let q = |s: &str| quote_if_needed(s);
    match &ins.kind {
        Kind::Env(p) => format!(
            "ENV {}",
            p.iter()
                .map(|(k, v)| format!("{k}={}", q(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Kind::Label(p) => format!(
            "LABEL {}",
            p.iter()
                .map(|(k, v)| format!("{}={}", q(k), q(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Kind::Expose(p) => format!("EXPOSE {}", p.join(" ")),
        Kind::Volume(v) => format!("VOLUME {}", json!(v)),
        Kind::User(u) => format!("USER {u}"),
        Kind::Workdir(w) => format!("WORKDIR {w}"),
        Kind::StopSignal(s) => format!("STOPSIGNAL {s}"),
        Kind::Shell(s) => format!("SHELL {}", json!(s)),
        Kind::Maintainer(m) => format!("MAINTAINER {m}"),
        Kind::Cmd(f) => format!("CMD {}", form_text(f)),
        Kind::Entrypoint(f) => format!("ENTRYPOINT {}", form_text(f)),
        Kind::Healthcheck(_) => first_line(&ins.source).to_string(),
        Kind::Onbuild(i) => format!("ONBUILD {}", first_line(&i.source)),
        _ => ins.source.clone(),
    }
}

fn form_text(f: &CommandForm) -> String {
    match f {
        CommandForm::Exec(v) => json!(v).to_string(),
        CommandForm::Shell(s) => format!("[\"/bin/sh\" \"-c\" {s:?}]"),
    }
}

fn command(form: &CommandForm, shell: &[String]) -> Vec<String> {
    match form {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// The argv of a `RUN`. A heredoc-only `RUN <<EOF` runs the heredoc as the script; a command
/// with heredocs gets them appended, so the shell reads them as here-documents.
fn run_argv(run: &crate::ast::Run, shell: &[String]) -> Vec<String> {
    match &run.cmd {
        CommandForm::Exec(v) => v.clone(),
        CommandForm::Shell(s) => {
            let script = if run.heredocs.is_empty() {
                s.clone()
            } else if run.heredocs.len() == 1 && is_bare_heredoc(s, &run.heredocs[0]) {
                run.heredocs[0].content.clone()
            } else {
                let mut t = s.clone();
                t.push('\n');
                for h in &run.heredocs {
                    t.push_str(&h.content);
                    t.push_str(&h.name);
                    t.push('\n');
                }
                t
            };
            let mut v = shell.to_vec();
            v.push(script);
            v
        }
    }
}

fn is_bare_heredoc(cmd: &str, h: &Heredoc) -> bool {
    let c = cmd.trim();
    let rest = c
        .strip_prefix("<<-")
        .or_else(|| c.strip_prefix("<<"))
        .unwrap_or("");
    let rest = rest.trim_matches(|ch| ch == '"' || ch == '\'');
    !c.is_empty() && rest == h.name
}

/// `a/b` against the working directory; `..` cannot climb above `/`.
pub fn join_path(base: &str, p: &str) -> String {
    let full = if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{p}", base.trim_end_matches('/'))
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in full.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn copy_step(
    spec: &CopySpec,
    from: CopyFrom,
    add: bool,
    workdir: &str,
    user: &str,
) -> Result<CopyStep, String> {
    let mut dest = join_path(workdir, &spec.dest);
    if (spec.dest.ends_with('/') || spec.dest == "." || spec.dest.ends_with("/."))
        && !dest.ends_with('/')
    {
        dest.push('/');
    }
    let chmod =
        match &spec.chmod {
            None => None,
            Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| {
                format!("invalid --chmod={m}: use an octal mode such as 755 or 0644")
            })?)
            .filter(|m| *m <= 0o7777)
            .map(Some)
            .ok_or_else(|| format!("invalid --chmod={m}: the mode must be at most 7777"))?,
        };
    Ok(CopyStep {
        from,
        sources: spec.sources.clone(),
        inline: spec
            .heredocs
            .iter()
            .map(|h| (h.name.clone(), h.content.clone()))
            .collect(),
        dest,
        chown: spec.chown.clone(),
        chmod,
        add,
        checksum: spec.checksum.clone(),
        exclude: spec.exclude.clone(),
        parents: spec.parents,
        user: user.to_string(),
    })
}

fn describe_copy(c: &CopyStep, inputs: &str) -> String {
    let what = match &c.from {
        CopyFrom::Context => {
            let h = inputs.trim_start_matches("sha256:");
            format!("multi:{}", &h[..h.len().min(12)])
        }
        CopyFrom::Image(im) => format!("from {}", im.short_id()),
    };
    format!("{what} in {}", c.dest)
}

fn healthcheck_json(h: &Healthcheck) -> Value {
    let ns = |d: Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
    let mut m = Map::new();
    if let Some(t) = &h.test {
        m.insert("Test".into(), json!(t));
    }
    for (k, v) in [
        ("Interval", ns(h.interval)),
        ("Timeout", ns(h.timeout)),
        ("StartPeriod", ns(h.start_period)),
        ("StartInterval", ns(h.start_interval)),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(r) = h.retries {
        m.insert("Retries".into(), json!(r));
    }
    Value::Object(m)
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ...
fn expand_ports(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid protocol in EXPOSE {spec}: use tcp, udp or sctp"
        ));
    }
    let bad = || {
        format!(
            "invalid port in EXPOSE {spec}: use a number from 1 to 65535, e.g. 5000 or 5000/tcp"
        )
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo == 0 || hi < lo {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}
