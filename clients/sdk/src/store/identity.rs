//! This device and its login, and the client's own settings: tables
//! `device`, `login`, `settings`.

use super::*;

impl Store {
    pub fn device(&self) -> Result<Option<DeviceRow>> {
        let row = self
            .conn
            .query_row("SELECT device_id, account_id, seed FROM device", (), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, bytes(r, 2)?))
            })
            .optional()?;
        row.map(|(device, account, seed)| {
            let seed = self.unseal(&[b"device/seed"], seed)?;
            Ok(DeviceRow {
                device_id: device.parse().map_err(|_| corrupt("device id"))?,
                account_id: account.parse().map_err(|_| corrupt("account id"))?,
                seed: SecretBox::new(Box::new(
                    seed.try_into().map_err(|_| corrupt("device key"))?,
                )),
            })
        })
        .transpose()
    }

    pub fn save_device(&self, device: DeviceId, account: AccountId, seed: &[u8; 32]) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO device (one, device_id, account_id, seed) VALUES (1, ?1, ?2, ?3)",
            (
                device.to_string(),
                account.to_string(),
                self.seal(&[b"device/seed"], seed)?,
            ),
        )?;
        Ok(())
    }

    pub fn login(&self) -> Result<Option<LoginRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT access_token, access_expires, refresh_token FROM login",
                (),
                |r| Ok((bytes(r, 0)?, r.get::<_, i64>(1)?, bytes(r, 2)?)),
            )
            .optional()?;
        row.map(|(access, access_expires, refresh)| {
            Ok(LoginRow {
                access_token: text(self.unseal(&[b"login/access"], access)?)?,
                access_expires,
                refresh_token: text(self.unseal(&[b"login/refresh"], refresh)?)?,
            })
        })
        .transpose()
    }

    pub fn save_login(&self, login: &LoginRow) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO login (one, access_token, access_expires, refresh_token) \
             VALUES (1, ?1, ?2, ?3)",
            (
                self.seal(&[b"login/access"], login.access_token.as_bytes())?,
                login.access_expires,
                self.seal(&[b"login/refresh"], login.refresh_token.as_bytes())?,
            ),
        )?;
        Ok(())
    }

    pub fn clear_login(&self) -> Result<()> {
        self.conn.execute("DELETE FROM login", ())?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        let value = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                bytes(r, 0)
            })
            .optional()?;
        value
            .map(|v| text(self.unseal(&[b"setting/", key.as_bytes()], v)?))
            .transpose()
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.conn.execute(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?1, ?2)",
            (
                key,
                self.seal(&[b"setting/", key.as_bytes()], value.as_bytes())?,
            ),
        )?;
        Ok(())
    }
}
