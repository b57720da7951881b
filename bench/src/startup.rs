//! Start-up: from exec of `game-host` to its first successful `/logic` reply, with the three
//! demo modules and a new, empty database (so it includes creating the schema).

use crate::load::{login_players, Connection};
use crate::process::Server;
use std::path::Path;
use std::time::Duration;

/// One start: until `listening on`, and until the first `ret: 0` of `/logic`.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub listening: Duration,
    pub first_reply: Duration,
}

pub async fn run(build: &Path, config_dir: &Path, times: usize) -> anyhow::Result<Vec<Start>> {
    let mut starts = Vec::with_capacity(times);
    for _ in 0..times {
        let host = Server::host(build, config_dir)?;
        let token = login_players(host.addr, 1).await?.remove(0);
        let mut connection = Connection::new(host.addr);
        loop {
            let (_, reply) = connection
                .post("/logic", Some(&token), r#"{"cmd":"1203","data":{}}"#)
                .await?;
            if reply["ret"] == 0 {
                break;
            }
            anyhow::ensure!(
                host.started.elapsed() < Duration::from_secs(30),
                "no successful /logic reply 30 s after start: {reply}"
            );
        }
        starts.push(Start {
            listening: host.ready_after,
            first_reply: host.started.elapsed(),
        });
    }
    Ok(starts)
}
