//! The platform's behaviour as a client and an operator see it, through a small service that
//! exists only to exercise the stack: problem documents, limits, load shedding, graceful
//! shutdown, metrics and trace propagation, in both modes; and the contract of the event bus,
//! told once and run against both of its back ends.

mod bus;
mod probe;
mod server;
