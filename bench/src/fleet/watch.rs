//! [`Watch`]: the fleet's hosts asked, through their admin APIs, which `mall` each serves,
//! until all serve a publish's library or [`CONVERGE_WITHIN`] has passed.

use super::{CONVERGE_WITHIN, HOST_IDS, MODULE, POLL_EVERY};
use crate::load::Connection;
use crate::process::Server;
use anyhow::anyhow;
use std::time::{Duration, Instant};

/// The fleet's admin APIs, asked which `mall` each host serves.
pub struct Watch {
    hosts: Vec<(&'static str, Connection)>,
}

impl Watch {
    pub fn new(hosts: &[Server]) -> Watch {
        let hosts = HOST_IDS
            .into_iter()
            .zip(hosts)
            .map(|(id, host)| (id, Connection::new(host.admin_addr)))
            .collect();
        Watch { hosts }
    }

    /// Asks each host that did not yet serve the library of `sha256` every [`POLL_EVERY`]
    /// until all do: the time from `published` to then. Past [`CONVERGE_WITHIN`], what each
    /// host still behind last said.
    pub async fn until_serving(
        &mut self,
        sha256: &str,
        published: Instant,
    ) -> Result<Duration, Vec<String>> {
        let mut behind: Vec<usize> = (0..self.hosts.len()).collect();
        let mut said = vec![String::new(); self.hosts.len()];
        loop {
            let mut still = Vec::new();
            for n in behind {
                match serving(&mut self.hosts[n].1).await {
                    Ok(serves) if serves == sha256 => {}
                    Ok(serves) => {
                        said[n] = format!("serves {}", short(&serves));
                        still.push(n);
                    }
                    Err(e) => {
                        said[n] = format!("{e:#}");
                        still.push(n);
                    }
                }
            }
            behind = still;
            if behind.is_empty() {
                return Ok(published.elapsed());
            }
            if published.elapsed() > CONVERGE_WITHIN {
                return Err(behind
                    .into_iter()
                    .map(|n| format!("{} {}", self.hosts[n].0, said[n]))
                    .collect());
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }
}

/// The sha256 of the `mall` a host serves, from its `GET /admin/modules`.
async fn serving(admin: &mut Connection) -> anyhow::Result<String> {
    let (status, reply) = admin.get("/admin/modules").await?;
    let modules = reply["modules"].as_array().cloned().unwrap_or_default();
    modules
        .iter()
        .find(|m| m["name"] == MODULE)
        .and_then(|m| m["sha256"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("GET /admin/modules: {status}, no `{MODULE}` in it"))
}

/// A sha256 as people compare them: its first 12 digits.
fn short(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}
