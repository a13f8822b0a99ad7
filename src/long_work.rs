//! Long work, off the threads that answer requests: audits and their rendering, replays,
//! candidate rule sets, imports, every read of the stored history.
//!
//! Long work runs on one process-wide pool of its own ([`run`]): a `rayon` pool of
//! [`Settings::threads`] threads, so the work's own parallel loops stay on those threads
//! too, and at most as many jobs at a time; a job that finds every thread busy waits its
//! turn (first come, first served) without holding a thread. The pool's threads run at a
//! lower operating-system priority ([`Priority`]), so a request that wakes up while they
//! compute gets a core at once.
//!
//! `gk-regler serve` sets the pool up once at start ([`configure`]): by default one
//! thread fewer than the machine has cores (at least one) at [`Priority::Idle`], so one
//! core always stays free for requests. The command line, which has nothing to protect,
//! uses every core at normal priority unless configured otherwise.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

/// How long work is scheduled against the threads that answer requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// `SCHED_IDLE` on Linux: runs only when no thread of normal priority wants the core.
    Idle,
    /// The lowest nice value (19) under the normal scheduler.
    Low,
    /// The process's own priority.
    Normal,
}

impl std::str::FromStr for Priority {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "idle" => Ok(Self::Idle),
            "low" => Ok(Self::Low),
            "normal" => Ok(Self::Normal),
            _ => Err("ogiltigt värde (idle, low eller normal)".to_owned()),
        }
    }
}

/// The pool's size and priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Threads of the pool, which is also the number of jobs run at once.
    pub threads: usize,
    pub priority: Priority,
}

impl Settings {
    /// For the service: one core left free for requests, the rest at idle priority.
    pub fn for_service() -> Self {
        Self {
            threads: cores().saturating_sub(1).max(1),
            priority: Priority::Idle,
        }
    }

    /// For the command line: every core at normal priority.
    pub fn for_command_line() -> Self {
        Self {
            threads: cores(),
            priority: Priority::Normal,
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The pool of long work.
pub struct LongWork {
    pool: Arc<rayon::ThreadPool>,
    jobs: Arc<Semaphore>,
    settings: Settings,
    /// Jobs running on the pool now.
    running: Arc<AtomicUsize>,
    /// Jobs waiting for a thread.
    queued: Arc<AtomicUsize>,
    /// Threads whose priority could not be lowered (the operating system refused).
    not_lowered: Arc<AtomicUsize>,
}

/// How busy the pool is (for `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    pub running: usize,
    pub queued: usize,
    pub threads: usize,
}

impl LongWork {
    /// A pool of `settings.threads` (at least one) threads named `gk-long-work-N`.
    pub fn new(settings: Settings) -> std::io::Result<Self> {
        let settings = Settings {
            threads: settings.threads.max(1),
            ..settings
        };
        let not_lowered = Arc::new(AtomicUsize::new(0));
        let refused = Arc::clone(&not_lowered);
        let priority = settings.priority;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(settings.threads)
            .thread_name(|n| format!("gk-long-work-{n}"))
            .stack_size(crate::engine::STACK_BYTES)
            .start_handler(move |_| {
                if let Err(err) = lower_this_thread(priority) {
                    refused.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %err, "long work runs at normal priority: lowering it was refused");
                }
            })
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            pool: Arc::new(pool),
            jobs: Arc::new(Semaphore::new(settings.threads)),
            settings,
            running: Arc::new(AtomicUsize::new(0)),
            queued: Arc::new(AtomicUsize::new(0)),
            not_lowered,
        })
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    pub fn load(&self) -> Load {
        Load {
            running: self.running.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            threads: self.settings.threads,
        }
    }

    /// Threads that kept normal priority because the system refused to lower it.
    pub fn threads_not_lowered(&self) -> usize {
        self.not_lowered.load(Ordering::Relaxed)
    }

    /// Runs `work` on the pool once a thread is free; until then the caller waits
    /// (its request simply takes longer). A panic in `work` is the error.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, tokio::task::JoinError> {
        let waiting = Counted::new(&self.queued);
        // The semaphore is never closed, so acquiring fails never; should it, the work
        // runs anyway rather than not at all.
        let permit = Arc::clone(&self.jobs).acquire_owned().await.ok();
        drop(waiting);
        let pool = Arc::clone(&self.pool);
        let running = Arc::clone(&self.running);
        // The waiting blocking thread only sleeps; `install` hands the work to the pool
        // and carries a panic back, which `spawn_blocking` turns into a `JoinError`.
        tokio::task::spawn_blocking(move || {
            let _running = Counted::new(&running);
            let out = pool.install(work);
            drop(permit);
            out
        })
        .await
    }
}

/// When a piece of long work must give up: a job that runs what people upload (a
/// candidate rule set's scripts over the whole history) checks it between checks and
/// has the scripts stop at it too, so a script that is merely slow cannot hold a thread
/// of the pool for as long as it likes.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Option<std::time::Instant>);

impl Deadline {
    /// Work that may take as long as it takes (the command line's, the service's own).
    pub const NONE: Self = Self(None);

    /// `limit` from now.
    pub fn after(limit: std::time::Duration) -> Self {
        Self(std::time::Instant::now().checked_add(limit))
    }

    /// Whether the time is up; without a deadline never, and without reading the clock.
    pub fn passed(&self) -> bool {
        self.0.is_some_and(|at| std::time::Instant::now() >= at)
    }

    /// The instant, if there is one (to stop scripts mid-way at it too:
    /// [`crate::engine::stop_evaluations_at`]).
    pub fn at(&self) -> Option<std::time::Instant> {
        self.0
    }
}

/// Counts itself in `counter` while it lives.
struct Counted<'a>(&'a AtomicUsize);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Self(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lowers the calling thread's scheduling priority; a lowered thread stays lowered
/// (raising it again needs a privilege the service does not have), which is why long
/// work has threads of its own.
fn lower_this_thread(priority: Priority) -> Result<(), thread_priority::Error> {
    use thread_priority::ThreadPriority;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use thread_priority::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        match priority {
            Priority::Normal => Ok(()),
            // `SCHED_IDLE` takes no priority value of its own (`Min` is its only one, 0).
            Priority::Idle => set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            ),
            Priority::Low => thread_priority::set_current_thread_priority(ThreadPriority::Min),
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        match priority {
            Priority::Normal => Ok(()),
            Priority::Idle | Priority::Low => {
                thread_priority::set_current_thread_priority(ThreadPriority::Min)
            }
        }
    }
}

static POOL: OnceLock<LongWork> = OnceLock::new();

/// Sets the process's pool up with `settings`; only before any long work has run.
/// Returns false when the pool already exists (its settings stay).
pub fn configure(settings: Settings) -> std::io::Result<bool> {
    if POOL.get().is_some() {
        return Ok(false);
    }
    let pool = LongWork::new(settings)?;
    Ok(POOL.set(pool).is_ok())
}

/// The process's pool; made with [`Settings::for_command_line`] if [`configure`] was
/// not called.
pub fn pool() -> &'static LongWork {
    POOL.get_or_init(|| {
        LongWork::new(Settings::for_command_line())
            .or_else(|_| {
                LongWork::new(Settings {
                    threads: 1,
                    priority: Priority::Normal,
                })
            })
            .unwrap_or_else(|err| panic!("no thread for long work can be started: {err}"))
    })
}

/// Runs `work` on the process's pool of long work ([`LongWork::run`]).
pub async fn run<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    pool().run(work).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn the_pools_threads_have_the_stack_rule_evaluation_needs() {
        /// Recursion that keeps `depth` frames of 4 KiB each on the stack.
        fn deep(depth: usize) -> usize {
            let frame = std::hint::black_box([depth as u8; 4096]);
            if depth == 0 {
                0
            } else {
                deep(depth - 1) + usize::from(frame[4095] == depth as u8)
            }
        }
        let pool = LongWork::new(Settings {
            threads: 1,
            priority: Priority::Normal,
        })
        .expect("pool");
        // 8 MiB: far past a default thread's 2 MiB, which would abort the process.
        let depth = runtime().block_on(pool.run(|| deep(2048)));
        assert_eq!(depth.expect("ran"), 2048);
    }

    #[test]
    fn priorities_are_read_from_their_names() {
        assert_eq!("idle".parse::<Priority>(), Ok(Priority::Idle));
        assert_eq!(" low ".parse::<Priority>(), Ok(Priority::Low));
        assert_eq!("normal".parse::<Priority>(), Ok(Priority::Normal));
        let refused = "high".parse::<Priority>().expect_err("refused");
        // The value is not repeated (a configuration error goes to the service's log).
        assert!(!refused.contains("high"), "{refused}");
        assert!(refused.contains("idle, low eller normal"), "{refused}");
    }

    #[test]
    fn a_deadline_passes_once_its_time_is_up_and_none_never_does() {
        assert!(!Deadline::after(std::time::Duration::from_secs(60)).passed());
        let deadline = Deadline::after(std::time::Duration::from_millis(30));
        std::thread::sleep(std::time::Duration::from_millis(40));
        assert!(deadline.passed());
        assert!(!Deadline::NONE.passed());
        assert!(Deadline::after(std::time::Duration::ZERO).passed());
    }

    #[test]
    fn work_runs_on_the_pool_threads_and_its_parallel_loops_stay_there() {
        let pool = LongWork::new(Settings {
            threads: 2,
            priority: Priority::Normal,
        })
        .expect("pool");
        let names = runtime().block_on(pool.run(|| {
            use rayon::prelude::*;
            (0..64)
                .into_par_iter()
                .map(|_| std::thread::current().name().unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        }));
        let names = names.expect("ran");
        assert_eq!(names.len(), 64);
        assert!(
            names.iter().all(|n| n.starts_with("gk-long-work-")),
            "{names:?}"
        );
    }

    #[test]
    fn with_one_thread_jobs_run_one_at_a_time_and_every_queued_job_completes() {
        let pool = Arc::new(
            LongWork::new(Settings {
                threads: 1,
                priority: Priority::Normal,
            })
            .expect("pool"),
        );
        let inside = Arc::new(Mutex::new((0usize, 0usize))); // (now, most at once)
        let rt = runtime();
        let done = rt.block_on(async {
            let mut jobs = tokio::task::JoinSet::new();
            for n in 0..6 {
                let (pool, inside) = (Arc::clone(&pool), Arc::clone(&inside));
                jobs.spawn(async move {
                    pool.run(move || {
                        {
                            let mut at = inside.lock().expect("lock");
                            at.0 += 1;
                            at.1 = at.1.max(at.0);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        inside.lock().expect("lock").0 -= 1;
                        n
                    })
                    .await
                });
            }
            let mut done = Vec::new();
            while let Some(joined) = jobs.join_next().await {
                done.push(joined.expect("task").expect("work"));
            }
            done
        });
        let mut done = done;
        done.sort_unstable();
        assert_eq!(done, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(inside.lock().expect("lock").1, 1, "never two at once");
        assert_eq!(
            pool.load(),
            Load {
                running: 0,
                queued: 0,
                threads: 1
            }
        );
    }

    #[test]
    fn a_panic_in_the_work_is_an_error_and_the_pool_goes_on() {
        let pool = LongWork::new(Settings {
            threads: 1,
            priority: Priority::Normal,
        })
        .expect("pool");
        let rt = runtime();
        let failed = rt.block_on(pool.run(|| -> usize { panic!("boom") }));
        assert!(failed.is_err());
        assert_eq!(rt.block_on(pool.run(|| 7)).expect("ran"), 7);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn idle_priority_puts_the_pool_threads_under_sched_idle() {
        use thread_priority::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};
        let pool = LongWork::new(Settings {
            threads: 1,
            priority: Priority::Idle,
        })
        .expect("pool");
        let policy = runtime()
            .block_on(pool.run(thread_priority::unix::thread_schedule_policy))
            .expect("ran")
            .expect("policy");
        assert_eq!(
            policy,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle)
        );
        assert_eq!(pool.threads_not_lowered(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn low_priority_gives_the_pool_threads_the_highest_nice_value() {
        let pool = LongWork::new(Settings {
            threads: 1,
            priority: Priority::Low,
        })
        .expect("pool");
        let nice = runtime()
            .block_on(pool.run(|| {
                std::fs::read_to_string("/proc/thread-self/stat").map(|stat| {
                    // Field 19 (nice), counted after the command name's closing parenthesis.
                    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                    after.split_whitespace().nth(16).map(str::to_owned)
                })
            }))
            .expect("ran")
            .expect("stat");
        assert_eq!(nice.as_deref(), Some("19"));
        assert_eq!(pool.threads_not_lowered(), 0);
    }
}
