//! The test MySQL server (`LTV_TEST_MYSQL_URL`), and a database of a test's own on it.

use mysql_async::prelude::Queryable;

use super::ci;

/// The server's URL (default root@127.0.0.1:3306/test outside CI).
pub fn server_url() -> String {
    match std::env::var("LTV_TEST_MYSQL_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ if ci() => panic!("CI=true but LTV_TEST_MYSQL_URL is not set; .ci/run exports it"),
        _ => "mysql://root@127.0.0.1:3306/test".to_owned(),
    }
}

/// A database of this test's own on the test server, dropped when the guard goes.
pub struct OwnDatabase {
    server: String,
    pub name: String,
}

impl OwnDatabase {
    /// Creates `<prefix>_<pid>`; `None` (the test skips) when the server is unreachable
    /// outside CI.
    pub async fn create(prefix: &str) -> Option<OwnDatabase> {
        let server = server_url();
        let name = format!("{prefix}_{}", std::process::id());
        let mut conn = match mysql_async::Conn::from_url(server.clone()).await {
            Ok(c) => c,
            Err(e) if ci() => panic!("CI=true and the test MySQL server is unreachable: {e}"),
            Err(e) => {
                eprintln!("SKIPPED the MySQL part: no server ({e})");
                return None;
            }
        };
        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS `{name}`"))
            .await
            .unwrap();
        conn.disconnect().await.unwrap();
        Some(OwnDatabase { server, name })
    }

    pub fn url(&self) -> String {
        let base = self
            .server
            .rsplit_once('/')
            .map_or(self.server.as_str(), |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for OwnDatabase {
    fn drop(&mut self) {
        run_in_drop(
            self.server.clone(),
            vec![format!("DROP DATABASE IF EXISTS `{}`", self.name)],
        );
    }
}

/// Runs clean-up statements on `server`, best effort (errors ignored), from a `Drop`: on a
/// fresh runtime on its own thread, because Drop cannot await and may run inside the test's
/// runtime.
pub fn run_in_drop(server: String, statements: Vec<String>) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(mut c) = mysql_async::Conn::from_url(server).await {
                for statement in statements {
                    let _ = c.query_drop(statement).await;
                }
                let _ = c.disconnect().await;
            }
        });
    })
    .join();
}
