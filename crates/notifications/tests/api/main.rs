//! Notifications as a customer's inbox, an admin and an operator see them, in both modes: events
//! go in on the real bus, emails come out in the admin API and, with a mail server, in a real
//! SMTP server's mailbox.

mod helpers;
mod listing;
mod once;
mod rendering;
mod sending;
mod startup;
