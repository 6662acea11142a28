//! Build: `docker build` of a local folder. The context is packed here (honouring
//! `.dockerignore`, through berth-build's matcher) into a temporary tar file, streamed to the
//! engine's `POST /build`, and the engine's JSON messages come back as typed [`BuildEvent`]s.

use crate::error::{self, Res};
use crate::App;
use berth_build::DockerIgnore;
use berth_desktop_dto::{BuildEvent, BuildRequest, DirListing, ProgressEvent};
use serde_json::Value;
use std::io::{Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use tauri::ipc::Channel;
use tauri::State;

/// A checked request: what the engine gets.
#[derive(Debug)]
pub struct Checked {
    pub dir: PathBuf,
    /// Relative to `dir`, `/`-separated.
    pub dockerfile: String,
    pub tags: Vec<String>,
    pub ignore: DockerIgnore,
    pub query: String,
}

/// Checks a request; each problem is one `invalid_input` naming the field or path and how to
/// fix it.
pub fn check(req: &BuildRequest) -> Res<Checked> {
    let raw = req.context_dir.trim();
    if raw.is_empty() {
        return Err(error::invalid(
            "The folder is empty: enter the path of the folder that holds the Dockerfile",
        ));
    }
    let dir = PathBuf::from(raw);
    if !dir.is_absolute() {
        return Err(error::invalid(format!(
            "The folder \"{raw}\" is not an absolute path: write it from / (e.g. /home/me/app)"
        )));
    }
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(error::invalid(format!(
                "{raw} is a file, not a folder: choose the folder that holds the Dockerfile"
            )))
        }
        Err(e) => {
            return Err(error::invalid(format!(
                "The folder {raw} cannot be opened ({e}): check the path"
            )))
        }
    }
    let df = req.dockerfile.trim();
    let df = if df.is_empty() { "Dockerfile" } else { df };
    let rel = Path::new(df);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(error::invalid(format!(
            "The Dockerfile \"{df}\" must be a path inside the folder {raw} (e.g. Dockerfile or docker/Dockerfile.dev)"
        )));
    }
    let df_path = dir.join(rel);
    if !df_path.is_file() {
        return Err(error::invalid(format!(
            "There is no Dockerfile at {}: create it, or name the right file in the Dockerfile field",
            df_path.display()
        )));
    }
    let dockerfile = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/");
    let mut tags = Vec::new();
    for t in req.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        match berth_registry::Reference::parse_normalized(t) {
            Ok(r) if r.digest.is_none() => tags.push(t.to_string()),
            Ok(_) => {
                return Err(error::invalid(format!(
                    "The tag \"{t}\" has a digest (@sha256:…): a tag is name[:tag], e.g. app:1.0"
                )))
            }
            Err(e) => {
                return Err(error::invalid(format!(
                    "The tag \"{t}\" is not a valid image name ({e}): write it like app, app:1.0 or registry.example.com:5000/team/app:1.0"
                )))
            }
        }
    }
    let mut args = serde_json::Map::new();
    for (k, v) in &req.build_args {
        let k = k.trim();
        if k.is_empty() {
            if v.trim().is_empty() {
                continue;
            }
            return Err(error::invalid(format!(
                "The build argument with value \"{v}\" has no name: fill in its KEY"
            )));
        }
        if k.contains('=') || k.chars().any(char::is_whitespace) {
            return Err(error::invalid(format!(
                "The build argument name \"{k}\" may not contain '=' or spaces: put the value in its own field"
            )));
        }
        args.insert(k.to_string(), Value::String(v.clone()));
    }
    let ignore_path = dir.join(".dockerignore");
    let ignore = match std::fs::read_to_string(&ignore_path) {
        Ok(text) => DockerIgnore::parse(&text).map_err(|e| {
            error::invalid(format!(
                "{}: line {}: {}",
                ignore_path.display(),
                e.line,
                e.message
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => {
            return Err(error::invalid(format!(
                "{} cannot be read ({e}): fix its permissions or remove it",
                ignore_path.display()
            )))
        }
    };
    let enc = super::containers::urlencode;
    let mut query = format!("dockerfile={}&rm=1", enc(&dockerfile));
    for t in &tags {
        query.push_str(&format!("&t={}", enc(t)));
    }
    if !args.is_empty() {
        query.push_str(&format!(
            "&buildargs={}",
            enc(&Value::Object(args).to_string())
        ));
    }
    let target = req.target.trim();
    if !target.is_empty() {
        query.push_str(&format!("&target={}", enc(target)));
    }
    if req.no_cache {
        query.push_str("&nocache=1");
    }
    if req.pull {
        query.push_str("&pull=1");
    }
    Ok(Checked {
        dir,
        dockerfile,
        tags,
        ignore,
        query,
    })
}

/// Packs `dir` into the temp file `out` (see [`berth_build::context::pack`]); (files, bytes),
/// `out` rewound.
pub fn pack(
    dir: &Path,
    ignore: &DockerIgnore,
    dockerfile: &str,
    out: &mut std::fs::File,
) -> std::io::Result<(u32, u64)> {
    let files = berth_build::context::pack(dir, ignore, dockerfile, &mut *out)?;
    let len = out.seek(SeekFrom::End(0))?;
    out.seek(SeekFrom::Start(0))?;
    Ok((files, len))
}

/// Turns the engine's JSON messages into [`BuildEvent`]s. `stream` text may hold several lines
/// or half of one; lines are emitted whole.
#[derive(Default)]
pub struct Parser {
    partial: String,
    pub image_id: Option<String>,
    pub tagged: Vec<String>,
    pub failed: Option<String>,
}

impl Parser {
    pub fn message(&mut self, v: &Value, out: &mut dyn FnMut(BuildEvent)) {
        if let Some(msg) = v["errorDetail"]["message"].as_str().or(v["error"].as_str()) {
            self.flush(out);
            self.failed = Some(msg.to_string());
            out(failure(msg));
            return;
        }
        if let Some(id) = v["aux"]["ID"].as_str() {
            self.image_id = Some(id.to_string());
            return;
        }
        if let Some(s) = v["stream"].as_str() {
            self.partial.push_str(s);
            while let Some(i) = self.partial.find('\n') {
                let line: String = self.partial.drain(..=i).collect();
                self.line(line.trim_end_matches(['\n', '\r']), out);
            }
            return;
        }
        if v.get("status").is_some() {
            let status = v["status"].as_str().unwrap_or_default().to_string();
            let id = v["id"].as_str().filter(|i| !i.is_empty());
            let detail = &v["progressDetail"];
            let event = match id {
                Some(id)
                    if detail.is_object()
                        && !status.starts_with("Pulling from")
                        && !status.starts_with("Digest") =>
                {
                    ProgressEvent::Layer {
                        id: id.to_string(),
                        status,
                        current: detail["current"].as_u64(),
                        total: detail["total"].as_u64(),
                    }
                }
                _ => ProgressEvent::Status {
                    message: match id {
                        Some(id) => format!("{id}: {status}"),
                        None => status,
                    },
                },
            };
            out(BuildEvent::Pull { event });
        }
    }

    /// Emits a last line without its newline.
    pub fn flush(&mut self, out: &mut dyn FnMut(BuildEvent)) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(line.trim_end_matches('\r'), out);
        }
    }

    fn line(&mut self, line: &str, out: &mut dyn FnMut(BuildEvent)) {
        if let Some(rest) = line.strip_prefix("Step ") {
            if let Some((nums, text)) = rest.split_once(" : ") {
                if let Some((n, total)) = nums.split_once('/') {
                    if let (Ok(n), Ok(total)) = (n.trim().parse(), total.trim().parse()) {
                        out(BuildEvent::Step {
                            n,
                            total,
                            text: text.to_string(),
                        });
                        return;
                    }
                }
            }
        }
        if let Some(rest) = line.strip_prefix(" ---> ") {
            let rest = rest.trim();
            if rest == "Using cache" {
                out(BuildEvent::Cached);
                return;
            }
            if let Some(c) = rest.strip_prefix("Running in ") {
                out(BuildEvent::Running {
                    container: c.trim().to_string(),
                });
                return;
            }
            if !rest.is_empty() && rest.len() <= 64 && rest.chars().all(|c| c.is_ascii_hexdigit()) {
                out(BuildEvent::StepDone {
                    id: rest.to_string(),
                });
                return;
            }
            if rest == "<scratch>" {
                out(BuildEvent::StepDone { id: rest.into() });
                return;
            }
        }
        if let Some(t) = line.strip_prefix("Successfully tagged ") {
            self.tagged.push(t.trim().to_string());
        }
        if line.starts_with("Successfully built ")
            || line.starts_with("Successfully tagged ")
            || line.starts_with("Removing intermediate container ")
        {
            out(BuildEvent::Status {
                message: line.to_string(),
            });
            return;
        }
        out(BuildEvent::Output {
            text: line.to_string(),
        });
    }
}

/// An engine error as `Failed`, with the place of a Dockerfile error parsed out of it:
///
/// ```text
/// Dockerfile:3: unknown instruction "WORK" — did you mean WORKDIR?
///   | WORK /app
///   | ^
/// ```
pub fn failure(msg: &str) -> BuildEvent {
    let mut lines = msg.lines();
    let head = lines.next().unwrap_or_default();
    let mut file = None;
    let mut line = None;
    let mut text = msg.to_string();
    let mut suggestion = None;
    if let Some((f, rest)) = head.split_once(':') {
        if let Some((n, m)) = rest.split_once(": ") {
            if let Ok(n) = n.parse::<u32>() {
                if !f.is_empty() && !f.contains(' ') {
                    file = Some(f.to_string());
                    line = Some(n);
                    text = m.to_string();
                    if let Some((m, s)) = m.rsplit_once(" — did you mean ") {
                        text = m.to_string();
                        suggestion = Some(s.trim_end_matches('?').trim().to_string());
                    }
                }
            }
        }
    }
    let mut source_line = None;
    let mut column = None;
    if file.is_some() {
        let quoted: Vec<&str> = lines.filter_map(|l| l.strip_prefix("  | ")).collect();
        if let Some(src) = quoted.first() {
            source_line = Some(src.to_string());
        }
        if let Some(caret) = quoted.get(1) {
            if let Some(i) = caret.chars().position(|c| c == '^') {
                column = Some(i as u32 + 1);
            }
        }
        // A caret line of only a caret is stripped of its separator's space by some writers.
        if column.is_none() {
            column = msg
                .lines()
                .skip(2)
                .find_map(|l| l.strip_prefix("  |"))
                .filter(|l| l.trim() == "^")
                .map(|_| 1);
        }
    }
    BuildEvent::Failed {
        message: text,
        file,
        line,
        column,
        source_line,
        suggestion,
    }
}

/// Starts a build; returns its stream id (closing it with `stream_close` stops watching and
/// drops the connection). Input errors are returned before anything starts; everything after
/// arrives on `channel`, ending with `done` or `failed`.
#[tauri::command]
pub async fn image_build(
    app: State<'_, App>,
    req: BuildRequest,
    channel: Channel<BuildEvent>,
) -> Res<u32> {
    let checked = check(&req)?;
    let engine = Arc::clone(&app.engine);
    let sid = app.streams.id();
    app.streams.spawn(sid, async move {
        if let Err(e) = run(&engine, checked, &channel).await {
            let _ = channel.send(BuildEvent::Failed {
                message: e.message,
                file: None,
                line: None,
                column: None,
                source_line: None,
                suggestion: None,
            });
        }
    });
    Ok(sid)
}

async fn run(engine: &crate::engine::Engine, c: Checked, channel: &Channel<BuildEvent>) -> Res<()> {
    let Checked {
        dir,
        dockerfile,
        tags,
        ignore,
        query,
    } = c;
    let shown = dir.display().to_string();
    let packed = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut tmp = tempfile::tempfile()?;
        let (files, bytes) = pack(&dir, &ignore, &dockerfile, &mut tmp)?;
        Ok((tmp, files, bytes))
    })
    .await
    .map_err(|e| error::system(format!("packing the build context: {e}")))?
    .map_err(|e| error::system(format!("Cannot pack the folder {shown}: {e}")))?;
    let (file, files, bytes) = packed;
    let _ = channel.send(BuildEvent::Context { files, bytes });
    let mut p = Parser::default();
    let body = crate::api::FileBody {
        file: tokio::fs::File::from_std(file),
        len: bytes,
        content_type: "application/x-tar",
    };
    let path = format!("/v1.45/build?{query}");
    crate::api::post_stream(engine, &path, &[], Some(body), |v| {
        p.message(&v, &mut |e| {
            let _ = channel.send(e);
        });
    })
    .await?;
    p.flush(&mut |e| {
        let _ = channel.send(e);
    });
    if p.failed.is_some() {
        return Ok(());
    }
    match p.image_id {
        Some(id) => {
            let tags = if p.tagged.is_empty() { tags } else { p.tagged };
            let _ = channel.send(BuildEvent::Done { id, tags });
            Ok(())
        }
        None => Err(error::system(
            "the engine ended the build without an image id or an error",
        )),
    }
}

/// One level of the Build dialog's folder browser: the sub-folders of `path` (`~` or empty:
/// the home folder).
#[tauri::command]
pub async fn dir_list(path: String) -> Res<DirListing> {
    tokio::task::spawn_blocking(move || list_dir(&path))
        .await
        .map_err(|e| error::system(e.to_string()))?
}

pub fn list_dir(path: &str) -> Res<DirListing> {
    let p = path.trim();
    let home = || {
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
    };
    let dir = if p.is_empty() || p == "~" {
        home().unwrap_or_else(|| PathBuf::from("/"))
    } else if let Some(rest) = p.strip_prefix("~/") {
        home().unwrap_or_else(|| PathBuf::from("/")).join(rest)
    } else {
        PathBuf::from(p)
    };
    if !dir.is_absolute() {
        return Err(error::invalid(format!(
            "\"{p}\" is not an absolute path: write it from / (e.g. /home/me/app)"
        )));
    }
    let dir = std::fs::canonicalize(&dir).map_err(|e| {
        error::invalid(format!(
            "The folder {} cannot be opened ({e})",
            dir.display()
        ))
    })?;
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        error::invalid(format!(
            "The folder {} cannot be listed ({e})",
            dir.display()
        ))
    })?;
    let mut dirs: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    dirs.sort();
    Ok(DirListing {
        path: dir.display().to_string(),
        parent: dir.parent().map(|p| p.display().to_string()),
        has_dockerfile: dir.join("Dockerfile").is_file(),
        dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn events(msgs: &[Value]) -> (Vec<BuildEvent>, Parser) {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for m in msgs {
            p.message(m, &mut |e| out.push(e));
        }
        p.flush(&mut |e| out.push(e));
        (out, p)
    }

    #[test]
    fn engine_messages_become_typed_events() {
        let (ev, p) = events(&[
            json!({"stream": "Step 1/3 : FROM busybox\n"}),
            json!({"stream": " ---> 1a2b3c4d5e6f\n"}),
            json!({"stream": "Step 2/3 : RUN cat /hello.txt\n ---> Using cache\n"}),
            json!({"stream": " ---> aaaabbbbcccc\nStep 3/3 : RUN echo hi\n"}),
            json!({"stream": " ---> Running in 0123456789ab\n"}),
            json!({"stream": "hi"}),
            json!({"stream": " there\n"}),
            json!({"stream": "Removing intermediate container 0123456789ab\n"}),
            json!({"stream": " ---> ddddeeeeffff\n"}),
            json!({"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 10}}),
            json!({"aux": {"ID": "sha256:dead"}}),
            json!({"stream": "Successfully built ddddeeeeffff\n"}),
            json!({"stream": "Successfully tagged hello:1\n"}),
        ]);
        assert_eq!(
            ev,
            vec![
                BuildEvent::Step {
                    n: 1,
                    total: 3,
                    text: "FROM busybox".into()
                },
                BuildEvent::StepDone {
                    id: "1a2b3c4d5e6f".into()
                },
                BuildEvent::Step {
                    n: 2,
                    total: 3,
                    text: "RUN cat /hello.txt".into()
                },
                BuildEvent::Cached,
                BuildEvent::StepDone {
                    id: "aaaabbbbcccc".into()
                },
                BuildEvent::Step {
                    n: 3,
                    total: 3,
                    text: "RUN echo hi".into()
                },
                BuildEvent::Running {
                    container: "0123456789ab".into()
                },
                BuildEvent::Output {
                    text: "hi there".into()
                },
                BuildEvent::Status {
                    message: "Removing intermediate container 0123456789ab".into()
                },
                BuildEvent::StepDone {
                    id: "ddddeeeeffff".into()
                },
                BuildEvent::Pull {
                    event: ProgressEvent::Layer {
                        id: "abc".into(),
                        status: "Downloading".into(),
                        current: Some(5),
                        total: Some(10)
                    }
                },
                BuildEvent::Status {
                    message: "Successfully built ddddeeeeffff".into()
                },
                BuildEvent::Status {
                    message: "Successfully tagged hello:1".into()
                },
            ]
        );
        assert_eq!(p.image_id.as_deref(), Some("sha256:dead"));
        assert_eq!(p.tagged, vec!["hello:1".to_string()]);
        assert!(p.failed.is_none());
    }

    #[test]
    fn dockerfile_errors_are_located() {
        let msg = "Dockerfile:2: unknown instruction \"WORK\" — did you mean WORKDIR?\n  | WORK /app\n  | ^";
        let (ev, p) = events(&[
            json!({"stream": "partial output"}),
            json!({"errorDetail": {"message": msg}, "error": msg}),
        ]);
        assert_eq!(
            ev[0],
            BuildEvent::Output {
                text: "partial output".into()
            }
        );
        assert_eq!(
            ev[1],
            BuildEvent::Failed {
                message: "unknown instruction \"WORK\"".into(),
                file: Some("Dockerfile".into()),
                line: Some(2),
                column: Some(1),
                source_line: Some("WORK /app".into()),
                suggestion: Some("WORKDIR".into()),
            }
        );
        assert!(p.failed.is_some());
        // A column further in, and no suggestion.
        let f = failure("Dockerfile.dev:7: bad flag\n  | COPY --frm=a b c\n  |      ^");
        assert_eq!(
            f,
            BuildEvent::Failed {
                message: "bad flag".into(),
                file: Some("Dockerfile.dev".into()),
                line: Some(7),
                column: Some(6),
                source_line: Some("COPY --frm=a b c".into()),
                suggestion: None,
            }
        );
        // A run failure has no place.
        let f = failure("The command '/bin/sh -c false' returned a non-zero code: 1");
        assert!(matches!(
            f,
            BuildEvent::Failed {
                file: None,
                line: None,
                ..
            }
        ));
    }

    fn req(dir: &Path) -> BuildRequest {
        BuildRequest {
            context_dir: dir.display().to_string(),
            dockerfile: String::new(),
            tags: vec!["hello:1".into(), " ".into()],
            build_args: vec![("A".into(), "1 2".into())],
            target: "final".into(),
            no_cache: true,
            pull: false,
        }
    }

    #[test]
    fn bad_input_is_named() {
        let t = tempfile::tempdir().unwrap();
        let missing = t.path().join("nope");
        let mut r = req(&missing);
        let e = check(&r).unwrap_err();
        assert!(
            e.message.contains(&missing.display().to_string()),
            "{}",
            e.message
        );
        r.context_dir = "relative/dir".into();
        assert!(check(&r).unwrap_err().message.contains("absolute"));
        r = req(t.path());
        let e = check(&r).unwrap_err();
        assert!(
            e.message
                .contains(&t.path().join("Dockerfile").display().to_string()),
            "{}",
            e.message
        );
        std::fs::write(t.path().join("Dockerfile"), "FROM busybox\n").unwrap();
        let ok = check(&r).unwrap();
        assert_eq!(ok.tags, vec!["hello:1".to_string()]);
        assert_eq!(
            ok.query,
            "dockerfile=Dockerfile&rm=1&t=hello%3A1&buildargs=%7B%22A%22%3A%221%202%22%7D&target=final&nocache=1"
        );
        r.dockerfile = "../x".into();
        assert!(check(&r).unwrap_err().message.contains("inside the folder"));
        r.dockerfile = String::new();
        r.tags = vec!["Bad Tag".into()];
        let e = check(&r).unwrap_err();
        assert!(e.message.contains("\"Bad Tag\""), "{}", e.message);
        r.tags = vec![];
        r.build_args = vec![("A=B".into(), "x".into())];
        assert!(check(&r).unwrap_err().message.contains("\"A=B\""));
        r.build_args = vec![];
        std::fs::write(t.path().join(".dockerignore"), "ok\n!\n").unwrap();
        let e = check(&r).unwrap_err();
        assert!(e.message.contains(".dockerignore: line 2"), "{}", e.message);
    }

    #[test]
    fn context_honours_dockerignore() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::write(d.join("Dockerfile"), "FROM busybox\n").unwrap();
        std::fs::write(
            d.join(".dockerignore"),
            "*.log\nbuild\n!build/keep.txt\nnode_modules\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(d.join("hello.txt"), "hi").unwrap();
        std::fs::write(d.join("debug.log"), "x").unwrap();
        std::fs::create_dir_all(d.join("build")).unwrap();
        std::fs::write(d.join("build/keep.txt"), "k").unwrap();
        std::fs::write(d.join("build/drop.txt"), "d").unwrap();
        std::fs::create_dir_all(d.join("node_modules/x")).unwrap();
        std::fs::write(d.join("node_modules/x/a.js"), "a").unwrap();
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/main.c"), "int main;").unwrap();
        std::os::unix::fs::symlink("hello.txt", d.join("link")).unwrap();
        let c = check(&req(d)).unwrap();
        let mut f = tempfile::tempfile().unwrap();
        let (files, bytes) = pack(&c.dir, &c.ignore, &c.dockerfile, &mut f).unwrap();
        assert!(bytes > 0);
        let mut a = tar::Archive::new(f);
        let mut names = Vec::new();
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 0);
            if e.header().entry_type().is_symlink() {
                assert_eq!(e.link_name().unwrap().unwrap().to_str(), Some("hello.txt"));
            }
            names.push(e.path().unwrap().display().to_string());
        }
        names.sort();
        assert_eq!(
            names,
            vec![
                ".dockerignore",
                "Dockerfile",
                "build/keep.txt",
                "hello.txt",
                "link",
                "src/",
                "src/main.c"
            ]
        );
        assert_eq!(files, 5);
    }

    #[test]
    fn folders_are_listed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("b")).unwrap();
        std::fs::create_dir_all(t.path().join("a")).unwrap();
        std::fs::create_dir_all(t.path().join(".hidden")).unwrap();
        std::fs::write(t.path().join("Dockerfile"), "").unwrap();
        let l = list_dir(&t.path().display().to_string()).unwrap();
        assert_eq!(l.dirs, vec!["a".to_string(), "b".to_string()]);
        assert!(l.has_dockerfile);
        assert!(l.parent.is_some());
        assert!(list_dir("not/absolute").is_err());
        assert!(list_dir(&t.path().join("zz").display().to_string()).is_err());
    }
}
