//! The platform's behaviour as a client and an operator see it, through a small service that
//! exists only to exercise the stack: problem documents, limits, load shedding, graceful
//! shutdown, metrics and trace propagation, in both modes; and the contracts of the back ends
//! those modes plug in, the event bus and the cache, each told once and run against both.

mod bus;
mod cache;
mod probe;
mod server;
