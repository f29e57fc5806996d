//! The roster rules of a commit bundle, as one pure decision: given the
//! circle at the bundle's epoch, who posts it and what the server knows of
//! the devices it names, either the role each added device takes or the
//! rule it breaks. No I/O: the commit path reads, then asks this.

use super::{Caller, DeliveryError, RosterRule};
use crate::storage::{CircleRecord, DeviceRecord};
use hearth_protocol::DeviceId;
use hearth_protocol::circles::{CommitBundle, Role};
use std::collections::{HashMap, HashSet};

/// Checks a commit bundle's roster change and decides the role of each
/// added device (in the bundle's order). `devices` holds what the server
/// knows of the devices the bundle names (absent: unknown).
///
/// Anyone may add or remove devices of their own account; only a
/// facilitator changes anyone else's place. A facilitator's own devices join
/// as facilitators and take no seat; everyone else joins as a member, within
/// the circle's limit.
pub fn decide(
    circle: &CircleRecord,
    caller: Caller,
    bundle: &CommitBundle,
    devices: &HashMap<DeviceId, DeviceRecord>,
) -> Result<Vec<(DeviceId, Role)>, DeliveryError> {
    let live = |d: &DeviceId| devices.get(d).filter(|r| r.revoked_at.is_none());
    if bundle.added.iter().any(|d| live(d).is_none()) {
        return Err(RosterRule::UnknownDevice.into());
    }
    let mut seen = HashSet::new();
    if !bundle
        .added
        .iter()
        .chain(&bundle.removed)
        .all(|d| seen.insert(*d))
    {
        return Err(RosterRule::DuplicateDevice.into());
    }
    let own = |d: &DeviceId| {
        devices
            .get(d)
            .is_some_and(|r| r.account_id == caller.account)
    };
    let own_devices = bundle.added.iter().chain(&bundle.removed).all(own);
    let changes_others = !own_devices
        && (!bundle.added.is_empty() || bundle.removed.iter().any(|d| *d != caller.device));
    let facilitating = circle
        .member(caller.device)
        .is_some_and(|m| m.role == Role::Facilitator);
    if changes_others && !facilitating {
        return Err(DeliveryError::NotFacilitator("add or remove others"));
    }
    if bundle.added.iter().any(|d| circle.member(*d).is_some()) {
        return Err(RosterRule::DeviceOnRoster.into());
    }
    if bundle.removed.iter().any(|d| circle.member(*d).is_none()) {
        return Err(RosterRule::DeviceNotOnRoster.into());
    }
    if !bundle.added.is_empty() && bundle.welcome.is_none() {
        return Err(RosterRule::WelcomeMissing.into());
    }
    // One person, several devices, the same role.
    let roles: Vec<(DeviceId, Role)> = bundle
        .added
        .iter()
        .map(|d| {
            let role = if facilitating && own(d) {
                Role::Facilitator
            } else {
                Role::Member
            };
            (*d, role)
        })
        .collect();
    let is_member = |d: &DeviceId| circle.member(*d).is_some_and(|m| m.role == Role::Member);
    let current = circle
        .roster
        .iter()
        .filter(|r| r.role == Role::Member)
        .count();
    let joining = roles.iter().filter(|(_, r)| *r == Role::Member).count();
    let leaving = bundle.removed.iter().filter(|d| is_member(d)).count();
    let after = (current + joining).saturating_sub(leaving);
    if i64::try_from(after).unwrap_or(i64::MAX) > circle.max_members && !bundle.added.is_empty() {
        return Err(RosterRule::CircleFull.into());
    }
    Ok(roles)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RosterRecord;
    use hearth_protocol::{AccountId, Base64Bytes, CircleId};

    /// A practice: each person an account, each device a number.
    struct People {
        devices: HashMap<DeviceId, DeviceRecord>,
    }

    fn device(n: u8) -> DeviceId {
        format!("00000000-0000-4000-8000-0000000000{n:02x}")
            .parse()
            .unwrap()
    }

    fn account(n: u8) -> AccountId {
        format!("10000000-0000-4000-8000-0000000000{n:02x}")
            .parse()
            .unwrap()
    }

    impl People {
        /// Devices 1..=9: device n belongs to person n, except device 11,
        /// the facilitator's (person 1's) tablet, and 12, a revoked phone.
        fn new() -> Self {
            let mut devices = HashMap::new();
            for (d, a, revoked) in (1..=9)
                .map(|n| (n, n, None))
                .chain([(11, 1, None), (12, 2, Some(5))])
            {
                devices.insert(
                    device(d),
                    DeviceRecord {
                        id: device(d),
                        account_id: account(a),
                        public_key: vec![d; 32],
                        created_at: 0,
                        revoked_at: revoked,
                    },
                );
            }
            Self { devices }
        }

        fn caller(&self, d: u8) -> Caller {
            Caller {
                device: device(d),
                account: self.devices[&device(d)].account_id,
            }
        }
    }

    /// A circle facilitated by device 1, with members 2 and 3, room for
    /// `max_members`.
    fn circle(max_members: i64) -> CircleRecord {
        let entry = |d: u8, role| RosterRecord {
            device_id: device(d),
            role,
            joined_seq: 0,
            acked_seq: 0,
        };
        CircleRecord {
            id: CircleId::from_bytes(vec![7; 16]).unwrap(),
            epoch: 4,
            last_seq: 9,
            max_members,
            retention_secs: 3600,
            roster: vec![
                entry(1, Role::Facilitator),
                entry(2, Role::Member),
                entry(3, Role::Member),
            ],
        }
    }

    fn bundle(added: &[u8], removed: &[u8]) -> CommitBundle {
        CommitBundle {
            epoch: 4,
            commit: Base64Bytes::from(vec![0]),
            welcome: (!added.is_empty()).then(|| Base64Bytes::from(vec![1])),
            group_info: None,
            added: added.iter().map(|d| device(*d)).collect(),
            removed: removed.iter().map(|d| device(*d)).collect(),
            join_request_id: None,
        }
    }

    #[test]
    fn the_facilitator_adds_sam_as_a_member_and_their_own_tablet_as_a_facilitator() {
        let people = People::new();
        let roles = decide(
            &circle(12),
            people.caller(1),
            &bundle(&[4, 11], &[]),
            &people.devices,
        );
        assert_eq!(
            roles.unwrap(),
            vec![(device(4), Role::Member), (device(11), Role::Facilitator)]
        );
    }

    #[test]
    fn a_member_may_not_add_or_remove_anyone_else() {
        let people = People::new();
        for (added, removed) in [(&[4][..], &[][..]), (&[], &[3])] {
            let refused = decide(
                &circle(12),
                people.caller(2),
                &bundle(added, removed),
                &people.devices,
            );
            assert!(
                matches!(refused, Err(DeliveryError::NotFacilitator(_))),
                "{refused:?}"
            );
        }
        // Leaving is always allowed: removing only yourself.
        let leaving = decide(
            &circle(12),
            people.caller(2),
            &bundle(&[], &[2]),
            &people.devices,
        );
        assert_eq!(leaving.unwrap(), vec![]);
    }

    #[test]
    fn the_circle_full_rule_counts_members_not_the_facilitators_devices() {
        let people = People::new();
        // Two members, room for two: the facilitator's tablet still fits.
        let tablet = decide(
            &circle(2),
            people.caller(1),
            &bundle(&[11], &[]),
            &people.devices,
        );
        assert_eq!(tablet.unwrap(), vec![(device(11), Role::Facilitator)]);
        let full = decide(
            &circle(2),
            people.caller(1),
            &bundle(&[4], &[]),
            &people.devices,
        );
        assert!(matches!(
            full,
            Err(DeliveryError::Roster(RosterRule::CircleFull))
        ));
        // Someone leaving makes room in the same commit.
        let swap = decide(
            &circle(2),
            people.caller(1),
            &bundle(&[4], &[3]),
            &people.devices,
        );
        assert_eq!(swap.unwrap(), vec![(device(4), Role::Member)]);
    }

    #[test]
    fn each_broken_rule_is_named() {
        let people = People::new();
        let rule = |added: &[u8], removed: &[u8], welcome: bool| {
            let mut b = bundle(added, removed);
            if !welcome {
                b.welcome = None;
            }
            match decide(&circle(12), people.caller(1), &b, &people.devices) {
                Err(DeliveryError::Roster(rule)) => rule,
                other => panic!("expected a roster rule, got {other:?}"),
            }
        };
        assert_eq!(rule(&[4], &[4], true), RosterRule::DuplicateDevice);
        assert_eq!(rule(&[2], &[], true), RosterRule::DeviceOnRoster);
        assert_eq!(rule(&[], &[5], true), RosterRule::DeviceNotOnRoster);
        assert_eq!(rule(&[12], &[], true), RosterRule::UnknownDevice);
        assert_eq!(rule(&[0x40], &[], true), RosterRule::UnknownDevice);
        assert_eq!(rule(&[4], &[], false), RosterRule::WelcomeMissing);
    }
}
