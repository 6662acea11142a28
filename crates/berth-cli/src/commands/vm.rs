//! `berth vm …`: the Berth VM's lifecycle, handed to the `berth-vm` program (crates/berth-vm),
//! which also serves the VM's engine socket and published ports while it runs — one
//! implementation, whichever way it is called.

use clap::Args;

#[derive(Args)]
#[command(
    disable_help_flag = true,
    long_about = "Manage the Berth VM: the same engine in a small Linux VM (qemu).\n\n\
  berth vm create [--cpus N] [--memory MIB] [--disk GIB] [--disk-path PATH] [--share HOSTPATH:TAG]...\n\
  berth vm start [--wait SECONDS]     boot it; the engine answers on ~/.berth/berth.sock\n\
                                      (docker context berth-vm points there)\n\
  berth vm stop [--timeout SECONDS]   graceful shutdown, then forced\n\
  berth vm status | logs [--lines N] | resize [--cpus N] [--memory MIB] [--disk GIB] | compact | delete\n\n\
With no -H, BERTH_HOST, DOCKER_HOST or context and no native engine socket, berth talks to the VM's."
)]
pub struct VmArgs {
    /// The VM command and its flags (see `berth vm help`)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `berth-vm`: `$BERTH_VM_BIN`, else next to this executable, else on PATH.
fn program() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("BERTH_VM_BIN") {
        return p.into();
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("berth-vm")))
    {
        if dir.exists() {
            return dir;
        }
    }
    "berth-vm".into()
}

/// Run `berth-vm` with the arguments; its exit code.
pub fn run(a: VmArgs) -> i32 {
    let prog = program();
    match std::process::Command::new(&prog).args(&a.args).status() {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!(
                "berth vm: cannot run {}: {e}; install berth-vm next to berth or set BERTH_VM_BIN",
                prog.display()
            );
            127
        }
    }
}
