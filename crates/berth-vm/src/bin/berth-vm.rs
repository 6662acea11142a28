//! `berth-vm`: the VM's host-side server (`serve`, started detached by `Vm::start`) and a small
//! lifecycle front end (`create`, `start`, `stop`, `status`, `logs`, `resize`, `compact`,
//! `delete`), which `berth vm …` runs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use berth_vm::docker_context::{self, Unregistered};
use berth_vm::{Error, Vm, VmConfig};

const USAGE: &str = "usage: berth-vm [--state-dir DIR] COMMAND
commands:
  create [--cpus N] [--memory MIB] [--disk GIB] [--disk-path PATH] [--share HOSTPATH:TAG]... [--socket PATH]
         [--registry-mirror URL]... [--insecure-registry HOST[:PORT]]...  (the guest reaches the
         host's loopback as 10.0.2.2)
  start [--wait SECONDS]      boot the VM and serve the engine socket (waits for berthd, default 300 s);
                              points the docker context berth-vm at the socket
  stop [--timeout SECONDS]    graceful shutdown, then forced (default 30 s)
  status                      JSON: state, pids, accelerator, socket
  logs [--lines N]            the guest's serial console
  resize [--cpus N] [--memory MIB] [--disk GIB]
  compact                     give back the data disk's freed space (VM stopped)
  delete                      stop and remove the VM and its disk (and its berth-vm docker context)
  serve [--detach]            the host-side server (run by start)
state dir default: ~/.berth/vm";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-vm: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    rest: Vec<String>,
}

impl Args {
    /// Takes `--name VALUE` (or `--name=VALUE`).
    fn value(&mut self, name: &str) -> Result<Option<String>, Error> {
        let flag = format!("--{name}");
        let eq = format!("--{name}=");
        if let Some(i) = self.rest.iter().position(|a| *a == flag) {
            if i + 1 >= self.rest.len() {
                return Err(Error::Other(format!("{flag} needs a value\n{USAGE}")));
            }
            let v = self.rest.remove(i + 1);
            self.rest.remove(i);
            return Ok(Some(v));
        }
        if let Some(i) = self.rest.iter().position(|a| a.starts_with(&eq)) {
            let v = self.rest.remove(i)[eq.len()..].to_string();
            return Ok(Some(v));
        }
        Ok(None)
    }

    fn flag(&mut self, name: &str) -> bool {
        let flag = format!("--{name}");
        match self.rest.iter().position(|a| *a == flag) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    fn number<T: std::str::FromStr>(&mut self, name: &str) -> Result<Option<T>, Error> {
        match self.value(name)? {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| Error::Other(format!("--{name} {v:?}: give a whole number"))),
        }
    }

    fn done(&self) -> Result<(), Error> {
        if let Some(a) = self.rest.first() {
            return Err(Error::Other(format!("unexpected argument {a:?}\n{USAGE}")));
        }
        Ok(())
    }
}

fn run(args: Vec<String>) -> Result<(), Error> {
    let mut a = Args { rest: args };
    let state_dir = match a.value("state-dir")? {
        Some(d) => PathBuf::from(d),
        None => berth_vm::config::default_state_dir()?,
    };
    if a.rest.is_empty() || a.flag("help") || a.flag("h") {
        println!("{USAGE}");
        return Ok(());
    }
    let cmd = a.rest.remove(0);
    let vm = Vm::new(&state_dir);
    match cmd.as_str() {
        "serve" => {
            let detach = a.flag("detach");
            a.done()?;
            serve(state_dir, detach)
        }
        "create" => {
            let mut cfg = VmConfig::default();
            if let Some(n) = a.number("cpus")? {
                cfg.cpus = n;
            }
            if let Some(n) = a.number("memory")? {
                cfg.memory_mib = n;
            }
            if let Some(n) = a.number("disk")? {
                cfg.disk_gib = n;
            }
            cfg.disk_path = a.value("disk-path")?.map(PathBuf::from);
            cfg.socket = a.value("socket")?.map(PathBuf::from);
            let mut shares = Vec::new();
            while let Some(s) = a.value("share")? {
                let (path, tag) = s
                    .rsplit_once(':')
                    .ok_or_else(|| Error::Other(format!("--share {s:?}: give HOSTPATH:TAG")))?;
                shares.push(berth_vm::Share::new(path, tag));
            }
            if !shares.is_empty() {
                cfg.shares = shares;
            }
            // Registry settings for the engine inside, passed on the kernel command line (the
            // guest's init writes them into its daemon.json at every boot).
            let mut mirrors = Vec::new();
            while let Some(m) = a.value("registry-mirror")? {
                mirrors.push(m);
            }
            let mut insecure = Vec::new();
            while let Some(h) = a.value("insecure-registry")? {
                insecure.push(h);
            }
            if !mirrors.is_empty() {
                cfg.kernel_args
                    .push(format!("berth.mirror={}", mirrors.join(",")));
            }
            if !insecure.is_empty() {
                cfg.kernel_args
                    .push(format!("berth.insecure={}", insecure.join(",")));
            }
            a.done()?;
            vm.create(cfg)?;
            println!("created the VM in {}", state_dir.display());
            Ok(())
        }
        "start" => {
            let wait: u64 = a.number("wait")?.unwrap_or(300);
            a.done()?;
            let run = vm.start()?;
            eprintln!(
                "qemu started ({}), waiting for berthd (console: {})",
                run.accel,
                vm.console_log().display()
            );
            let r = vm.wait_ready(Duration::from_secs(wait))?;
            println!(
                "ready in {:.1} s; engine socket: unix://{}",
                r.since_start.as_secs_f64(),
                run.socket.display()
            );
            let ctx = docker_context::CONTEXT_NAME;
            let host = docker_context::host_of(&run.socket);
            match berth_context::Store::from_env()
                .and_then(|s| docker_context::register(&s, &run.socket))
            {
                Ok(_) => {
                    println!("use it: export DOCKER_HOST={host}  or  docker context use {ctx}")
                }
                Err(e) => {
                    println!("use it: export DOCKER_HOST={host}");
                    eprintln!("berth-vm: could not write the docker context {ctx:?}: {e}");
                }
            }
            Ok(())
        }
        "stop" => {
            let t: u64 = a.number("timeout")?.unwrap_or(30);
            a.done()?;
            let o = vm.stop(Duration::from_secs(t))?;
            println!("{o:?}");
            Ok(())
        }
        "status" => {
            a.done()?;
            let s = vm.status()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&s).map_err(|e| Error::Other(e.to_string()))?
            );
            Ok(())
        }
        "logs" => {
            let n: usize = a.number("lines")?.unwrap_or(100);
            a.done()?;
            println!("{}", vm.logs(n)?);
            Ok(())
        }
        "resize" => {
            let cpus = a.number("cpus")?;
            let mem = a.number("memory")?;
            let disk = a.number("disk")?;
            a.done()?;
            let c = vm.resize(cpus, mem, disk)?;
            println!(
                "cpus {} memory {} MiB disk {} GiB (CPU and memory apply at the next start)",
                c.cpus, c.memory_mib, c.disk_gib
            );
            Ok(())
        }
        "compact" => {
            a.done()?;
            let (before, after) = vm.compact()?;
            println!(
                "data disk: {} MiB -> {} MiB on the host",
                before >> 20,
                after >> 20
            );
            Ok(())
        }
        "delete" => {
            a.done()?;
            // The socket this VM served, for its docker context (read before the state goes).
            let socket = vm.config().ok().and_then(|c| vm.socket_path(&c).ok());
            vm.delete()?;
            println!("deleted {}", state_dir.display());
            if let Some(socket) = socket {
                unregister_context(&socket);
            }
            Ok(())
        }
        other => Err(Error::Other(format!("unknown command {other:?}\n{USAGE}"))),
    }
}

/// Removes the `berth-vm` docker context if it points at `socket`; says what it did.
fn unregister_context(socket: &std::path::Path) {
    let ctx = docker_context::CONTEXT_NAME;
    let done =
        berth_context::Store::from_env().and_then(|s| docker_context::unregister(&s, socket));
    match done {
        Ok(Unregistered::Removed { was_current }) => {
            println!("removed the docker context {ctx:?}");
            if was_current {
                println!("the current docker context is \"default\" again");
            }
        }
        Ok(Unregistered::Elsewhere(_) | Unregistered::Absent) => {}
        Err(e) => eprintln!("berth-vm: could not remove the docker context {ctx:?}: {e}"),
    }
}

/// Forks into the background (new session); the parent exits 0 once the child serves, 1 if
/// it failed first. Returns the pipe to signal readiness on.
fn detach() -> Result<libc::c_int, Error> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: a plain pipe(2) into a two-int array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Error::Other(format!(
            "pipe: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: no threads exist yet (the runtime starts after this), so fork is safe.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Error::Other(format!(
            "fork: {}",
            std::io::Error::last_os_error()
        )));
    }
    if pid > 0 {
        // SAFETY: our own fds.
        unsafe { libc::close(fds[1]) };
        let mut b = [0u8; 1];
        // SAFETY: reading one byte into a one-byte buffer.
        let n = unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
        std::process::exit(if n == 1 && b[0] == 1 { 0 } else { 1 });
    }
    // SAFETY: the child: close the read end, leave the caller's session and directory.
    unsafe {
        libc::close(fds[0]);
        libc::setsid();
        libc::chdir(c"/".as_ptr());
    }
    Ok(fds[1])
}

fn serve(state_dir: PathBuf, detach_first: bool) -> Result<(), Error> {
    let state_dir = if state_dir.is_absolute() {
        state_dir
    } else {
        std::env::current_dir()
            .map_err(|e| Error::Other(format!("current directory: {e}")))?
            .join(state_dir)
    };
    let ready_fd = if detach_first { Some(detach()?) } else { None };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Other(format!("starting the async runtime: {e}")))?;
    rt.block_on(berth_vm::serve::run(state_dir, move || {
        if let Some(fd) = ready_fd {
            // SAFETY: our pipe's write end: one byte, then close.
            unsafe {
                libc::write(fd, [1u8].as_ptr().cast(), 1);
                libc::close(fd);
            }
        }
    }))
}
