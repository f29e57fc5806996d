//! The device and its login: registering a key, logging in by signed
//! challenge, keeping the access token fresh, linking other devices.

use crate::endpoints::Authorized;
use crate::store::LoginRow;
use crate::{Client, ClientError, Result, now, random};
use ed25519_dalek::{Signer as _, SigningKey};
use hearth_protocol::auth::{
    DeviceList, FacilitatorCode, FacilitatorStatus, Login, LoginTokens, RegisterDevice,
    login_message, register_message,
};
use hearth_protocol::key_packages::KeyPackageCount;
use hearth_protocol::{AccountId, DeviceId, ErrorCode};
use openmls_basic_credential::SignatureKeyPair;
use secrecy::ExposeSecret;

/// Refresh the access token when it has less than this many seconds left.
const REFRESH_MARGIN_SECS: i64 = 60;

impl Client {
    /// This device's id, once registered.
    pub async fn device_id(&self) -> Result<Option<DeviceId>> {
        self.with(|s| Ok(s.store.device()?.map(|d| d.device_id)))
            .await
    }

    /// This device's account, once registered.
    pub async fn account_id(&self) -> Result<Option<AccountId>> {
        self.with(|s| Ok(s.store.device()?.map(|d| d.account_id)))
            .await
    }

    /// This device's id and Ed25519 key.
    pub(crate) async fn signing_key(&self) -> Result<(DeviceId, SigningKey)> {
        self.with(|s| {
            let device = s.store.device()?.ok_or(ClientError::NotRegistered)?;
            Ok((
                device.device_id,
                SigningKey::from_bytes(device.seed.expose_secret()),
            ))
        })
        .await
    }

    /// This device's id and its MLS signer (the same key).
    pub(crate) async fn signer(&self) -> Result<(DeviceId, SignatureKeyPair)> {
        let (device, key) = self.signing_key().await?;
        let signer = hearth_protocol::mls::signer(&key.to_bytes(), &key.verifying_key().to_bytes());
        Ok((device, signer))
    }

    /// Registers this device on a new account (or, with `link_token`, on the
    /// account that minted it), logs in and publishes KeyPackages.
    pub async fn register(&self, link_token: Option<&str>) -> Result<DeviceId> {
        if let Some(device) = self.device_id().await? {
            return Ok(device);
        }
        let seed: [u8; 32] = random()?;
        let key = SigningKey::from_bytes(&seed);
        let challenge = self.api.challenge().await?;
        let public_key = key.verifying_key().to_bytes();
        let signature = key.sign(&register_message(
            challenge.challenge.as_slice(),
            &public_key,
        ));
        let registered = self
            .api
            .register_device(&RegisterDevice {
                public_key: public_key.as_slice().into(),
                challenge: challenge.challenge,
                signature: signature.to_bytes().as_slice().into(),
                link_token: link_token.map(str::to_owned),
            })
            .await?;
        let (device, account) = (registered.device_id, registered.account_id);
        self.with(move |s| s.store.save_device(device, account, &seed))
            .await?;
        self.keep(registered.login).await?;
        // A new device has no KeyPackages on the server yet.
        let none = KeyPackageCount {
            available: 0,
            last_resort: false,
        };
        self.top_up_from(none).await?;
        Ok(device)
    }

    /// Logs in by signing a fresh challenge; returns the access token.
    async fn log_in(&self) -> Result<String> {
        let (device_id, key) = self.signing_key().await?;
        let challenge = self.api.challenge().await?;
        let signature = key.sign(&login_message(challenge.challenge.as_slice(), &device_id));
        let tokens = self
            .api
            .log_in(&Login {
                device_id,
                challenge: challenge.challenge,
                signature: signature.to_bytes().as_slice().into(),
            })
            .await?;
        self.keep(tokens).await
    }

    async fn keep(&self, tokens: LoginTokens) -> Result<String> {
        let access = tokens.access_token.clone();
        let row = LoginRow {
            access_expires: now() + i64::try_from(tokens.expires_in).unwrap_or(0),
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
        };
        self.with(move |s| s.store.save_login(&row)).await?;
        Ok(access)
    }

    /// A current access token: the stored one, refreshed when it is about to
    /// expire, or a fresh login when the refresh token is no good.
    /// Another process on the same data directory may be refreshing at the
    /// same moment: the stored login is read and renewed under the lease.
    async fn token(&self) -> Result<String> {
        let _one_at_a_time = self.refresh.lock().await;
        let login = self.with(|s| s.store.login()).await?;
        if let Some(login) = &login
            && login.access_expires > now() + REFRESH_MARGIN_SECS
        {
            return Ok(login.access_token.clone());
        }
        let _one_process = self.hold_lease().await?;
        let login = self.with(|s| s.store.login()).await?;
        match login {
            Some(login) if login.access_expires > now() + REFRESH_MARGIN_SECS => {
                Ok(login.access_token)
            }
            Some(login) => match self.api.refresh(login.refresh_token).await {
                Ok(tokens) => self.keep(tokens).await,
                Err(err) if err.code() == Some(ErrorCode::Unauthorized) => {
                    self.with(|s| s.store.clear_login()).await?;
                    self.log_in().await
                }
                Err(err) => Err(err),
            },
            None => self.log_in().await,
        }
    }

    /// The authenticated endpoints, with a current access token.
    pub(crate) async fn authorized(&self) -> Result<Authorized<'_>> {
        Ok(Authorized {
            api: &self.api,
            token: self.token().await?,
        })
    }

    /// Mints a one-time link token for adding another device to this account.
    pub async fn link_token(&self) -> Result<String> {
        Ok(self.authorized().await?.link_token().await?.link_token)
    }

    /// This account's devices.
    pub async fn devices(&self) -> Result<DeviceList> {
        self.authorized().await?.devices().await
    }

    /// Revokes another device of this account (a lost phone): its logins end
    /// at once, it leaves every circle's roster, and this client takes it out
    /// of the MLS group of every circle it shares with it right away (so the
    /// lost device derives no key of the next epoch, for messages or call
    /// media). A circle where that does not go through now is put right by
    /// the next sync of any member there.
    pub async fn revoke_device(&self, device: DeviceId) -> Result<()> {
        self.authorized().await?.revoke_device(device).await?;
        for circle in self.circles().await? {
            let mut work = crate::sync::FollowUps::default();
            work.push(crate::sync::FollowUp::Reconcile(circle));
            // Best effort: the revocation itself has happened.
            let _ = self.drive(work).await;
        }
        Ok(())
    }

    /// Whether this account may open circles on this server: whether the
    /// server asks for enrolment, and when the account was enrolled.
    pub async fn facilitator_status(&self) -> Result<FacilitatorStatus> {
        self.authorized().await?.facilitator_status().await
    }

    /// Enrols this account as a facilitator with a one-time code from the
    /// server's operator (needed where the server lets only enrolled
    /// facilitators open circles; `ClientError::Api` with
    /// `facilitator_code_invalid` for a code that is unknown, used or
    /// expired).
    pub async fn enrol_as_facilitator(&self, code: &str) -> Result<FacilitatorStatus> {
        let body = FacilitatorCode {
            code: code.trim().to_owned(),
        };
        self.authorized().await?.enrol_facilitator(&body).await
    }

    /// Deletes this account: every device, login and token, and its place in
    /// every circle. This client's data directory is left as it is.
    pub async fn delete_account(&self) -> Result<()> {
        self.authorized().await?.delete_account().await
    }
}
