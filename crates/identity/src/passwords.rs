//! Password hashing with argon2id at the `argon2` crate's defaults, OWASP's recommendation
//! (19 MiB of memory, 2 passes, 1 lane), stored as a PHC string that carries its own
//! parameters, so stronger settings later still verify old hashes.
//!
//! Hashing is deliberately slow and memory-hungry, so it runs on a [`HashPool`]: a fixed set of
//! threads of its own, never an async worker, each hashing in 19 MiB of working memory it
//! allocates once and reuses while it is busy (and frees after 30 s idle), and only with one of
//! as many permits as threads. Resident memory
//! is then bounded by the pool's size × 19 MiB however many logins arrive at once. Not
//! `argon2`'s own allocation per hash: glibc does not give those 19 MiB blocks back (measured:
//! resident memory grew by one block per hash, to ~430 MB, even one hash at a time), nor
//! tokio's blocking pool. A request waits a bounded time for a permit and is then answered 503
//! with `Retry-After`: queueing without bound would only turn a burst into timeouts, and memory
//! into an OOM kill.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, mpsc};
use std::time::Duration;

use anyhow::Context as _;
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use nubo_platform::config::Secret;
use nubo_platform::tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::domain::Password;

/// Every hasher stayed busy for the whole wait: answer 503, the client may retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("every password hasher stayed busy for {waited:?}")]
pub struct Busy {
    pub waited: Duration,
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// A hasher thread's working memory: argon2's 1 KiB blocks, allocated at its first hash and
/// reused by every hash after (grown if a stored hash was made with more).
#[derive(Default)]
struct Memory(Vec<Block>);

/// A hasher idle this long gives its working memory back to the allocator: an idle shop should
/// not hold 19 MiB per hasher (the seeding pool's alone was a third of an idle embedded shop's
/// heap), and allocating it again costs far less than the hash that needs it. mimalloc returns
/// the pages to the system after its purge delay, at once with `MIMALLOC_PURGE_DELAY=0` (idle
/// heap 52 -> 32 MiB, measured).
const IDLE_MEMORY_KEPT: Duration = Duration::from_secs(30);

/// The most memory a stored hash may ask for (256 MiB, 13 times today's): a damaged row must
/// not make a hasher hold gigabytes for the rest of its life.
const MAX_MEMORY_KIB: u32 = 256 * 1024;

impl Memory {
    fn blocks(&mut self, params: &Params) -> anyhow::Result<&mut [Block]> {
        anyhow::ensure!(
            params.m_cost() <= MAX_MEMORY_KIB,
            "the stored hash asks for {} KiB of memory, more than {MAX_MEMORY_KIB}",
            params.m_cost()
        );
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        Ok(&mut self.0[..count])
    }
}

/// `size` threads running hashes, and as many permits to hand one a job. Cheap to clone; the
/// threads end when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct HashPool {
    permits: Arc<Semaphore>,
    wait: Duration,
    jobs: mpsc::Sender<Job>,
    /// Hashes running now: never above the pool's size.
    pub running: Gauge,
    /// Requests refused because no permit came within the wait.
    pub refused: Counter,
}

impl HashPool {
    /// A pool running at most `size` hashes at once, where a caller waits at most `wait`.
    pub fn new(size: usize, wait: Duration) -> Self {
        let size = size.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..size {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("identity-hasher-{n}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        // The lock is held only while waiting for a job, not while running it.
                        let next = queue
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv_timeout(IDLE_MEMORY_KEPT);
                        let job = match next {
                            Ok(job) => job,
                            Err(mpsc::RecvTimeoutError::Timeout) => {
                                memory = Memory::default();
                                continue;
                            }
                            Err(mpsc::RecvTimeoutError::Disconnected) => return,
                        };
                        // A panicking hash fails its own request (its answer is dropped), not
                        // the thread.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                    }
                });
            if let Err(e) = spawned {
                // Fewer threads only means fewer hashes at once; with none, every hash waits
                // its permit out and is answered 503, which the metric shows.
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self {
            permits: Arc::new(Semaphore::new(size)),
            wait,
            jobs,
            running: Gauge::default(),
            refused: Counter::default(),
        }
    }

    /// The process's pool for work that is not a client's request (seeding the demo accounts,
    /// `nubo create-admin`, tests' accounts): one hash at a time, waiting as long as it takes.
    /// One for the whole process, so its thread and memory are made once.
    pub fn one_at_a_time() -> Self {
        static POOL: OnceLock<HashPool> = OnceLock::new();
        POOL.get_or_init(|| Self::new(1, Duration::from_secs(3600)))
            .clone()
    }

    /// Waits for a permit, at most the pool's wait.
    pub async fn permit(&self) -> Result<HashPermit, Busy> {
        let acquired =
            nubo_platform::tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
                .await;
        match acquired {
            Ok(Ok(permit)) => Ok(HashPermit {
                permit,
                jobs: self.jobs.clone(),
                running: self.running.clone(),
            }),
            // Timed out, or the semaphore was closed (it never is).
            Ok(Err(_)) | Err(_) => {
                self.refused.inc();
                tracing::warn!(
                    waited_ms = self.wait.as_millis(),
                    "every password hasher stayed busy; answering 503"
                );
                Err(Busy { waited: self.wait })
            }
        }
    }
}

/// A permit to run one hash, spent by running it.
#[derive(Debug)]
pub struct HashPermit {
    permit: OwnedSemaphorePermit,
    jobs: mpsc::Sender<Job>,
    running: Gauge,
}

impl HashPermit {
    /// Runs `job` on one of the pool's threads. The permit goes with it and is released only
    /// when the job ends, so a request that gives up (a timeout, a client gone) cannot free a
    /// permit while its hash still holds the memory.
    async fn run<T: Send + 'static>(
        self,
        job: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let Self {
            permit,
            jobs,
            running,
        } = self;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |memory| {
            let running = Running::start(running);
            let output = job(memory);
            // Done with the memory before the answer: whoever hears it sees the pool free.
            drop(running);
            drop(permit);
            let _ = answer.send(output);
        });
        jobs.send(job)
            .map_err(|_| anyhow::anyhow!("the password hashing threads are gone"))?;
        answered.await.context("the hashing job did not finish")
    }

    /// The PHC string of a new salted hash of `password`.
    pub async fn hash(self, password: Password) -> anyhow::Result<String> {
        self.run(move |memory| hash_in(memory, password.expose().as_bytes()))
            .await?
    }

    /// Whether `password` matches the PHC string `hash`. A hash that does not parse is an
    /// error, not a mismatch: it means the stored data is damaged.
    pub async fn verify(self, password: Password, hash: Arc<str>) -> anyhow::Result<bool> {
        self.run(move |memory| verify_in(memory, password.expose().as_bytes(), &hash))
            .await?
    }
}

/// What `Argon2::default().hash_password` does (argon2id v19 at the default parameters, a
/// 16-byte random salt, a 32-byte output), in `memory`.
fn hash_in(memory: &mut Memory, password: &[u8]) -> anyhow::Result<String> {
    let failed = |e: &dyn std::fmt::Display| anyhow::anyhow!("argon2 hashing failed: {e}");
    let params = Params::default();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let salt: [u8; Salt::RECOMMENDED_LENGTH] = rand::random();
    let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2
        .hash_password_into_with_memory(password, &salt, &mut output, memory.blocks(&params)?)
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&output).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

/// What `argon2`'s `verify_password` does (the algorithm, version and parameters the PHC
/// string names, a constant-time comparison of the outputs), in `memory`.
fn verify_in(memory: &mut Memory, password: &[u8], hash: &str) -> anyhow::Result<bool> {
    let damaged = |e: &dyn std::fmt::Display| anyhow::anyhow!("argon2 verification failed: {e}");
    let stored = PasswordHash::new(hash).map_err(|e| damaged(&e))?;
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        anyhow::bail!("argon2 verification failed: the stored hash has no salt or no output");
    };
    let algorithm = Algorithm::try_from(stored.algorithm.as_str()).map_err(|e| damaged(&e))?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| damaged(&e))?
        .unwrap_or_default();
    let params = Params::try_from(&stored).map_err(|e| damaged(&e))?;
    let mut output = [0u8; Output::MAX_LENGTH];
    let output = &mut output[..expected.len()];
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, output, memory.blocks(&params)?)
        .map_err(|e| damaged(&e))?;
    Ok(Output::new(output).map_err(|e| damaged(&e))? == *expected)
}

/// Counts a hash as running until it ends, panicking or not.
struct Running(Gauge);

impl Running {
    fn start(gauge: Gauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A hash of a random password nobody knows. A login for an unknown email is verified against
/// it, so it takes as long as one for a known email and timing does not tell which emails
/// have accounts.
pub async fn decoy(permit: HashPermit) -> anyhow::Result<Arc<str>> {
    let random = Secret::new(nubo_platform::uuid::Uuid::new_v4().to_string());
    let password = Password::presented(random).map_err(anyhow::Error::msg)?;
    Ok(permit.hash(password).await?.into())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn password(raw: &str) -> Password {
        Password::parse(Secret::new(raw)).unwrap()
    }

    async fn permit(pool: &HashPool) -> HashPermit {
        pool.permit().await.unwrap()
    }

    #[tokio::test]
    async fn a_hash_is_argon2id_at_owasp_parameters_and_verifies_only_its_password() {
        let pool = HashPool::one_at_a_time();
        let hash: Arc<str> = permit(&pool)
            .await
            .hash(password("correct horse battery"))
            .await
            .unwrap()
            .into();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            permit(&pool)
                .await
                .verify(password("correct horse battery"), hash.clone())
                .await
                .unwrap()
        );
        assert!(
            !permit(&pool)
                .await
                .verify(password("correct horse battery!"), hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_are_interchangeable_with_argon2s_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let pool = HashPool::one_at_a_time();
        let right = "correct horse battery";
        // Stored before hashing reused its memory: argon2's own, at its defaults and at other
        // parameters (a stronger or weaker setting of the past), each verifies here...
        let weaker = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 3, 1, None).unwrap(),
        );
        for theirs in [
            Argon2::default().hash_password(right.as_bytes()).unwrap(),
            weaker.hash_password(right.as_bytes()).unwrap(),
        ] {
            let theirs: Arc<str> = theirs.to_string().into();
            assert!(
                permit(&pool)
                    .await
                    .verify(password(right), theirs.clone())
                    .await
                    .unwrap(),
                "{theirs}"
            );
            assert!(
                !permit(&pool)
                    .await
                    .verify(password("correct horse battery!"), theirs)
                    .await
                    .unwrap()
            );
        }
        // ...and what is stored now verifies with argon2's own.
        let ours = permit(&pool).await.hash(password(right)).await.unwrap();
        assert!(
            Argon2::default()
                .verify_password(right.as_bytes(), &*ours)
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_damaged_hash_is_an_error_not_a_mismatch() {
        let pool = HashPool::one_at_a_time();
        let verified = permit(&pool)
            .await
            .verify(password("correct horse battery"), "nonsense".into())
            .await;
        assert!(verified.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_hashes_run_at_once_than_the_pool_has_permits() {
        let pool = HashPool::new(2, Duration::from_secs(30));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..8)
            .map(|_| {
                let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
                nubo_platform::tokio::spawn(async move {
                    let permit = pool.permit().await.unwrap();
                    permit
                        .run(move |_| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            // Long enough for the other jobs to pile up behind the permits.
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                        .unwrap();
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.running.get(), 0);
        assert_eq!(pool.refused.get(), 0);
    }

    #[tokio::test]
    async fn a_caller_that_waits_too_long_is_turned_away_and_counted() {
        let pool = HashPool::new(1, Duration::from_millis(20));
        let held = permit(&pool).await;
        assert_eq!(
            pool.permit().await.unwrap_err(),
            Busy {
                waited: Duration::from_millis(20)
            }
        );
        assert_eq!(pool.refused.get(), 1);
        // Once the hash in progress ends, the next caller gets its turn.
        drop(held);
        assert!(pool.permit().await.is_ok());
    }
}
