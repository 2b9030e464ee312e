//! What one event did, in the shapes the service publishes: routes, alerts,
//! backorders, audit lines, expired holds and dead letters. The state machine fills an
//! [`Effects`] per event; the Python glue turns it into messages.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOut {
    pub order_id: String,
    pub line_id: String,
    pub sku: String,
    pub qty: i64,
    pub location: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertOut {
    pub kind: &'static str,
    pub sku: Option<String>,
    pub channel: Option<String>,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackorderOut {
    pub order_id: String,
    pub line_id: String,
    pub sku: String,
    pub condition: String,
    pub channel: String,
    pub qty: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditOut {
    pub sku: String,
    pub condition: String,
    pub location: Option<String>,
    pub field: &'static str,
    pub before: i64,
    pub after: i64,
}

/// What one event did, for the service to publish.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    pub duplicate: bool,
    pub routes: Vec<RouteOut>,
    pub alerts: Vec<AlertOut>,
    pub backorders: Vec<BackorderOut>,
    pub audit: Vec<AuditOut>,
    /// Order ids whose holds expired.
    pub expired: Vec<String>,
    /// Events set aside earlier that are now refused, for the dead-letter subject.
    pub dead: Vec<DeadOut>,
}

impl Effects {
    /// Adds what another step of the same event did.
    pub fn absorb(&mut self, other: Effects) {
        self.routes.extend(other.routes);
        self.alerts.extend(other.alerts);
        self.backorders.extend(other.backorders);
        self.audit.extend(other.audit);
        self.expired.extend(other.expired);
        self.dead.extend(other.dead);
    }
}

/// An event the core set aside earlier and now refuses: its contract JSON, the dead
/// letter reason (`bad_input`, `order_missing`) and the error in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadOut {
    pub event_id: String,
    pub event_json: String,
    pub reason: &'static str,
    pub error: String,
}
