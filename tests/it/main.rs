//! One integration-test binary that runs the real `notifier` executable.

mod commands;
mod events;
mod faults;
mod rules;
mod serve;
mod support;
