//! Why a record was rejected or changed on the way in.

/// A record that cannot be stored. Each reason has a stable metrics label.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RejectReason {
    #[error(
        "missing host.id: set it as a resource attribute (for an agent, OTEL_RESOURCE_ATTRIBUTES=host.id=<host>), or send with a credential whose hosts name exactly one host"
    )]
    MissingHostId,
    #[error("missing event.name (set the LogRecord's event_name or an event.name attribute)")]
    MissingEventName,
    #[error("attribute {name}: expected {expected}, got {got} {preview}")]
    InvalidAttribute {
        name: &'static str,
        expected: &'static str,
        got: &'static str,
        preview: String,
    },
    #[error("time {0:?} is neither RFC 3339 nor integer nanoseconds")]
    InvalidTime(String),
    #[error("not a JSON object")]
    NotAnObject,
    #[error("{0}")]
    Malformed(String),
    #[error("time {0} ns is beyond the range of timestamps (after 2262-04-11): send nanoseconds since the Unix epoch")]
    TimeOutOfRange(u64),
    #[error(
        "event time is {days:.1} days before its arrival, older than limits.max_event_age ({limit_days:.1} days): check the producer's clock, or raise the limit to take back-filled events"
    )]
    TimeTooOld { days: f64, limit_days: f64 },
    #[error(
        "event time is {seconds} s ahead of its arrival, more than limits.max_event_ahead ({limit_seconds} s): check the producer's clock"
    )]
    TimeTooFarAhead { seconds: i64, limit_seconds: u64 },
    #[error(
        "the record has {count} attributes, more than the {limit} accepted: send fewer (raw content belongs nowhere; details belong in the fields the contract names)"
    )]
    TooManyAttributes { count: usize, limit: usize },
    #[error(
        "attribute {name} is {bytes} bytes, more than the {limit} accepted: send a hash or a summary, never raw content"
    )]
    ValueTooLarge { name: String, bytes: usize, limit: usize },
    #[error(
        "the request expands past {attributes} attributes or {bytes} bytes of values (a resource's attributes count once for each of its records): this record and the rest of the request were not stored; send fewer records per export"
    )]
    RequestTooLarge { attributes: usize, bytes: usize },
    #[error(
        "the request's events fall in more than {limit} distinct hours (each is a file of its own): this record was not stored; send events in time order, fewer hours per export"
    )]
    TooManyHours { limit: usize },
    #[error(
        "host.id {host} is not among the hosts the credential {producer} may send events for: send each host's events with its own credential, or widen the credential's hosts"
    )]
    HostNotPermitted { host: String, producer: String },
    #[error("event.name {0} is Cordon's own (the outcomes of its responses); producers may not send it")]
    ReservedKind(&'static str),
}

impl RejectReason {
    /// The `reason` label of the rejected-events counter.
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::MissingHostId => "missing_host_id",
            RejectReason::MissingEventName => "missing_event_name",
            RejectReason::InvalidAttribute { .. } => "invalid_attribute",
            RejectReason::InvalidTime(_) => "invalid_time",
            RejectReason::NotAnObject => "not_an_object",
            RejectReason::Malformed(_) => "malformed",
            RejectReason::ReservedKind(_) => "reserved_kind",
            RejectReason::HostNotPermitted { .. } => "host_not_permitted",
            RejectReason::TimeOutOfRange(_) => "time_out_of_range",
            RejectReason::TimeTooOld { .. } => "time_too_old",
            RejectReason::TimeTooFarAhead { .. } => "time_too_far_ahead",
            RejectReason::TooManyAttributes { .. } => "too_many_attributes",
            RejectReason::ValueTooLarge { .. } => "value_too_large",
            RejectReason::RequestTooLarge { .. } => "request_too_large",
            RejectReason::TooManyHours { .. } => "too_many_hours",
        }
    }
}

/// A record that was stored, but not exactly as sent. Counted, and reported back to
/// the producer as an OTLP partial-success warning.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// `event.name` is not a contract kind: stored as kind `other`.
    UnknownEventName(String),
    /// Neither `time_unix_nano` nor `observed_time_unix_nano`: receive time used.
    TimeEstimated,
    /// Attributes no allow-list names were not stored (`content.unlisted = "drop"`):
    /// the first one's name, and how many more (one notice per record).
    ContentDropped(String),
    /// Attributes no allow-list names were stored as keyed hashes and their lengths.
    ContentHashed(String),
    /// The producer gave no `event.id`: one was assigned, so redelivery is not detected.
    EventIdAssigned,
    /// The event time is this many seconds ahead of its arrival, more than the allowed
    /// clock skew: stored with `cordon.clock_ahead_seconds`, and it moves no clock.
    ClockAhead(i64),
}

impl Notice {
    /// The `kind` label of the notices counter.
    pub fn label(&self) -> &'static str {
        match self {
            Notice::UnknownEventName(_) => "unknown_event_name",
            Notice::TimeEstimated => "time_estimated",
            Notice::ContentDropped(_) => "content_attribute_dropped",
            Notice::ContentHashed(_) => "content_attribute_hashed",
            Notice::EventIdAssigned => "event_id_assigned",
            Notice::ClockAhead(_) => "clock_ahead",
        }
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::UnknownEventName(name) => {
                write!(f, "unknown event.name {name:?} stored as kind \"other\"")
            }
            Notice::TimeEstimated => f.write_str("no event time: receive time used"),
            Notice::ContentDropped(name) => {
                write!(
                    f,
                    "attribute {name} is not on the allow-list (content.allow) and was not stored"
                )
            }
            Notice::ContentHashed(name) => {
                write!(
                    f,
                    "attribute {name} is not on the allow-list (content.allow): stored as a keyed hash and its length"
                )
            }
            Notice::EventIdAssigned => f.write_str("no event.id: one was assigned"),
            Notice::ClockAhead(seconds) => write!(
                f,
                "event time {seconds} s ahead of arrival: check the host's clock (stored, flagged cordon.clock_ahead_seconds)"
            ),
        }
    }
}
