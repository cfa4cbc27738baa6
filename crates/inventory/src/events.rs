//! What inventory does with events: every SKU the catalog announces gets a stock row, with the
//! configured initial stock, unless it has one already (an admin may have set it first).

use nubo_contracts::catalog::ProductChanged;
use nubo_platform::async_trait::async_trait;
use nubo_platform::events::Envelope;
use nubo_platform::events::consumer::Handler;
use nubo_platform::storage::Tx;

use crate::store;

pub struct StockNewProducts {
    pub initial_stock: i64,
}

#[async_trait]
impl Handler for StockNewProducts {
    async fn handle(&self, event: &Envelope, tx: &mut Tx) -> anyhow::Result<()> {
        let changed: ProductChanged = event.decode()?;
        // Updates too: a product whose SKU was changed needs a row for its new SKU.
        store::ensure_stock(tx, &changed.sku, self.initial_stock).await?;
        Ok(())
    }
}
