//! Names and titles. Display names and circle titles travel as encrypted
//! content (`Profile`, `CircleProfile`); the server never sees them.
//! Newcomers cannot read what came before them, so every member shares its
//! profile again (and the circle's titler its title) whenever someone joins.

use crate::sync::FollowUps;
use crate::{Client, Result};
use hearth_protocol::content::Content;
use hearth_protocol::{CircleId, DeviceId};
use std::collections::HashMap;

const DISPLAY_NAME: &str = "display_name";

/// The setting that marks this device as the one that titles a circle.
fn titler(circle: &CircleId) -> String {
    format!("title_owner:{circle}")
}

impl Client {
    /// Tells the circle who this is (and, from the device that titled it,
    /// the circle's title).
    pub(crate) async fn share_profile(&self, circle: &CircleId) -> Result<FollowUps> {
        let (key, circle_id) = (titler(circle), circle.clone());
        let (name, title) = self
            .with(move |s| {
                let name = s.store.setting(DISPLAY_NAME)?;
                let title = match s.store.setting(&key)? {
                    Some(_) => s.store.title(&circle_id)?,
                    None => None,
                };
                Ok((name, title))
            })
            .await?;
        let mut follow_ups = FollowUps::default();
        if let Some(title) = title {
            let (_, more) = self
                .send_now(circle, Content::CircleProfile { title })
                .await?;
            follow_ups.extend(more);
        }
        if let Some(display_name) = name {
            let (_, more) = self
                .send_now(circle, Content::Profile { display_name })
                .await?;
            follow_ups.extend(more);
        }
        Ok(follow_ups)
    }

    /// Sets the name this device shows in its circles (sent encrypted; the
    /// server never sees it). Shared with every circle now and on joining.
    pub async fn set_display_name(&self, name: &str) -> Result<()> {
        let value = name.to_owned();
        self.with(move |s| s.store.set_setting(DISPLAY_NAME, &value))
            .await?;
        let mut follow_ups = FollowUps::default();
        for circle in self.circles().await? {
            follow_ups.extend(self.share_profile(&circle).await?);
        }
        self.drive(follow_ups).await
    }

    /// Sets a circle's title (its creator), sent encrypted to the circle.
    pub async fn set_title(&self, circle: &CircleId, title: &str) -> Result<()> {
        let (circle_id, value) = (circle.clone(), title.to_owned());
        self.with(move |s| {
            s.store.set_title(&circle_id, &value)?;
            s.store.set_setting(&titler(&circle_id), "1")
        })
        .await?;
        let follow_ups = self.share_profile(circle).await?;
        self.drive(follow_ups).await
    }

    /// The circle's title, as its facilitator named it.
    pub async fn title(&self, circle: &CircleId) -> Result<Option<String>> {
        let circle = circle.clone();
        self.with(move |s| s.store.title(&circle)).await
    }

    /// The names members go by in the circle.
    pub async fn names(&self, circle: &CircleId) -> Result<HashMap<DeviceId, String>> {
        let circle = circle.clone();
        let (me, _) = self.signing_key().await?;
        self.with(move |s| {
            let mut names: HashMap<DeviceId, String> =
                s.store.names(&circle)?.into_iter().collect();
            if let Some(mine) = s.store.setting(DISPLAY_NAME)? {
                names.insert(me, mine);
            }
            Ok(names)
        })
        .await
    }
}
