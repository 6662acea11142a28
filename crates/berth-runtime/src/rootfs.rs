//! The container root filesystem: mounts resolved inside the root by fd, devices, pivot_root, masked and read-only paths.
