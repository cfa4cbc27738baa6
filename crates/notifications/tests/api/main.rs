//! Notifications as a customer's inbox and phone, an admin and an operator see them, in both
//! modes: events go in on the real bus, emails and texts come out in the admin API, emails (with
//! a mail server) in a real SMTP server's mailbox, and texts at the simulated SMS gateway.

mod helpers;
mod listing;
mod once;
mod rendering;
mod sending;
mod sms;
mod sms_gateway;
mod startup;
