//! Stockyard: a single-binary LLM proxy whose whole state lives in one SQLite file.
//!
//! Start reading at [`proxy::pipeline`], which runs every phase of a request in order; then
//! [`modules`] (the `Module` trait and the chain swapped atomically on admin changes); then any one
//! folder under `modules/`.
//!
//! | module | job |
//! |---|---|
//! | [`cli`] | argument structs and one file per subcommand |
//! | [`config`] | TOML + `STOCKYARD_*` layering, then validation into checked types |
//! | [`server`] | listener (TCP_NODELAY, graceful shutdown) and the route table |
//! | [`proxy`] | the request path: pipeline, admission, SSE relay, egress |
//! | [`request`] | the request context, API errors and attempt plans, below pipeline and modules |
//! | [`wire`] | client-facing request/response types; unknown fields kept |
//! | [`modules`] | auth, request_limits, rate_limits, budgets, routing, cost, trace: the chain of hooks |
//! | [`providers`] | upstream adapters of one shape and the pooled HTTP client |
//! | [`store`] | one storage trait per concern, the `Store` handle, the batched writer thread, hot counters, the SQLite backend |
//! | [`ledger`] | the hash-chained audit ledger: canonical entries and verification |
//! | [`secrets`] | the master key sealing provider credentials at rest (AES-256-GCM) |
//! | [`cost`] | the price table in integer nano-dollars |
//! | [`admin`] | the one function every administrative change goes through, and its HTTP API |
//! | [`telemetry`] | logging set-up |
//! | [`ui`] | the web console at `/ui`: server-rendered pages over the admin changes and the store |

pub mod admin;
pub mod cli;
pub mod config;
pub mod cost;
pub mod ids;
pub mod ledger;
pub mod modules;
pub mod providers;
pub mod proxy;
pub mod request;
pub mod secret;
pub mod secrets;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod ui;
pub mod wire;
