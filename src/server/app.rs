//! `App`: everything a running proxy holds, built once at start-up from a validated config:
//! the store (migrated), the writer thread, the price table, the module chain (from the states in
//! the database, else the file, else defaults) and the providers, with the stored credentials
//! opened under the master key.

use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;

use crate::admin::{Admin, Vault};
use crate::config::{AuthMode, ValidConfig};
use crate::cost::{PriceError, PriceTable};
use crate::ledger::LedgerKey;
use crate::ledger::key::KeyError;
use crate::modules::auth::hasher::KeyHasher;
use crate::modules::auth::table::{self as key_table, KeyState};
use crate::modules::registry::{Catalogue, ModuleSpec};
use crate::modules::{Chain, ModuleDeps, ModuleError};
use crate::providers::ProviderRegistry;
use crate::proxy::admission::Admission;
use crate::proxy::internal::InternalCalls;
use crate::proxy::pipeline::Proxy;
use crate::secret::Secret;
use crate::secrets::MasterKey;
use crate::store::writer::Writer;
use crate::store::{ModuleState, Store, StoreError};

#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot start the writer thread: {0}")]
    Writer(std::io::Error),
    #[error("stored price file: {0}")]
    Prices(#[from] PriceError),
    #[error(transparent)]
    Module(#[from] ModuleError),
    #[error("provider set-up failed: {0}")]
    Providers(String),
    #[error("ledger key: {0}")]
    LedgerKey(#[from] KeyError),
    #[error("master key: {0}")]
    MasterKey(#[from] crate::secrets::MasterKeyError),
    #[error("cannot make the local admin token: {0}")]
    Token(std::io::Error),
}

pub struct App {
    pub config: ValidConfig,
    pub proxy: Proxy,
    pub admin: Admin,
    pub writer: Arc<Writer>,
    /// The store's read side, one handle per concern.
    pub store: Store,
    /// Per-run admin bearer token, published in the runtime file for the CLI on this machine.
    pub local_admin_token: Secret<String>,
    /// Checks the ledger's MACs for `GET /admin/audit`.
    pub ledger_key: LedgerKey,
    /// Changes other nodes of a shared store make, applied here as they commit (`None` on
    /// SQLite); the watch stops when the app is dropped.
    pub watch: Option<crate::store::changes::Watch>,
}

impl App {
    pub fn open(config: ValidConfig) -> Result<App, StartError> {
        App::open_with(config, &[])
    }

    /// Like [`App::open`], with modules beyond the built-in ones (an embedder's, or a test's).
    pub fn open_with(
        config: ValidConfig,
        extra_modules: &[&'static ModuleSpec],
    ) -> Result<App, StartError> {
        let url = config.store_url();
        crate::store::ensure_built(&url)?;
        // The master key must open what is sealed, checked before anything is created or opened
        // for writing: a wrong key stops the start with the database untouched.
        let check = crate::store::secrets_check(&url)?;
        let master_env = config.master_key.as_ref().map(|k| k.expose().as_str());
        let (master, master_source) =
            MasterKey::for_writing(&config.db_path, master_env, check.as_deref())?;
        let env_key = config.ledger_key.as_ref().map(|k| k.expose().as_str());
        // The key must be the one the ledger was anchored with, checked before the store is
        // opened for writing (which anchors old entries and publishes the head under it).
        let newest = crate::store::newest_mac(&url)?;
        let key = LedgerKey::for_writing(&config.db_path, env_key, newest.as_ref())?;
        // The ledger head is published beside the local state path (`db`), whatever the backend.
        let opened = crate::store::open_node(&url, key.clone(), &config.db_path)?;
        let store = opened.store;
        let writer =
            Arc::new(Writer::start(opened.writes, config.store).map_err(StartError::Writer)?);

        let base = PriceTable::bundled();
        let mut overrides = PriceTable::default();
        for (model, price) in &config.price_overrides {
            overrides.set(model, *price);
        }
        let stored = store
            .modules
            .stored_prices()?
            .map(|body| PriceTable::from_json(body.as_bytes()))
            .transpose()?;
        let prices = Arc::new(ArcSwap::from_pointee(Admin::layered_prices(
            &base,
            stored.as_ref(),
            &overrides,
        )));

        let providers = Arc::new(
            ProviderRegistry::new(&config.providers, &config.models)
                .map_err(StartError::Providers)?,
        );
        let vault = Vault::load(
            master,
            master_source,
            config.db_path.clone(),
            providers.clone(),
            store.credentials.as_ref(),
        )
        .map_err(StartError::Providers)?;
        let vault = Arc::new(vault);
        let models = Arc::new(InternalCalls::default());
        let deps = ModuleDeps {
            auth_keys: Arc::new(config.auth_keys.clone()),
            writer: writer.clone(),
            prices: prices.clone(),
            store: store.clone(),
            providers: providers.clone(),
            models: models.clone(),
            shared: Arc::default(),
            catalogue: Arc::new(Catalogue::with(extra_modules)),
        };
        // Before the first chain: MCP servers' sealed tokens open under the master key.
        let token_vault = vault.clone();
        deps.shared
            .get_or_init(crate::modules::mcp::Tokens::default)
            .install(Box::new(move |name, server| {
                let sealed = server.sealed_token.as_deref()?;
                token_vault.open_text(&crate::modules::mcp::token_id(name), sealed)
            }));
        // Before the first chain: the auth module's `required` and `build` read the key table.
        let keys = KeyState::new(
            store.keys.teams()?,
            store.keys.virtual_keys()?,
            store.keys.admin_keys()?,
        );
        let table = key_table::install(&deps, KeyHasher::new(key.clone()), keys);
        let states = initial_states(&config, &deps.catalogue, store.modules.module_states()?);
        let chain = Arc::new(ArcSwap::from_pointee(Chain::build(&states, &deps)?));
        models.connect(chain.clone(), providers.clone());
        let follow_deps = deps.clone();
        let admin =
            Admin::new(chain.clone(), deps, base, Arc::new(overrides)).with_vault(vault.clone());
        let watch = crate::store::watch(
            &url,
            super::follow::on_change(super::follow::Follow {
                store: store.clone(),
                keys: table,
                chain: chain.clone(),
                deps: follow_deps,
                config: config.clone(),
                vault,
                admin_lock: admin.serializer(),
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        )?;
        Ok(App {
            proxy: Proxy {
                chain,
                providers,
                admission: Admission::new(config.limits),
            },
            admin,
            writer,
            store,
            config,
            ledger_key: key,
            watch,
            local_admin_token: super::runtime_file::new_token().map_err(StartError::Token)?,
        })
    }
}

impl App {
    /// Who may use the proxy: the config's mode, except that stored virtual keys (revoked ones
    /// too) require a key as static ones do.
    pub fn auth_mode(&self) -> AuthMode {
        let virtual_keys =
            key_table::of(self.admin.deps()).is_some_and(|t| t.load().has_virtual_keys());
        match self.config.auth_mode() {
            AuthMode::Local | AuthMode::Open if virtual_keys => AuthMode::Keys,
            mode => mode,
        }
    }
}

/// The database's state for a module wins (it is the record of admin changes); then the file;
/// then the module's defaults.
pub fn initial_states(
    config: &ValidConfig,
    catalogue: &Catalogue,
    stored: Vec<ModuleState>,
) -> Vec<ModuleState> {
    catalogue
        .specs()
        .iter()
        .map(|spec| {
            if let Some(state) = stored
                .iter()
                .find(|s| s.name == spec.name && s.scope == "global")
            {
                return state.clone();
            }
            let from_file = config.module_config.get(spec.name);
            ModuleState {
                name: spec.name.to_string(),
                enabled: from_file
                    .and_then(|s| s.enabled)
                    .unwrap_or(spec.enabled_by_default),
                config: from_file
                    .map(|s| s.config.clone())
                    .unwrap_or_else(spec.default_config),
                scope: "global".into(),
            }
        })
        .collect()
}
