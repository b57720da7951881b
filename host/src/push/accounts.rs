//! Accounts and player ids, both ways, remembered: a player's account never changes, so what
//! was read once is true for good. Modules address pushes by account (`PushTo::account`) and
//! read their player's account (`Ctx::account`); a host asks its database once per player.

use crate::store::{Store, StoreError};

/// Players remembered at most, each way.
const REMEMBERED: usize = 100_000;

/// The accounts this host has seen.
pub struct Accounts {
    by_player: quick_cache::sync::Cache<String, String>,
    by_account: quick_cache::sync::Cache<String, String>,
}

impl Default for Accounts {
    fn default() -> Self {
        Accounts {
            by_player: quick_cache::sync::Cache::new(REMEMBERED),
            by_account: quick_cache::sync::Cache::new(REMEMBERED),
        }
    }
}

impl Accounts {
    /// Remembers a pair the host learnt otherwise (a login).
    pub fn remember(&self, account: &str, player_id: &str) {
        self.by_player
            .insert(player_id.to_owned(), account.to_owned());
        self.by_account
            .insert(account.to_owned(), player_id.to_owned());
    }

    /// The account of `player_id` (`None`: no such player).
    pub async fn of_player(
        &self,
        store: &dyn Store,
        player_id: &str,
    ) -> Result<Option<String>, StoreError> {
        if let Some(account) = self.by_player.get(player_id) {
            return Ok(Some(account));
        }
        let account = store.pushes().account_of(player_id).await?;
        Ok(account.inspect(|account| self.remember(account, player_id)))
    }

    /// The player of `account` (`None`: nobody has it, yet).
    pub async fn player(
        &self,
        store: &dyn Store,
        account: &str,
    ) -> Result<Option<String>, StoreError> {
        if let Some(player_id) = self.by_account.get(account) {
            return Ok(Some(player_id));
        }
        let player_id = store.pushes().player_of_account(account).await?;
        Ok(player_id.inspect(|player_id| self.remember(account, player_id)))
    }
}
