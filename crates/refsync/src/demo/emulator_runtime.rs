//! The emulators' own runtime. They stand in for Microsoft's and the CRM vendor's
//! servers, so they run on threads of their own, named [`EMULATOR_THREAD_NAME`],
//! apart from refsync's workers: refsync is scheduled as in a deployment, and
//! `refsync bench sync` can tell the two sides' CPU time apart.

use anyhow::Context;
use std::future::Future;
use tokio::runtime::{Builder, Runtime};

/// The name of every thread the emulators run on.
pub const EMULATOR_THREAD_NAME: &str = "emulator";

/// A multi-threaded runtime for the emulators, shut down (without blocking) on drop.
pub(crate) struct EmulatorRuntime(Option<Runtime>);

impl EmulatorRuntime {
    /// Starts the runtime: two workers, as many as the cores the benchmark targets.
    pub(crate) fn start() -> anyhow::Result<Self> {
        let runtime = Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(EMULATOR_THREAD_NAME)
            .enable_all()
            .build()
            .context("starting the emulators' runtime")?;
        Ok(Self(Some(runtime)))
    }

    /// Runs `future` on the emulators' threads: what it starts (servers, webhook
    /// deliveries) stays there.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> anyhow::Result<T> {
        let runtime = self.0.as_ref().context("the emulators' runtime is gone")?;
        runtime
            .spawn(future)
            .await
            .context("starting an emulator panicked")?
    }
}

impl Drop for EmulatorRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside another runtime.
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
