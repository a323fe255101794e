//! The responder at work: it turns new alerts into actions by their playbooks, holds
//! what the guardrails or playbooks say must wait, and delivers the rest, retrying
//! under one id. The alert feed is its inbox: it keeps its own cursor there, so an
//! alert raised just before a crash is still answered after it, and once only.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cordon_schemas::alert::Alert;
use cordon_schemas::{AlertFeed, ResponseMode, ResponseStep};
use rand::SeedableRng;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::actions::{self, ResponseAction};
use crate::backoff;
use crate::config::{ResolvedTarget, ResponderConfig};
use crate::delivery::{Deliverer, Outcome};
use crate::enrich::TargetEnricher;
use crate::error::ResponderError;
use crate::guardrails;
use crate::metrics::ResponderMetrics;
use crate::model::{Action, ActionState, AuditEntry, Target, WebhookBody, now_nanos, rfc3339};
use crate::playbook::{PlaybookSource, steps_for};
mod manual;

use crate::store::{ActionFilter, ActionStore, After, AuditFilter, AuditLine, Claimed, NewAction};
pub use manual::ManualRequest;

/// The responder's cursor in the alert feed.
pub const FEED_CONSUMER: &str = "responder";

/// Where releases before the alert feed kept the cursor: in the action store.
const LEGACY_ALERT_CURSOR: &str = "alerts";

pub struct Responder {
    config: ResponderConfig,
    targets: BTreeMap<String, ResolvedTarget>,
    store: ActionStore,
    alerts: Arc<dyn AlertFeed>,
    deliverer: Deliverer,
    wake: Notify,
    enricher: std::sync::OnceLock<Arc<dyn TargetEnricher>>,
    pub metrics: ResponderMetrics,
}

/// The id of a playbook action: derived from the alert and the action, so handling
/// the same alert again (after a crash) finds the action it already made.
pub fn playbook_action_id(alert_id: &str, action: &str) -> String {
    let hash = xxhash_rust::xxh3::xxh3_128(format!("{alert_id}\u{1f}{action}").as_bytes());
    format!("act-{hash:032x}")
}

impl Responder {
    /// Checks the settings, reads the targets' secrets, opens the store at `db`, and
    /// puts back into the queue any try a crash interrupted.
    pub fn open(
        config: ResponderConfig,
        db: &Path,
        alerts: Arc<dyn AlertFeed>,
        metrics: ResponderMetrics,
    ) -> Result<Arc<Responder>, ResponderError> {
        config.validate()?;
        let targets = config.resolved_targets()?;
        let store = ActionStore::open(db)?;
        adopt_legacy_cursor(&store, alerts.as_ref())?;
        let resumed = store.resume_interrupted()?;
        if resumed > 0 {
            tracing::warn!(
                actions = resumed,
                "resending actions whose tries a stop interrupted (same action ids)"
            );
        }
        metrics.init(&actions::names());
        for name in actions::names() {
            if !targets.contains_key(name) && !config.dry_run {
                tracing::info!(
                    action = name,
                    "no target for this action: its actions will fail until [responder.targets.{name}] is set"
                );
            }
        }
        Ok(Arc::new(Responder {
            config,
            targets,
            store,
            alerts,
            deliverer: Deliverer::new(),
            wake: Notify::new(),
            enricher: std::sync::OnceLock::new(),
            metrics,
        }))
    }

    /// Runs until `shutdown` turns true; tries under way are finished first.
    pub fn start(
        self: &Arc<Self>,
        playbooks: Arc<dyn PlaybookSource>,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let responder = Arc::clone(self);
        tokio::spawn(async move {
            let slots = responder.slots_per_target();
            let mut tries = JoinSet::new();
            loop {
                if *shutdown.borrow() {
                    break;
                }
                let intake = {
                    let responder = responder.clone();
                    let playbooks = playbooks.clone();
                    tokio::task::spawn_blocking(move || responder.take_new_alerts(playbooks.as_ref())).await
                };
                if let Ok(Err(error)) = intake {
                    tracing::error!(%error, "cannot turn new alerts into actions; will try again");
                }
                responder.deliver_due(&slots, &mut tries).await;
                while tries.try_join_next().is_some() {}
                let wait = responder.until_next_due();
                tokio::select! {
                    _ = responder.wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
            }
            while tries.join_next().await.is_some() {}
        })
    }

    /// Where a token id missing from an alert is looked up (set once, at start-up).
    pub fn set_enricher(&self, enricher: Arc<dyn TargetEnricher>) {
        let _ = self.enricher.set(enricher);
    }

    /// Wakes the worker: call it when an alert is created (a detection listener), so
    /// the response does not wait for the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    fn until_next_due(&self) -> Duration {
        let poll = self.config.poll_interval;
        match self.store.next_due() {
            Ok(Some(at)) => Duration::from_nanos((at - now_nanos()).max(0) as u64).min(poll),
            _ => poll,
        }
    }

    /// Handles every alert created since the last one handled.
    fn take_new_alerts(&self, playbooks: &dyn PlaybookSource) -> Result<(), ResponderError> {
        loop {
            let cursor = self.alerts.cursor(FEED_CONSUMER).map_err(feed_error)?.unwrap_or(0);
            let batch = self.alerts.created_after(cursor, 100).map_err(feed_error)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (position, alert) in batch {
                self.respond_to(&alert, playbooks)?;
                // Only after its actions are stored: a crash in between handles the
                // alert again, which finds those actions and adds none.
                self.alerts.set_cursor(FEED_CONSUMER, position).map_err(feed_error)?;
            }
        }
    }

    fn respond_to(&self, alert: &Alert, playbooks: &dyn PlaybookSource) -> Result<(), ResponderError> {
        let created = chrono::DateTime::parse_from_rfc3339(&alert.created_at)
            .ok()
            .and_then(|time| time.timestamp_nanos_opt())
            .unwrap_or_else(now_nanos);
        let age = Duration::from_nanos((now_nanos() - created).max(0) as u64);
        if age > self.config.max_alert_age {
            tracing::info!(alert = %alert.id, rule = %alert.rule_id, "alert older than responder.max_alert_age: no automatic response");
            return Ok(());
        }
        let Some(steps) = steps_for(&self.config, playbooks, &alert.rule_id) else {
            tracing::warn!(alert = %alert.id, rule = %alert.rule_id, "no playbook: the rule is not loaded and has no override");
            return Ok(());
        };
        // Read once per alert, and only if a step needs to know how its evidence came.
        let mut provenance: Option<Option<Vec<crate::enrich::EvidenceProvenance>>> = None;
        for step in steps {
            let action = actions::for_kind(step.action);
            let trust = step.trust.unwrap_or_else(|| action.default_trust());
            let enricher = self.enricher.get().map(|enricher| enricher.as_ref());
            let shortfall = crate::trust::step_shortfall(trust, alert, enricher, &mut provenance);
            let mut target = action.target_from_alert(alert);
            if action.wants_token_id()
                && target.token_id.is_none()
                && let (Some(enricher), Some(host)) = (self.enricher.get(), target.host_id.as_deref())
            {
                target.token_id = enricher.latest_token(host, target.user_name.as_deref());
            }
            let (state, note) = match action.check_target(&target) {
                Err(why) => (
                    ActionState::Failed,
                    Some(format!("the alert does not name the target: {why}")),
                ),
                Ok(()) if step.mode_for(alert.detection_delay()) == ResponseMode::Approval => {
                    (ActionState::AwaitingApproval, Some(approval_note(&step, alert)))
                }
                Ok(()) if shortfall.is_some() => (ActionState::AwaitingApproval, shortfall.clone()),
                Ok(()) => match self.guardrail(action, &target)? {
                    guardrails::Decision::Proceed => (ActionState::Pending, None),
                    guardrails::Decision::Hold(why) => (ActionState::AwaitingApproval, Some(why)),
                },
            };
            let body = WebhookBody {
                action_id: playbook_action_id(&alert.id, action.name()),
                action: action.name().to_string(),
                alert_id: Some(alert.id.clone()),
                rule_id: Some(alert.rule_id.clone()),
                target,
                reason: alert.title.clone(),
                requested_by: "auto".into(),
                requested_at: rfc3339(now_nanos()),
            };
            let new = NewAction {
                body,
                automatic: true,
                state,
                note,
            };
            if let Some(stored) = self.store.insert(&new)? {
                self.announce(&stored);
                if let (ActionState::AwaitingApproval, Some(why)) = (stored.state, &shortfall) {
                    self.note_on_alert(alert, action.name(), why);
                }
            }
        }
        Ok(())
    }

    /// Tells the alert's readers why its containment waits (the action and the audit
    /// log say it too).
    fn note_on_alert(&self, alert: &Alert, action: &str, why: &str) {
        let note = format!("{action} waits for approval: {why}");
        if let Err(error) = self.alerts.add_note(&alert.id, "responder", &note) {
            tracing::warn!(alert = %alert.id, %error, "cannot add the responder's note to the alert");
        }
    }

    fn guardrail(&self, action: &dyn ResponseAction, target: &Target) -> Result<guardrails::Decision, ResponderError> {
        let config = &self.config.guardrails;
        let (kind, window): (fn(&dyn ResponseAction) -> bool, _) = if action.isolates() {
            (|action| action.isolates(), config.isolation_window)
        } else if action.revokes() {
            (|action| action.revokes(), config.revocation_window)
        } else {
            return Ok(guardrails::Decision::Proceed);
        };
        let same_kind: Vec<&str> = actions::REGISTRY
            .iter()
            .filter(|action| kind(**action))
            .map(|action| action.name())
            .collect();
        let since = now_nanos().saturating_sub(i64::try_from(window.as_nanos()).unwrap_or(i64::MAX));
        let recent = guardrails::Recent {
            fleet: self.store.count_automatic_since(&same_kind, since, None)?,
            user: match target.user_name.as_deref() {
                Some(user) => self.store.count_automatic_since(&same_kind, since, Some(user))?,
                None => 0,
            },
        };
        Ok(guardrails::check(action, target, config, recent))
    }

    fn announce(&self, action: &Action) {
        let outcome = match action.state {
            ActionState::AwaitingApproval => "held",
            ActionState::Failed => "failed",
            _ => "created",
        };
        self.metrics.action(&action.action, outcome);
        match action.state {
            ActionState::AwaitingApproval => tracing::warn!(
                action_id = %action.id, action = %action.action, host = action.target.host_id.as_deref().unwrap_or("-"),
                why = action.approval_reason.as_deref().unwrap_or(""),
                "response waits for approval: cordon actions approve {}", action.id
            ),
            ActionState::Failed => tracing::error!(
                action_id = %action.id, action = %action.action, error = action.last_error.as_deref().unwrap_or(""),
                "response cannot be sent"
            ),
            _ => tracing::info!(
                action_id = %action.id, action = %action.action, host = action.target.host_id.as_deref().unwrap_or("-"),
                requested_by = %action.requested_by, "response requested"
            ),
        }
    }

    /// One set of slots per action (each action has its own target), so a target
    /// that hangs fills only its own.
    fn slots_per_target(&self) -> BTreeMap<&'static str, Arc<Semaphore>> {
        actions::names()
            .into_iter()
            .map(|name| {
                let slots = self
                    .targets
                    .get(name)
                    .and_then(|target| target.config.max_in_flight)
                    .unwrap_or(self.config.max_in_flight);
                (name, Arc::new(Semaphore::new(slots)))
            })
            .collect()
    }

    /// Starts a try for every due action, as each target's slots allow.
    async fn deliver_due(self: &Arc<Self>, slots: &BTreeMap<&'static str, Arc<Semaphore>>, tries: &mut JoinSet<()>) {
        for (name, slots) in slots {
            let free = slots.available_permits();
            if free == 0 {
                continue;
            }
            let claimed = match self.store.claim_due(name, now_nanos(), free) {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::error!(%error, "cannot read due actions");
                    return;
                }
            };
            for claimed in claimed {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let responder = Arc::clone(self);
                tries.spawn(async move {
                    responder.try_once(claimed).await;
                    drop(permit);
                    // A slot is free: look for more work.
                    responder.wake.notify_one();
                });
            }
        }
    }

    async fn try_once(&self, claimed: Claimed) {
        let name = claimed.action.action.clone();
        let target = self.targets.get(&name);
        let dry_run = self.config.dry_run || target.is_some_and(|target| target.config.dry_run);
        let (line, after) = if dry_run {
            let url = target.map_or("(no target configured)".to_string(), |target| {
                crate::shown_url::shown_url(&target.config.url)
            });
            (
                None,
                After::DryRun(format!("dry run: would POST to {url}: {}", claimed.body)),
            )
        } else if let Some(target) = target {
            let attempt = self.deliverer.send(target, &claimed.action.id, &claimed.body).await;
            self.metrics.attempt(&name, attempt.verdict.as_str());
            self.metrics.delivery_seconds.observe(attempt.latency.as_secs_f64());
            let mut line = AuditLine::new("attempt", "responder");
            line.attempt = Some(claimed.attempt);
            line.status_code = attempt.status;
            line.latency_ms = Some(attempt.latency.as_millis() as u64);
            line.error = attempt.error.clone();
            line.detail = Some(format!("POST {}", crate::shown_url::shown_url(&target.config.url)));
            let after = match attempt.verdict {
                Outcome::Success => After::Succeeded,
                Outcome::Fail => After::Failed(format!(
                    "{} (not retried: a 4xx other than 429 means the request itself is wrong)",
                    attempt.error.clone().unwrap_or_default()
                )),
                Outcome::Retry => self.retry_or_give_up(&claimed, attempt.retry_after, attempt.error.as_deref()),
            };
            (Some(line), after)
        } else {
            (
                None,
                After::Failed(format!(
                    "no target configured for {name}: add [responder.targets.{name}] with url and secret_env, then `cordon actions retry {}`",
                    claimed.action.id
                )),
            )
        };
        match self.store.finish_attempt(&claimed, line, &after) {
            Ok(action) => self.settled(&action, &after),
            Err(error) => {
                tracing::error!(action_id = %claimed.action.id, %error, "cannot record a try; it will be resent after a restart")
            }
        }
    }

    /// The next try's time, unless the tries allowed or the horizon are used up.
    fn retry_or_give_up(&self, claimed: &Claimed, retry_after: Option<Duration>, error: Option<&str>) -> After {
        let retry = &self.config.retry;
        let last = error.unwrap_or_default();
        if retry.max_attempts.is_some_and(|max| claimed.attempt >= max) {
            return After::Failed(format!(
                "gave up after {} tries (responder.retry.max_attempts); last: {last}",
                claimed.attempt
            ));
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(uuid::Uuid::new_v4().as_u64_pair().0);
        let wait = backoff::delay(retry, claimed.attempt, retry_after, &mut rng);
        let now = now_nanos();
        let next = now.saturating_add(wait.as_nanos().min(i64::MAX as u128) as i64);
        let horizon_end = claimed
            .trying_since
            .saturating_add(retry.horizon.as_nanos().min(i64::MAX as u128) as i64);
        if next > horizon_end {
            let tried_for = Duration::from_secs(((now - claimed.trying_since).max(0) / 1_000_000_000) as u64);
            return After::Failed(format!(
                "gave up after {} tries over {} (responder.retry.horizon is {}); last: {last}",
                claimed.attempt,
                humantime_serde::re::humantime::format_duration(tried_for),
                humantime_serde::re::humantime::format_duration(retry.horizon),
            ));
        }
        After::RetryAt(next)
    }

    fn settled(&self, action: &Action, after: &After) {
        match after {
            After::Succeeded => {
                self.metrics.action(&action.action, "succeeded");
                tracing::info!(action_id = %action.id, action = %action.action, host = action.target.host_id.as_deref().unwrap_or("-"), tries = action.attempts, "response delivered");
            }
            After::RetryAt(at) => tracing::warn!(
                action_id = %action.id, action = %action.action, error = action.last_error.as_deref().unwrap_or(""),
                next = %rfc3339(*at), "response try failed; will retry"
            ),
            After::Failed(why) => {
                self.metrics.action(&action.action, "failed");
                tracing::error!(action_id = %action.id, action = %action.action, error = %why, "response failed: cordon actions retry {}", action.id);
            }
            After::DryRun(_) => {
                self.metrics.action(&action.action, "dry_run");
                tracing::info!(action_id = %action.id, action = %action.action, "dry run: response recorded, not sent");
            }
        }
    }

    pub fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, ResponderError> {
        self.store.list(filter)
    }

    pub fn get(&self, id: &str) -> Result<Option<Action>, ResponderError> {
        self.store.get(id)
    }

    /// The exact JSON body the action sends.
    pub fn body(&self, id: &str) -> Result<Option<String>, ResponderError> {
        self.store.body(id)
    }

    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, ResponderError> {
        self.store.audit(filter)
    }

    /// A named reader's position in the audit log (a sequence number).
    pub fn cursor(&self, name: &str) -> Result<Option<i64>, ResponderError> {
        self.store.cursor(name)
    }

    pub fn set_cursor(&self, name: &str, position: i64) -> Result<(), ResponderError> {
        self.store.set_cursor(name, position)
    }
}

fn feed_error(error: cordon_schemas::FeedError) -> ResponderError {
    ResponderError::Invalid(format!("cannot read or mark new alerts: {error}"))
}

/// A store from before the alert feed kept the cursor itself: carried over once, so
/// an upgrade neither answers old alerts again nor skips new ones.
fn adopt_legacy_cursor(store: &ActionStore, feed: &dyn AlertFeed) -> Result<(), ResponderError> {
    if feed.cursor(FEED_CONSUMER).map_err(feed_error)?.is_none()
        && let Some(position) = store.cursor(LEGACY_ALERT_CURSOR)?
    {
        feed.set_cursor(FEED_CONSUMER, position).map_err(feed_error)?;
        tracing::info!(
            position,
            "alert cursor carried over from the action store to the alert feed"
        );
    }
    Ok(())
}

/// Why a playbook step waits for a responder.
fn approval_note(step: &ResponseStep, alert: &Alert) -> String {
    if step.mode == ResponseMode::Approval {
        return format!("the playbook of {} asks for approval", alert.rule_id);
    }
    let delay = alert.detection_delay().unwrap_or_default();
    format!(
        "detected {} after its last event (late_after {}): the playbook of {} asks for approval for late alerts",
        humantime_serde::re::humantime::format_duration(Duration::from_secs(delay.as_secs())),
        humantime_serde::re::humantime::format_duration(step.late_after.unwrap_or_default()),
        alert.rule_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playbook_ids_are_stable_and_distinct() {
        assert_eq!(
            playbook_action_id("alr-1", "isolate_host"),
            playbook_action_id("alr-1", "isolate_host")
        );
        assert_ne!(
            playbook_action_id("alr-1", "isolate_host"),
            playbook_action_id("alr-1", "revoke_token")
        );
        assert_ne!(
            playbook_action_id("alr-1", "notify"),
            playbook_action_id("alr-2", "notify")
        );
        assert!(playbook_action_id("alr-1", "notify").starts_with("act-"));
    }
}
