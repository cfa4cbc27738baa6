//! What the catalog does with events: it keeps every price a product has had, built from its
//! own `ProductChanged` stream so the history can be rebuilt by replaying it.

use nubo_contracts::catalog::ProductChanged;
use nubo_platform::async_trait::async_trait;
use nubo_platform::events::Envelope;
use nubo_platform::events::consumer::Handler;
use nubo_platform::storage::Tx;

use crate::store;

pub struct RecordPrice;

#[async_trait]
impl Handler for RecordPrice {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let changed: ProductChanged = event.decode()?;
        store::record_price(tx, &changed, event.occurred_at).await?;
        Ok(())
    }
}
