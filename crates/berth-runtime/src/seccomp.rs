//! Seccomp: compile the spec's `linux.seccomp` section to a BPF filter and install it.
