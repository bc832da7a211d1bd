//! `guard_pii`: personal data in prompts and answers: e-mail addresses, phone numbers in
//! international formats, payment card numbers that pass the Luhn check, IBANs whose mod-97
//! checksum holds, US social security numbers and IP addresses. Redacts by default, so the data
//! never reaches the provider; `restore` gives it back in the answer.

mod detect;

use serde::{Deserialize, Serialize};

use super::guard::{Action, Family, GuardConfig};
use super::registry::{ModuleConfig, ModuleSpec};

pub use detect::PiiScanner;

pub const SPEC: ModuleSpec = ModuleSpec {
    name: "guard_pii",
    description: "finds personal data (e-mail, phone, card, IBAN, SSN, IP) in prompts and answers, streamed too; blocks, redacts (and restores) or flags",
    order: 45,
    finish_order: 45,
    enabled_by_default: false,
    required: super::registry::never_required,
    default_config: GuardConfig::<Pii>::default_json,
    check: GuardConfig::<Pii>::check,
    build: super::guard::build::<Pii>,
};

pub struct Pii;

/// Which kinds of personal data to look for; all by default.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PiiConfig {
    pub email: bool,
    pub phone: bool,
    pub card: bool,
    pub iban: bool,
    pub ssn: bool,
    pub ip: bool,
}

impl Default for PiiConfig {
    fn default() -> Self {
        PiiConfig {
            email: true,
            phone: true,
            card: true,
            iban: true,
            ssn: true,
            ip: true,
        }
    }
}

impl Family for Pii {
    type Config = PiiConfig;
    type Scanner = PiiScanner;
    const NAME: &'static str = "guard_pii";
    const DEFAULT_ACTION: Action = Action::Redact;
    const DEFAULT_OUTPUT: bool = true;

    fn scanner(config: &PiiConfig) -> Result<PiiScanner, String> {
        PiiScanner::new(config)
    }
}
