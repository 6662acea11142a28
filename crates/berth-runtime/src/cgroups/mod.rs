//! Cgroups v1 and v2: create, limit, account, freeze and remove a container's cgroup.
