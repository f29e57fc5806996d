//! Everything new for a device across its circles, in one call: the cursors
//! it sends are read after and acknowledged, the Welcomes it processed are
//! deleted, and the answer carries what upkeep needs (the KeyPackage pool,
//! the account's devices, each roster's size).

use super::{Caller, Delivery, DeliveryError, signed};
use crate::storage::{Acknowledgement, CircleRecord, WelcomeRecord};
use hearth_protocol::circles::LogPage;
use hearth_protocol::key_packages::KeyPackageCount;
use hearth_protocol::sync::{
    CircleSync, MAX_CURSORS, MAX_WELCOMES_DONE, SyncRequest, SyncResponse,
};
use std::collections::{HashMap, HashSet};

impl Delivery {
    /// Answers a sync: for each named circle the caller is on, the entries
    /// after its cursor (a page, read only when the circle has grown past
    /// it); the named circles it is not on; its Welcomes, pool and account
    /// devices. A cursor above what the device acknowledged is acknowledged
    /// (folded with every other acknowledgement into one write), so a sync
    /// with nothing new and nothing to acknowledge writes nothing and reads
    /// four times, whatever the number of circles.
    pub async fn sync(
        &self,
        caller: Caller,
        request: SyncRequest,
    ) -> Result<SyncResponse, DeliveryError> {
        if request.cursors.len() > MAX_CURSORS {
            return Err(DeliveryError::Invalid(format!(
                "at most {MAX_CURSORS} cursors per sync"
            )));
        }
        if request.welcomes_done.len() > MAX_WELCOMES_DONE {
            return Err(DeliveryError::Invalid(format!(
                "at most {MAX_WELCOMES_DONE} processed Welcomes per sync"
            )));
        }
        if request.limit.is_some_and(|l| i32::try_from(l).is_err()) {
            return Err(DeliveryError::Invalid("the limit is out of range".into()));
        }
        let mut named = HashSet::new();
        for cursor in &request.cursors {
            if i64::try_from(cursor.after).is_err() {
                return Err(DeliveryError::Invalid("a cursor is out of range".into()));
            }
            if !named.insert(cursor.circle_id.clone()) {
                return Err(DeliveryError::Invalid(
                    "a circle is named more than once".into(),
                ));
            }
        }
        for welcome in &request.welcomes_done {
            // A Welcome that is gone already was deleted by an earlier try.
            self.storage.delete_welcome(caller.device, *welcome).await?;
        }
        let on: HashMap<_, _> = self
            .storage
            .device_circles(caller.device)
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut acks = Vec::new();
        let mut circles = Vec::new();
        let mut removed = Vec::new();
        for cursor in request.cursors {
            let Some(record) = on.get(&cursor.circle_id) else {
                removed.push(cursor.circle_id);
                continue;
            };
            let Some(me) = record.member(caller.device) else {
                removed.push(cursor.circle_id);
                continue;
            };
            let after = signed(cursor.after);
            // What the device processed, as far as the log goes, counts as
            // its acknowledgement when it moves.
            let processed = after.min(record.last_seq);
            if processed > me.acked_seq {
                acks.push(Acknowledgement {
                    circle: cursor.circle_id.clone(),
                    device: caller.device,
                    seq: processed,
                });
            }
            match self
                .page(caller, record, cursor.after, request.limit)
                .await?
            {
                Some(page) => circles.push(page),
                // Removed between the two reads.
                None => removed.push(cursor.circle_id),
            }
        }
        // Acknowledgements join the acknowledger's next batch together.
        let acknowledged = futures_util::future::join_all(
            acks.into_iter().map(|a| self.acknowledger.acknowledge(a)),
        )
        .await;
        for outcome in acknowledged {
            // False: off the roster since; the read above said so already,
            // or the next sync will.
            outcome?;
        }
        let welcomes = self.storage.welcomes(caller.device).await?;
        // A circle a Welcome admits to comes with its log after the commit
        // that added the device, so joining costs no second request.
        for welcome in &welcomes {
            let circle = &welcome.circle_id;
            if !named.insert(circle.clone()) {
                continue;
            }
            let Some(record) = on.get(circle) else {
                continue;
            };
            let after = u64::try_from(welcome.seq).unwrap_or_default();
            circles.extend(self.page(caller, record, after, request.limit).await?);
        }
        let (available, last_resort) = self
            .storage
            .key_package_count(caller.device, crate::now())
            .await?;
        let devices = self.storage.account_devices(caller.account).await?;
        Ok(SyncResponse {
            circles,
            removed,
            welcomes: welcomes
                .into_iter()
                .map(WelcomeRecord::into_pending)
                .collect(),
            key_packages: KeyPackageCount {
                available,
                last_resort,
            },
            devices: devices.into_iter().map(|d| d.id).collect(),
            generation: self.generation.clone(),
        })
    }

    /// The circle's page after `after` for the caller: read only when the
    /// circle has grown past it; `None` when the caller left its roster
    /// between the reads.
    async fn page(
        &self,
        caller: Caller,
        record: &CircleRecord,
        after: u64,
        limit: Option<u32>,
    ) -> Result<Option<CircleSync>, DeliveryError> {
        let page = if record.last_seq > signed(after) {
            match self.read(caller.device, &record.id, after, limit).await {
                Ok(page) => page,
                Err(DeliveryError::NotFound) => return Ok(None),
                Err(err) => return Err(err),
            }
        } else {
            LogPage {
                entries: Vec::new(),
                next_after: after,
                more: false,
                generation: String::new(),
            }
        };
        Ok(Some(CircleSync {
            circle_id: record.id.clone(),
            entries: page.entries,
            next_after: page.next_after,
            more: page.more,
            roster_size: u32::try_from(record.roster.len()).unwrap_or(u32::MAX),
        }))
    }
}
