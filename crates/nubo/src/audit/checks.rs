//! The invariants, judged over [`Facts`]: each says what must hold, how many records it looked
//! at, and every record that breaks it.
//!
//! Orders that changed within the grace period are still moving and are not judged; everything
//! about them (their stock, payment and emails) is left for the next audit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use nubo_platform::chrono::{DateTime, TimeDelta, Utc};
use nubo_platform::uuid::Uuid;
use serde::Serialize;

use super::facts::{Facts, Line, Order, Payment};

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub name: &'static str,
    /// What must hold, in a sentence.
    pub rule: &'static str,
    /// How many records were looked at.
    pub checked: usize,
    pub breaches: Vec<Breach>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Breach {
    /// The record, as `kind id`: `order 0193…`, `stock TEA-SENCHA`, `notifications`.
    pub record: String,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct Audit {
    pub at: DateTime<Utc>,
    pub grace_secs: i64,
    pub orders_by_state: BTreeMap<String, usize>,
    /// Orders that changed within the grace period: not judged this time.
    pub not_judged: usize,
    /// Cancelled orders whose money had been captured, and was refunded.
    pub refunded: usize,
    /// Cancelled orders whose card had been authorized, and the hold voided.
    pub voided: usize,
    pub verdicts: Vec<Verdict>,
}

impl Audit {
    pub fn breaches(&self) -> usize {
        self.verdicts.iter().map(|v| v.breaches.len()).sum()
    }
}

const FINAL: [&str; 2] = ["completed", "cancelled"];
/// Orders whose units were taken from stock for good.
const SOLD: [&str; 2] = ["stock_committed", "completed"];

pub fn audit(facts: &Facts, grace: TimeDelta) -> Audit {
    let cutoff = facts.now - grace;
    let judged: Vec<&Order> = facts
        .orders
        .iter()
        .filter(|o| o.updated_at <= cutoff)
        .collect();
    let mut orders_by_state = BTreeMap::new();
    for order in &facts.orders {
        *orders_by_state.entry(order.state.clone()).or_default() += 1;
    }
    let lines = by_owner(&facts.order_lines);
    let held = by_owner(&facts.reservation_lines);
    let payments: HashMap<Uuid, &Payment> = facts.payments.iter().map(|p| (p.id, p)).collect();
    let verdicts = vec![
        settled(&judged),
        stock_not_negative(facts),
        reserved_matches_holds(facts),
        reservations_match_orders(facts, &judged, &lines, &held, cutoff),
        units_committed_match_sold(facts, &judged, &lines),
        one_capture(facts),
        completed_orders_paid(&payments, &judged),
        cancelled_orders_not_charged(&payments, &judged),
        one_email_per_event(facts, &judged),
        outboxes_drained(facts, cutoff),
        no_dead_letters(facts),
    ];
    let voided = facts
        .payments
        .iter()
        .filter(|p| p.state == "voided")
        .count();
    Audit {
        at: facts.now,
        grace_secs: grace.num_seconds(),
        orders_by_state,
        not_judged: facts.orders.len() - judged.len(),
        refunded: facts.orders.iter().filter(|o| o.refunded).count(),
        voided,
        verdicts,
    }
}

fn by_owner(lines: &[Line]) -> HashMap<Uuid, BTreeMap<&str, i64>> {
    let mut owners: HashMap<Uuid, BTreeMap<&str, i64>> = HashMap::new();
    for line in lines {
        *owners
            .entry(line.owner)
            .or_default()
            .entry(line.sku.as_str())
            .or_default() += line.quantity;
    }
    owners
}

fn order(id: Uuid) -> String {
    format!("order {id}")
}

fn settled(judged: &[&Order]) -> Verdict {
    let breaches = judged
        .iter()
        .filter(|o| !FINAL.contains(&o.state.as_str()))
        .map(|o| Breach {
            record: order(o.id),
            detail: format!("still {} since {}", o.state, o.updated_at),
        })
        .collect();
    Verdict {
        name: "orders-settled",
        rule: "every order is completed or cancelled once its saga has had the grace period",
        checked: judged.len(),
        breaches,
    }
}

fn stock_not_negative(facts: &Facts) -> Verdict {
    let breaches = facts
        .stock
        .iter()
        .filter(|s| s.on_hand < 0 || s.reserved < 0 || s.reserved > s.on_hand)
        .map(|s| Breach {
            record: format!("stock {}", s.sku),
            detail: format!("on hand {}, reserved {}", s.on_hand, s.reserved),
        })
        .collect();
    Verdict {
        name: "stock-not-negative",
        rule: "no SKU has negative stock, negative reservations, or more reserved than on hand",
        checked: facts.stock.len(),
        breaches,
    }
}

fn reserved_matches_holds(facts: &Facts) -> Verdict {
    let held: BTreeSet<Uuid> = facts
        .reservations
        .iter()
        .filter(|r| r.state == "held")
        .map(|r| r.id)
        .collect();
    let mut holding: BTreeMap<&str, i64> = BTreeMap::new();
    for line in facts
        .reservation_lines
        .iter()
        .filter(|l| held.contains(&l.owner))
    {
        *holding.entry(line.sku.as_str()).or_default() += line.quantity;
    }
    let mut breaches = Vec::new();
    for stock in &facts.stock {
        let holds = holding.remove(stock.sku.as_str()).unwrap_or(0);
        if holds != stock.reserved {
            breaches.push(Breach {
                record: format!("stock {}", stock.sku),
                detail: format!(
                    "reserved {}, but its held reservations hold {holds}",
                    stock.reserved
                ),
            });
        }
    }
    for (sku, holds) in holding {
        breaches.push(Breach {
            record: format!("stock {sku}"),
            detail: format!("held reservations hold {holds} units of a SKU with no stock row"),
        });
    }
    Verdict {
        name: "reserved-matches-holds",
        rule: "each SKU's reserved count equals the units its held reservations hold",
        checked: facts.stock.len(),
        breaches,
    }
}

fn reservations_match_orders(
    facts: &Facts,
    judged: &[&Order],
    lines: &HashMap<Uuid, BTreeMap<&str, i64>>,
    held: &HashMap<Uuid, BTreeMap<&str, i64>>,
    cutoff: DateTime<Utc>,
) -> Verdict {
    let reservations: HashMap<Uuid, _> = facts.reservations.iter().map(|r| (r.id, r)).collect();
    let known: BTreeSet<Uuid> = facts.orders.iter().map(|o| o.id).collect();
    let mut breaches = Vec::new();
    let mut checked = 0;
    for o in judged {
        let reservation = reservations.get(&o.id);
        let state = reservation.map(|r| r.state.as_str());
        let problem = match o.state.as_str() {
            s if SOLD.contains(&s) => match state {
                Some("committed") if held.get(&o.id) == lines.get(&o.id) => None,
                Some("committed") => Some("its committed reservation holds other lines".to_owned()),
                Some(other) => Some(format!("is {s} but its reservation is {other}")),
                None => Some(format!("is {s} but inventory has no reservation for it")),
            },
            "cancelled" => match state {
                None | Some("released") => None,
                Some(other) => Some(format!(
                    "is cancelled but its reservation is {other}: the units are neither sold nor available"
                )),
            },
            _ => continue,
        };
        checked += 1;
        if let Some(detail) = problem {
            breaches.push(Breach {
                record: order(o.id),
                detail,
            });
        }
    }
    // A reservation no order knows of must not hold stock past its expiry.
    for r in &facts.reservations {
        if known.contains(&r.id) {
            continue;
        }
        checked += 1;
        let stale = r.state == "held" && r.expires_at <= cutoff;
        if stale || r.state == "committed" {
            breaches.push(Breach {
                record: format!("reservation {}", r.id),
                detail: format!(
                    "{} (expired {}) but no order has this id",
                    r.state, r.expires_at
                ),
            });
        }
    }
    Verdict {
        name: "reservations-match-orders",
        rule: "a sold order's reservation is committed with its lines; a cancelled order's is released or absent; no reservation outlives its order",
        checked,
        breaches,
    }
}

fn units_committed_match_sold(
    facts: &Facts,
    judged: &[&Order],
    lines: &HashMap<Uuid, BTreeMap<&str, i64>>,
) -> Verdict {
    let judged_ids: BTreeSet<Uuid> = judged.iter().map(|o| o.id).collect();
    let all: BTreeSet<Uuid> = facts.orders.iter().map(|o| o.id).collect();
    let mut sold: BTreeMap<&str, i64> = BTreeMap::new();
    for o in judged.iter().filter(|o| SOLD.contains(&o.state.as_str())) {
        for (sku, quantity) in lines.get(&o.id).into_iter().flatten() {
            *sold.entry(sku).or_default() += quantity;
        }
    }
    // Committed reservations of judged orders, and of no order at all.
    let committed_ids: BTreeSet<Uuid> = facts
        .reservations
        .iter()
        .filter(|r| r.state == "committed")
        .filter(|r| judged_ids.contains(&r.id) || !all.contains(&r.id))
        .map(|r| r.id)
        .collect();
    let mut committed: BTreeMap<&str, i64> = BTreeMap::new();
    for line in facts
        .reservation_lines
        .iter()
        .filter(|l| committed_ids.contains(&l.owner))
    {
        *committed.entry(line.sku.as_str()).or_default() += line.quantity;
    }
    let skus: BTreeSet<&str> = sold.keys().chain(committed.keys()).copied().collect();
    let breaches = skus
        .iter()
        .filter_map(|sku| {
            let (s, c) = (
                sold.get(sku).copied().unwrap_or(0),
                committed.get(sku).copied().unwrap_or(0),
            );
            (s != c).then(|| Breach {
                record: format!("stock {sku}"),
                detail: format!("{c} units committed, {s} units in sold orders"),
            })
        })
        .collect();
    Verdict {
        name: "units-committed-match-sold",
        rule: "for each SKU, the units inventory committed equal the units of completed orders",
        checked: skus.len(),
        breaches,
    }
}

fn one_capture(facts: &Facts) -> Verdict {
    let breaches = facts
        .captures
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, n)| Breach {
            record: format!("payment {id}"),
            detail: format!("captured {n} times"),
        })
        .collect();
    Verdict {
        name: "one-capture-per-order",
        rule: "payments captured each order's money at most once (captures of the last 7 days)",
        checked: facts.captures.len(),
        breaches,
    }
}

fn completed_orders_paid(payments: &HashMap<Uuid, &Payment>, judged: &[&Order]) -> Verdict {
    let mut checked = 0;
    let mut breaches = Vec::new();
    for o in judged.iter().filter(|o| o.state == "completed") {
        checked += 1;
        let detail = match payments.get(&o.id) {
            None => "completed with no payment".to_owned(),
            Some(p) if p.state != "captured" => {
                format!("completed, but its payment is {}", p.state)
            }
            Some(p) if p.amount_minor != o.total_minor || p.currency != o.currency => format!(
                "total {} {} but captured {} {}",
                o.total_minor, o.currency, p.amount_minor, p.currency
            ),
            Some(_) => continue,
        };
        breaches.push(Breach {
            record: order(o.id),
            detail,
        });
    }
    Verdict {
        name: "completed-orders-captured",
        rule: "every completed order's payment is captured, for the order's total",
        checked,
        breaches,
    }
}

fn cancelled_orders_not_charged(payments: &HashMap<Uuid, &Payment>, judged: &[&Order]) -> Verdict {
    let mut checked = 0;
    let mut breaches = Vec::new();
    for o in judged.iter().filter(|o| o.state == "cancelled") {
        checked += 1;
        let state = payments.get(&o.id).map(|p| p.state.as_str());
        let detail = match (state, o.refunded) {
            (None | Some("declined" | "voided"), false) | (Some("refunded"), true) => continue,
            (Some("captured"), _) => "cancelled, but its payment is captured and not refunded",
            (Some("authorized"), _) => "cancelled, but the card is still held (never voided)",
            (Some("pending"), _) => "cancelled, but its payment is still pending",
            (Some("refunded"), false) => "its payment was refunded but the order does not say so",
            (_, true) => "says it was refunded, but payments has no refund",
            (Some(_), false) => "cancelled, and its payment is in a state payments does not use",
        };
        breaches.push(Breach {
            record: order(o.id),
            detail: detail.to_owned(),
        });
    }
    Verdict {
        name: "cancelled-orders-not-charged",
        rule: "no cancelled order keeps a charge or a card hold: captured money is refunded, holds are voided",
        checked,
        breaches,
    }
}

fn one_email_per_event(facts: &Facts, judged: &[&Order]) -> Verdict {
    let confirmed: BTreeSet<Uuid> = facts
        .steps
        .iter()
        .filter(|s| s.step == "confirm" && s.outcome == "done")
        .map(|s| s.order_id)
        .collect();
    let mut emails: HashMap<(Uuid, &str), Vec<&super::facts::Email>> = HashMap::new();
    for email in &facts.emails {
        emails
            .entry((email.order_id, email.kind.as_str()))
            .or_default()
            .push(email);
    }
    let mut checked = 0;
    let mut breaches = Vec::new();
    for o in judged {
        let asked = [
            ("order_confirmed", confirmed.contains(&o.id)),
            ("order_cancelled", o.state == "cancelled"),
            ("payment_refunded", o.refunded),
        ];
        for (kind, due) in asked {
            let sent = emails.get(&(o.id, kind)).map(Vec::as_slice).unwrap_or(&[]);
            if !due && sent.is_empty() {
                continue;
            }
            checked += 1;
            let detail = match (due, sent) {
                (true, []) => format!("no {kind} email"),
                (false, _) => format!("{} {kind} email(s) about what did not happen", sent.len()),
                (true, [one]) if one.status == "failed" => format!(
                    "its {kind} email failed: {}",
                    one.last_error.as_deref().unwrap_or("no error recorded")
                ),
                (true, [one]) if one.status == "pending" => {
                    format!("its {kind} email was never sent")
                }
                (true, [_]) => continue,
                (true, many) => format!("{} {kind} emails", many.len()),
            };
            breaches.push(Breach {
                record: order(o.id),
                detail,
            });
        }
    }
    Verdict {
        name: "one-email-per-event",
        rule: "each confirmation, cancellation and refund has exactly one email, sent",
        checked,
        breaches,
    }
}

fn outboxes_drained(facts: &Facts, cutoff: DateTime<Utc>) -> Verdict {
    let breaches = facts
        .unpublished
        .iter()
        .filter(|u| u.oldest.is_some_and(|t| t <= cutoff))
        .map(|u| Breach {
            record: format!("outbox of {}", u.service),
            detail: format!(
                "{} events not published, the oldest written {}",
                u.count,
                u.oldest.map(|t| t.to_string()).unwrap_or_default()
            ),
        })
        .collect();
    Verdict {
        name: "outboxes-drained",
        rule: "every event a service wrote is published within the grace period",
        checked: facts.unpublished.len(),
        breaches,
    }
}

fn no_dead_letters(facts: &Facts) -> Verdict {
    let breaches = facts
        .dead_letters
        .iter()
        .map(|d| Breach {
            record: format!("dead letter {} of {}", d.event_id, d.service),
            detail: format!(
                "{} gave up on {} after {} attempts: {}",
                d.consumer, d.subject, d.attempts, d.error
            ),
        })
        .collect();
    Verdict {
        name: "no-dead-letters",
        rule: "no consumer gave up on an event",
        checked: facts.unpublished.len(),
        breaches,
    }
}
