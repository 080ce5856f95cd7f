//! End-to-end tests: the real `fabric` binary on real guests.

mod cli_connect;
mod cli_ids;
mod cli_refusals;
mod cli_speaks;
mod cli_top;
mod cluster_faults;
mod cluster_hardening;
mod cluster_inputs;
mod cluster_mdns;
mod cluster_refusals;
mod cluster_tokens;
mod cluster_trace;
mod cluster_up;
mod dashboard;
mod exec_examples;
mod exec_hostile;
mod exec_usage;
mod guest_floods;
mod native_files;
mod native_run;
mod readme;
mod readme_native;
mod rest_api;
mod rest_limits;
mod rest_tasks;
mod rest_tools;
