//! The events a rule with `evaluate_every` has yet to evaluate. Such a rule is not
//! evaluated on every burst: the events its clocks judged on time are held, reduced to
//! the columns its input.sql reads, and evaluated together once the interval has passed
//! in arrival time (or wall time, while nothing arrives). A keyed rule's events are
//! spread over slots by key, each slot evaluated on its own beat. Evaluating a key's
//! events together is evaluating them as one bigger batch, judged event by event as
//! before, and other keys' events are never needed by its partitions, so by the
//! batching invariant (any split, any merge across keys) the alerts are the same; they
//! come up to the interval later.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayData, ArrayRef, BooleanArray, Int64Array, StringArray, UInt32Array, make_array, new_null_array,
};
use arrow::buffer::Buffer;
use arrow::compute::{concat_batches, take_record_batch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use cordon_schemas::fields::col;

use crate::key_ids::KeyIds;

/// Held events past which a rule is evaluated at once, whatever its interval: memory
/// and the one evaluation's length follow the interval only up to here.
pub(crate) const MAX_HELD_EVENTS: usize = 1 << 20;
/// The same, for the bytes of the held columns.
pub(crate) const MAX_HELD_BYTES: usize = 64 << 20;

/// The columns a rule's held events keep: what its input.sql reads and the columns the
/// engine names failed events by. The others come back null, or empty where they
/// cannot be null (an event's attributes map is most of its bytes).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeldColumns {
    /// Indexes into the event schema, ascending; None: every column.
    indexes: Option<Vec<usize>>,
}

impl HeldColumns {
    /// `read`: the columns input.sql's scan of the events reads (None: all of them).
    pub fn new(schema: &Schema, read: Option<&[usize]>) -> HeldColumns {
        let Some(read) = read else {
            return HeldColumns { indexes: None };
        };
        let named = [col::EVENT_ID, col::TIME, col::RECEIVED_TIME];
        let indexes: Vec<usize> = schema
            .fields()
            .iter()
            .enumerate()
            .filter(|(index, field)| {
                read.contains(index)
                    || named.contains(&field.name().as_str())
                    || (!field.is_nullable() && filler(field.data_type(), 0).is_none())
            })
            .map(|(index, _)| index)
            .collect();
        HeldColumns { indexes: Some(indexes) }
    }
}

/// Slots a keyed rule's held events are spread over by key: each slot is evaluated on
/// its own beat, a slot's share of the interval after the one before, so the work of
/// an interval comes a slice per burst rather than all in one (which held every alert
/// of that burst up behind it: p99 878 ms at 200,000 events/s with one slot).
pub(crate) const KEYED_SLOTS: usize = 16;

/// One rule's held events, by slot.
#[derive(Debug)]
pub(crate) struct Held {
    slots: Vec<Slot>,
    /// MAX_HELD_EVENTS and MAX_HELD_BYTES (smaller in tests).
    max_events: usize,
    max_bytes: usize,
}

/// The held events of the keys hashed to one slot.
#[derive(Debug, Default)]
struct Slot {
    batches: Vec<RecordBatch>,
    keys: HashSet<String>,
    events: usize,
    bytes: usize,
    /// When it is to be evaluated (arrival or wall time, ns): set by its first event.
    due_at: Option<i64>,
}

impl Held {
    /// `keyed`: the rule's clocks are per key (its events can be spread by key).
    pub fn new(keyed: bool) -> Held {
        let slots = if keyed { KEYED_SLOTS } else { 1 };
        Held {
            slots: (0..slots).map(|_| Slot::default()).collect(),
            max_events: MAX_HELD_EVENTS,
            max_bytes: MAX_HELD_BYTES,
        }
    }

    /// Holds a burst's events on time for the rule (`input`, with each row's clock key
    /// in `row_keys`) and the keys the burst touched; `every`: the rule's interval (ns).
    pub fn push(&mut self, burst: &Burst<'_>, now: i64, every: i64, columns: &HeldColumns) -> Result<(), ArrowError> {
        let count = self.slots.len();
        let slot_of = |key: &str| -> usize {
            if count == 1 {
                return 0;
            }
            let mut hasher = std::hash::DefaultHasher::new();
            key.hash(&mut hasher);
            (hasher.finish() % count as u64) as usize
        };
        for key in burst.keys.iter() {
            let index = slot_of(key);
            let slot = &mut self.slots[index];
            if !slot.keys.contains(key) {
                slot.keys.insert(key.clone());
            }
            slot.due_at.get_or_insert_with(|| beat(now, every, index, count));
        }
        if burst.input.num_rows() == 0 {
            return Ok(());
        }
        let kept = match &columns.indexes {
            Some(indexes) => burst.input.project(indexes)?,
            None => burst.input.clone(),
        };
        let slot_of_key: Vec<usize> = burst.row_keys.keys.iter().map(|key| slot_of(key)).collect();
        let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); count];
        for (row, &key) in burst.row_keys.of_row.iter().enumerate() {
            rows_of[slot_of_key[key as usize]].push(row as u32);
        }
        for (index, rows) in rows_of.into_iter().enumerate().filter(|(_, rows)| !rows.is_empty()) {
            let part = if rows.len() == kept.num_rows() {
                kept.clone()
            } else {
                take_record_batch(&kept, &UInt32Array::from(rows))?
            };
            let slot = &mut self.slots[index];
            slot.due_at.get_or_insert_with(|| beat(now, every, index, count));
            slot.events += part.num_rows();
            slot.bytes += part.get_array_memory_size();
            slot.batches.push(part);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|slot| slot.due_at.is_none())
    }

    /// Events held (on time for the rule, not yet evaluated).
    pub fn events(&self) -> usize {
        self.slots.iter().map(|slot| slot.events).sum()
    }

    pub fn bytes(&self) -> usize {
        self.slots.iter().map(|slot| slot.bytes).sum()
    }

    /// Whether any of them is to be evaluated at `now` (arrival or wall time, ns).
    pub fn due(&self, now: i64) -> bool {
        self.over_bounds() || self.slots.iter().any(|slot| slot.due_at.is_some_and(|at| at <= now))
    }

    fn over_bounds(&self) -> bool {
        self.events() >= self.max_events || self.bytes() >= self.max_bytes
    }

    /// Takes the held events due at `now` (None: all) as one batch in the full
    /// `schema` (columns not held are null or empty: input.sql does not read them),
    /// and the keys they touched. Over the bounds, the fullest slots are taken too,
    /// until what stays is under them: many keys at once (a fleet reconnecting within
    /// one beat) are evaluated a slot's share at a time, not all in one evaluation of
    /// up to the bound (900,000 events and 5 s in the idle-keys bench).
    pub fn take(
        &mut self,
        now: Option<i64>,
        schema: &SchemaRef,
        columns: &HeldColumns,
    ) -> Result<(RecordBatch, HashSet<String>), ArrowError> {
        let mut taken: Vec<bool> = self
            .slots
            .iter()
            .map(|slot| match now {
                None => true,
                Some(now) => slot.due_at.is_some_and(|at| at <= now),
            })
            .collect();
        let (mut events, mut bytes) = self
            .slots
            .iter()
            .zip(&taken)
            .filter(|(_, taken)| !**taken)
            .fold((0, 0), |(events, bytes), (slot, _)| {
                (events + slot.events, bytes + slot.bytes)
            });
        while events >= self.max_events || bytes >= self.max_bytes {
            let fullest = self
                .slots
                .iter()
                .enumerate()
                .filter(|(index, slot)| !taken[*index] && slot.events > 0)
                .max_by_key(|(_, slot)| slot.bytes);
            let Some((index, slot)) = fullest else { break };
            taken[index] = true;
            events -= slot.events;
            bytes -= slot.bytes;
        }
        let mut batches = Vec::new();
        let mut keys = HashSet::new();
        for (slot, _) in self.slots.iter_mut().zip(&taken).filter(|(_, taken)| **taken) {
            let slot = std::mem::take(slot);
            batches.extend(slot.batches);
            keys.extend(slot.keys);
        }
        Ok((widen(&batches, schema, columns)?, keys))
    }

    /// Keeps the held events in `to`'s columns rather than `from`'s: the rule was
    /// reloaded and its input.sql reads other columns.
    pub fn reproject(&mut self, schema: &SchemaRef, from: &HeldColumns, to: &HeldColumns) -> Result<(), ArrowError> {
        if from == to {
            return Ok(());
        }
        for slot in self.slots.iter_mut().filter(|slot| !slot.batches.is_empty()) {
            let whole = widen(&slot.batches, schema, from)?;
            let kept = match &to.indexes {
                Some(indexes) => whole.project(indexes)?,
                None => whole,
            };
            slot.bytes = kept.get_array_memory_size();
            slot.batches = vec![kept];
        }
        Ok(())
    }
}

/// A burst's events as a rule's clock group judged them.
pub(crate) struct Burst<'a> {
    /// The events on time for the group.
    pub input: &'a RecordBatch,
    /// The clock key of each of them.
    pub row_keys: &'a KeyIds,
    /// Every key the burst touched (on time or not).
    pub keys: &'a Arc<HashSet<String>>,
    /// The earliest arrival time among its events (ns).
    pub earliest_arrival: i64,
}

/// When slot `slot` of `count` is next evaluated after `now`: its beats are `every`
/// apart, offset by its share of `every`, so the slots take turns.
fn beat(now: i64, every: i64, slot: usize, count: usize) -> i64 {
    let every = every.max(1);
    let offset = (every / count as i64).saturating_mul(slot as i64);
    let base = now.saturating_sub(offset);
    base.div_euclid(every)
        .saturating_add(1)
        .saturating_mul(every)
        .saturating_add(offset)
}

/// `batches`, held in `columns`, as one batch of the full `schema`.
fn widen(batches: &[RecordBatch], schema: &SchemaRef, columns: &HeldColumns) -> Result<RecordBatch, ArrowError> {
    let Some(first) = batches.first() else {
        return Ok(RecordBatch::new_empty(schema.clone()));
    };
    let joined = concat_batches(&first.schema(), batches)?;
    let Some(indexes) = &columns.indexes else {
        return Ok(joined);
    };
    let rows = joined.num_rows();
    let mut held_columns = indexes.iter().zip(joined.columns().iter());
    let mut next = held_columns.next();
    let mut full: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for (index, field) in schema.fields().iter().enumerate() {
        match next {
            Some((&held_index, column)) if held_index == index => {
                full.push(column.clone());
                next = held_columns.next();
            }
            _ if field.is_nullable() => full.push(new_null_array(field.data_type(), rows)),
            _ => full.push(
                filler(field.data_type(), rows)
                    .ok_or_else(|| ArrowError::SchemaError(format!("no empty value for column {}", field.name())))?,
            ),
        }
    }
    RecordBatch::try_new(schema.clone(), full)
}

/// `rows` empty or zero values of a type, for a column that cannot be null and that no
/// stage reads; None for a type without one here (such a column is held).
fn filler(data_type: &DataType, rows: usize) -> Option<ArrayRef> {
    let data = match data_type {
        DataType::Boolean => BooleanArray::from(vec![false; rows]).into_data(),
        DataType::Utf8 => StringArray::from_iter_values(std::iter::repeat_n("", rows)).into_data(),
        DataType::Int64 | DataType::Timestamp(..) => Int64Array::from(vec![0; rows])
            .into_data()
            .into_builder()
            .data_type(data_type.clone())
            .build()
            .ok()?,
        DataType::Map(entries, _) => ArrayData::builder(data_type.clone())
            .len(rows)
            .add_buffer(Buffer::from_vec(vec![0i32; rows + 1]))
            .add_child_data(ArrayData::new_empty(entries.data_type()))
            .build()
            .ok()?,
        _ => return None,
    };
    Some(make_array(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, TimestampNanosecondArray};
    use cordon_schemas::event_schema;
    use std::sync::Arc;

    /// Events of the stored schema: ids, times, hosts, one user, the rest empty.
    fn burst(events: &[(&str, &str)]) -> RecordBatch {
        let schema = event_schema();
        let rows = events.len();
        let ids: Vec<&str> = events.iter().map(|(id, _)| *id).collect();
        let hosts: Vec<&str> = events.iter().map(|(_, host)| *host).collect();
        let columns = schema
            .fields()
            .iter()
            .map(|field| match field.name().as_str() {
                col::EVENT_ID => Arc::new(StringArray::from(ids.clone())) as ArrayRef,
                col::TIME | col::RECEIVED_TIME => Arc::new(
                    TimestampNanosecondArray::from_iter_values((0..rows as i64).map(|at| 1_000 + at))
                        .with_timezone("UTC"),
                ),
                col::HOST_ID => Arc::new(StringArray::from(hosts.clone())),
                "user_name" => Arc::new(StringArray::from(vec!["ann"; rows])),
                _ if field.is_nullable() => new_null_array(field.data_type(), rows),
                _ => filler(field.data_type(), rows).unwrap(),
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn push(held: &mut Held, events: &[(&str, &str)], now: i64, every: i64, columns: &HeldColumns) {
        let input = burst(events);
        let row_keys = KeyIds::of(&input, &[col::HOST_ID.to_string()]).unwrap();
        let keys: HashSet<String> = row_keys.keys.iter().cloned().collect();
        let keys = Arc::new(keys);
        let burst = Burst {
            input: &input,
            row_keys: &row_keys,
            keys: &keys,
            earliest_arrival: now,
        };
        held.push(&burst, now, every, columns).unwrap();
    }

    fn ids_and_hosts(batch: &RecordBatch) -> Vec<(String, String)> {
        let schema = batch.schema();
        let ids = batch.column(schema.index_of(col::EVENT_ID).unwrap()).as_string::<i32>();
        let hosts = batch.column(schema.index_of(col::HOST_ID).unwrap()).as_string::<i32>();
        ids.iter()
            .zip(hosts.iter())
            .map(|(id, host)| (id.unwrap().to_string(), host.unwrap().to_string()))
            .collect()
    }

    #[test]
    fn held_events_come_back_whole_in_the_columns_read() {
        let schema = event_schema();
        let user = schema.index_of("user_name").unwrap();
        let columns = HeldColumns::new(&schema, Some(&[user]));
        let mut held = Held::new(false);
        push(&mut held, &[("a", "wks-1"), ("b", "wks-1")], 10, 100, &columns);
        push(&mut held, &[("c", "wks-2")], 20, 100, &columns);
        assert_eq!(held.events(), 3);
        assert!(!held.due(99), "before its beat");
        assert!(held.due(100), "at its beat, an interval at most after the first held");
        let (batch, keys) = held.take(Some(100), &schema, &columns).unwrap();
        assert!(held.is_empty());
        assert_eq!(keys.len(), 2);
        assert_eq!(batch.schema(), schema);
        let ids = batch.column(schema.index_of(col::EVENT_ID).unwrap()).as_string::<i32>();
        assert_eq!(ids.iter().flatten().collect::<Vec<_>>(), ["a", "b", "c"]);
        let users = batch.column(user).as_string::<i32>();
        assert_eq!(users.iter().flatten().count(), 3, "a column input.sql reads is held");
        let host = batch.column(schema.index_of(col::HOST_ID).unwrap()).as_string::<i32>();
        assert_eq!(
            host.iter().flatten().collect::<Vec<_>>(),
            ["", "", ""],
            "nor one it does not read"
        );
    }

    #[test]
    fn a_rule_reading_every_column_holds_them_all() {
        let schema = event_schema();
        let columns = HeldColumns::new(&schema, None);
        let mut held = Held::new(false);
        push(&mut held, &[("a", "wks-1")], 0, 100, &columns);
        let (batch, _) = held.take(None, &schema, &columns).unwrap();
        assert_eq!(batch, burst(&[("a", "wks-1")]));
    }

    /// A keyed rule's slots take turns through the interval, each with all of its keys'
    /// events and keys, and every event comes back once.
    #[test]
    fn keyed_events_come_back_a_slot_at_a_time_each_key_whole() {
        let schema = event_schema();
        let columns = HeldColumns::new(&schema, None);
        let mut held = Held::new(true);
        let every = 1_600;
        let hosts: Vec<String> = (0..200).map(|host| format!("wks-{host}")).collect();
        let ids: Vec<String> = (0..400).map(|id| format!("e{id}")).collect();
        let events: Vec<(&str, &str)> = ids
            .iter()
            .enumerate()
            .map(|(at, id)| (id.as_str(), hosts[at % hosts.len()].as_str()))
            .collect();
        push(&mut held, &events[..200], 0, every, &columns);
        push(&mut held, &events[200..], 50, every, &columns);
        let mut seen: Vec<(String, String)> = Vec::new();
        let mut takes = 0;
        for now in (0..=every).step_by(10) {
            if !held.due(now) {
                continue;
            }
            let (batch, keys) = held.take(Some(now), &schema, &columns).unwrap();
            takes += 1;
            let taken = ids_and_hosts(&batch);
            assert!(
                taken.len() < events.len() / 4,
                "a slot's share, not all: {} at {now}",
                taken.len()
            );
            for (_, host) in &taken {
                assert!(keys.contains(host), "a row's key comes with it");
                let held_back = seen.iter().any(|(_, earlier)| earlier == host);
                assert!(!held_back, "{host}'s events came in two takes");
            }
            seen.extend(taken);
        }
        assert!(held.is_empty(), "every slot had its beat within the interval");
        assert!(takes >= KEYED_SLOTS - 1, "{takes} takes: the slots take turns");
        seen.sort();
        let mut expected: Vec<(String, String)> = events
            .iter()
            .map(|(id, host)| (id.to_string(), host.to_string()))
            .collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    /// Past the bound (many keys within one beat, arrival time standing still), the
    /// fullest slots are evaluated until what stays is under it: a share, not all.
    #[test]
    fn over_the_bound_the_fullest_slots_leave_not_all() {
        let schema = event_schema();
        let columns = HeldColumns::new(&schema, None);
        let mut held = Held::new(true);
        held.max_events = 300;
        let hosts: Vec<String> = (0..400).map(|host| format!("wks-{host}")).collect();
        let ids: Vec<String> = (0..400).map(|id| format!("e{id}")).collect();
        let events: Vec<(&str, &str)> = ids
            .iter()
            .zip(&hosts)
            .map(|(id, host)| (id.as_str(), host.as_str()))
            .collect();
        push(&mut held, &events, 0, 1_000, &columns);
        assert!(held.due(0), "over the bound before any beat");
        let (batch, keys) = held.take(Some(0), &schema, &columns).unwrap();
        let staying = held.events();
        assert!(staying < 300, "{staying} held after the take: under the bound");
        assert!(
            batch.num_rows() < events.len() / 2,
            "{} of {} taken: a few slots' share, not all",
            batch.num_rows(),
            events.len()
        );
        assert_eq!(batch.num_rows() + staying, events.len());
        for (_, host) in ids_and_hosts(&batch) {
            assert!(keys.contains(&host));
        }
        assert!(!held.due(0), "under the bound and no beat yet");
    }
}
