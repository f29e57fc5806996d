//! Names and titles, as they arrived encrypted: tables `names`, `titles`.

use super::*;

impl Store {
    pub fn set_name(&self, circle: &CircleId, device: DeviceId, name: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO names (circle_id, device_id, display_name) VALUES (?1, ?2, ?3)",
            (
                circle.as_bytes(),
                device.to_string(),
                self.seal(
                    &[b"name/", circle.as_bytes(), device.as_bytes()],
                    name.as_bytes(),
                )?,
            ),
        )?;
        Ok(())
    }

    pub fn names(&self, circle: &CircleId) -> Result<Vec<(DeviceId, String)>> {
        let mut statement = self
            .conn
            .prepare("SELECT device_id, display_name FROM names WHERE circle_id = ?1")?;
        let rows = statement.query_map([circle.as_bytes()], |r| {
            Ok((r.get::<_, String>(0)?, bytes(r, 1)?))
        })?;
        rows.map(|row| {
            let (device, name) = row?;
            let device = device_id(&device)?;
            let place: [&[u8]; 3] = [b"name/", circle.as_bytes(), device.as_bytes()];
            Ok((device, text(self.unseal(&place, name)?)?))
        })
        .collect()
    }

    pub fn set_title(&self, circle: &CircleId, title: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO titles (circle_id, title) VALUES (?1, ?2)",
            (
                circle.as_bytes(),
                self.seal(&[b"title/", circle.as_bytes()], title.as_bytes())?,
            ),
        )?;
        Ok(())
    }

    pub fn title(&self, circle: &CircleId) -> Result<Option<String>> {
        let title = self
            .conn
            .query_row(
                "SELECT title FROM titles WHERE circle_id = ?1",
                [circle.as_bytes()],
                |r| bytes(r, 0),
            )
            .optional()?;
        title
            .map(|t| text(self.unseal(&[b"title/", circle.as_bytes()], t)?))
            .transpose()
    }
}
