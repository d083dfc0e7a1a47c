// Package events is the catalog of the box's operator-facing events: each has a stable journald MESSAGE_ID, a
// priority, a one-line summary and an explanation of what happened and what to do. Code that emits an event logs
// through log/slog with the attribute `event=<Name>`; the daemon's journald writer looks the name up here to set
// MESSAGE_ID, and the catalog file rendered by Catalog lets `journalctl -x` explain each record.
//
// It must never change a MESSAGE_ID once released (central operators filter on them), and it never imports the
// journal: domain code stays free of systemd.
package events

import (
	"fmt"
	"strings"
)

// Syslog priorities, as journald's PRIORITY field takes them.
const (
	PriErr     = 3
	PriWarning = 4
	PriNotice  = 5
	PriInfo    = 6
)

// Event is one kind of operator-facing record.
type Event struct {
	Name        string // the slog `event` attribute value
	ID          string // MESSAGE_ID: 128 bits, lower-case hex, no dashes; never changes
	Priority    int    // the usual syslog priority of the record (a record's own level wins)
	Summary     string // one line: the catalog's Subject
	Explanation string // what happened and what to do
}

// Names of the events (the slog `event` attribute values).
const (
	ActivationStarted     = "activation_started"
	ActivationSucceeded   = "activation_succeeded"
	ActivationFailed      = "activation_failed"
	DeactivationSucceeded = "deactivation_succeeded"
	DeactivationFailed    = "deactivation_failed"
	MaintenanceSucceeded  = "maintenance_succeeded"
	MaintenanceFailed     = "maintenance_failed"
	AgentRefused          = "agent_refused"
	ControlRefused        = "control_refused"
	Started               = "started"
	Stopping              = "stopping"
	Reloaded              = "reloaded"
	ReloadFailed          = "reload_failed"
	SealSoftware          = "seal_software"
	SealDegraded          = "seal_degraded"
	CustodyStandalone     = "custody_standalone"
	Metrics               = "metrics"
	CertificateExpiring   = "certificate_expiring"
	CertificateExpired    = "certificate_expired"
	WatchdogUnhealthy     = "watchdog_unhealthy"
	SecretsStale          = "secrets_stale"
	SecretsFresh          = "secrets_fresh"
	VaultUnreachable      = "vault_unreachable"
	VaultRestored         = "vault_restored"
	OutboxBacklog         = "outbox_backlog"
	OutboxBacklogCleared  = "outbox_backlog_cleared"
	VaultPushConflict     = "vault_push_conflict"
	CatalogChanged        = "catalog_changed"
	AdminLogin            = "admin_login"
	AdminLoginFailed      = "admin_login_failed"
	AdminAccountChanged   = "admin_account_changed"
	AdminTokenChanged     = "admin_token_changed"
	AdminRequestRefused   = "admin_request_refused"
	PasswordRevealed      = "password_revealed"
)

// list is the catalog. It is only read: All and Lookup hand out copies.
var list = []Event{
	{CatalogChanged, "b715b75d742545939af1a7ac5c4ec273", PriNotice,
		"A profile or domain was changed through the admin API",
		"ACTOR (an admin account, an API token or the local CLI) created, changed or deleted (ACTION) the\n" +
			"profile or domain (KIND) named NAME through the admin API or the web UI. Its secrets went to the\n" +
			"sealed store and, with a Vault, to the outbox. Nothing to do unless the change was not expected."},
	{AdminLogin, "65fb354691d74c98b115f34da7d5c018", PriNotice,
		"Admin signed in to the web UI",
		"The admin account USER signed in from REMOTE_ADDR. Sessions end after admin.sessionIdle without use\n" +
			"and after admin.sessionMax in any case."},
	{AdminLoginFailed, "59e744bfbb3d4def8ff330fe082742b7", PriWarning,
		"Admin sign-in refused",
		"A sign-in from REMOTE_ADDR was refused (REASON: a wrong user name or password, or too many attempts\n" +
			"from that address, which are then refused for a while without checking). Repeated records from one\n" +
			"address are someone guessing; restrict admin.listen to the operators' network."},
	{AdminAccountChanged, "9bf03181911e434e81a4b4e6075fd4b0", PriNotice,
		"Admin account created or its password changed",
		"The admin account USER was created (amtedge admin init) or its password was changed (ACTION). Every\n" +
			"browser session of the account ended with it."},
	{AdminTokenChanged, "2ec1b3c3c3684eb89d257beb30374805", PriNotice,
		"Admin API token created or revoked",
		"The API token NAME (scope SCOPE) was created or revoked (ACTION). Automation using a revoked token\n" +
			"gets 401 from then on."},
	{AdminRequestRefused, "9ed0cf9631264be5892546b540a2fb46", PriWarning,
		"Admin request refused: cross-origin, without a CSRF token, or a bad API token",
		"A request to the admin listener from REMOTE_ADDR was refused (REASON): it carried a session cookie but came\n" +
			"from another origin (ORIGIN) or changed state without the session's CSRF token — browsers do this only\n" +
			"when a page of another site tries to use an operator's session: check what the operator had open — or it\n" +
			"carried an unknown or revoked API token, or a read-only token tried to change something: check the\n" +
			"automation that uses it (amtedge admin token list)."},
	{PasswordRevealed, "5259c16ec4714cb48ae8762445099af1", PriNotice,
		"A device's stored AMT password was revealed",
		"USER asked the web UI to show the stored AMT (and MEBx) password of the device in DEVICE_UUID. This\n" +
			"record is the audit trail of who saw which device's password, and when."},
	{SecretsStale, "a0f775e8cd514c68b1ae28bc601d07c4", PriWarning,
		"The box's copy of the central secrets is stale",
		"No complete pull from the site's Vault for longer than vault.maxAge (LAST_PULL says when the last one\n" +
			"was). With vault.whenStale: continue the box keeps provisioning from its sealed cache; with refuse it\n" +
			"refuses agents until a pull succeeds. Restore the box's access to Vault, then run amtedge sync now."},
	{SecretsFresh, "29d40951ce6b433abca0ca8b96ecd5ce", PriInfo,
		"The box's copy of the central secrets is fresh again",
		"A pull from Vault completed after secrets_stale."},
	{VaultUnreachable, "82734aea08aa48deb046ad6bf8cc1669", PriWarning,
		"Vault unreachable: the box works from its sealed cache",
		"A push to or a pull from the site's central Vault failed: Vault did not answer, or refused the box's token\n(CAUSE says which). The box keeps provisioning from its sealed cache; every password it writes is on\nits own disk and queued in the outbox until Vault takes it. Check the network path to Vault, its TLS\ncertificate and the box's AppRole or token. A vault_restored record follows when Vault answers again."},
	{VaultRestored, "9cacdcb9c8e648ae83b9b5535f5547ae", PriInfo,
		"Vault reachable again: the outbox drains",
		"The first push or pull that succeeded after vault_unreachable. Queued writes are being sent to Vault now."},
	{OutboxBacklog, "1ac6652ffa6c4c29b0c4403c9b8aca97", PriWarning,
		"Writes are waiting for Vault",
		"The outbox holds more writes, or an older one, than the backlog limits (ENTRIES, OLDEST_AGE): the passwords\nare safe on the box's disk, but Vault does not have them yet. Restore the box's access to Vault."},
	{OutboxBacklogCleared, "b6754d73f40340dfb12a023b66a0efcc", PriInfo,
		"The outbox backlog is cleared",
		"The outbox is back under its limits."},
	{VaultPushConflict, "dc55a1b6f76b45269030ac6e74973006", PriWarning,
		"Vault held a device password written elsewhere",
		"Vault's record of DEVICE_UUID changed since the box last saw it, and holds a password the box never had.\nThe box kept that password in the device's history and wrote its own, newer one; Vault keeps the older\nversion too. Find out who else writes this site's device passwords."},
	{ActivationStarted, "56597e6a62244d718f0ebbce14168252", PriInfo,
		"AMT activation of a device started",
		"An agent (rpc-go) connected and asked the box to activate the device named in DEVICE_UUID with profile\n" +
			"PROFILE. A record activation_succeeded or activation_failed follows for the same device."},
	{ActivationSucceeded, "371f0ba2fe7f46e383995177264a82cc", PriInfo,
		"AMT device activated",
		"The device in DEVICE_UUID is now in the control mode in MODE_AFTER (1 client control, 2 admin control),\n" +
			"activated with profile PROFILE (and, for admin control mode, the provisioning certificate of DOMAIN).\n" +
			"Its new AMT and MEBx passwords are in the box's sealed store. Nothing to do."},
	{ActivationFailed, "88000969192646539e6ab2a53b5467c3", PriWarning,
		"AMT activation of a device failed",
		"The box could not activate the device in DEVICE_UUID with profile PROFILE. STEP names the step that\n" +
			"failed and STATUS carries the text the technician saw on the PC (what the device reported and what the\n" +
			"box expected). Common causes: the device's DNS suffix (DHCP option 15 or the MEBx PKI suffix) is not\n" +
			"covered by the domain's provisioning certificate, the device does not trust the certificate's root, or\n" +
			"the agent lost its connection. Fix the cause named in STATUS and run the rpc activate command again;\n" +
			"a password written before a failed step is kept in the store."},
	{DeactivationSucceeded, "efadd8a19f03462d840e2c031164f555", PriInfo,
		"AMT device deactivated",
		"The device in DEVICE_UUID was returned to pre-provisioning mode. Nothing to do."},
	{DeactivationFailed, "588ea14986e94129a91d4d0db4f6d91e", PriWarning,
		"AMT deactivation of a device failed",
		"The box could not deactivate the device in DEVICE_UUID; STEP and STATUS say why. Check the AMT password\n" +
			"given to rpc deactivate, or use -f on a device whose stored password is lost, and retry."},
	{MaintenanceSucceeded, "73a4340839284bfd903c58fc713173b0", PriInfo,
		"AMT maintenance task done",
		"The maintenance task in TASK ran on the device in DEVICE_UUID. Nothing to do."},
	{MaintenanceFailed, "e8a9abaee60d42e39e66395270857ec3", PriWarning,
		"AMT maintenance task failed",
		"The maintenance task in TASK failed on the device in DEVICE_UUID; STEP and STATUS say why. Check the\n" +
			"AMT password given to rpc maintenance and that the device is activated, then retry."},
	{AgentRefused, "88be4b057d3149b1a4e0f862750c4b9e", PriNotice,
		"Agent request refused before any AMT exchange",
		"An agent's first message was refused before the box talked to the device: a malformed request, an\n" +
			"unknown command, a second session for a device that already has one, or the box is busy or stopping.\n" +
			"REASON is the text sent to the agent. Correct the rpc command line or wait and retry."},
	{ControlRefused, "6910158a49ad1e275051430b4ddfbc39", PriNotice,
		"Local control socket connection refused",
		"A local process connected to the box's control socket (the amtedge CLI) but its user is not allowed:\n" +
			"only root, the service's own user and members of group amtedge may read the box's state. PEER_UID,\n" +
			"PEER_GID and PEER_PID name the process. Run the command as root, or add the user to group amtedge\n" +
			"(usermod -aG amtedge USER) and log in again."},
	{Started, "a328b24025304cd0994feb144b0c24ef", PriInfo,
		"amtedge started",
		"The box opened its sealed store, loaded its site file and accepts agents on LISTEN. PROFILES and DOMAINS\n" +
			"list what it serves."},
	{Stopping, "83f3a544d492455c92ad788401abdc6e", PriInfo,
		"amtedge stopping",
		"The box was asked to stop. It takes no new sessions and lets the SESSIONS running ones finish, up to\n" +
			"shutdownTimeout; sessions still running then are cancelled, and passwords already written stay in the\n" +
			"store."},
	{Reloaded, "1eb757ba6f9c4e5e9413e0d744808e05", PriInfo,
		"amtedge configuration reloaded",
		"On SIGHUP (systemctl reload amtedge) the box re-read its configuration file, TLS certificate and site\n" +
			"file and now uses them; running sessions were not interrupted. RESTART_NEEDED lists changed keys that\n" +
			"take effect only after a restart."},
	{ReloadFailed, "a20aa3cb86144b05ae9feb46b97a0491", PriErr,
		"amtedge configuration reload refused",
		"On SIGHUP the box found the new configuration file, TLS certificate or site file invalid (ERROR names\n" +
			"the key or file and the problem) and kept running with the previous one. Fix the file, check it with\n" +
			"'amtedge config check --config /etc/amtedge/amtedge.yaml', then run 'systemctl reload amtedge' again."},
	{SealDegraded, "acf6018b6c15400fa417097122b1e5e2", PriErr,
		"The sealed store cannot be unsealed: the box is degraded",
		"The TPM refused to unseal the store's data-encryption key: the TPM was cleared or replaced, the sealed\n" +
			"key file is damaged, or a PCR it is bound to changed (firmware update). The box answers every agent\n" +
			"with this reason and provisions nothing until the store is recovered. Run `amtedge store recover`:\n" +
			"it keeps the old store aside, makes a new key and a new store, and re-imports the site's secrets at the\n" +
			"next start. Passwords of devices that reached only the old store are listed by the command."},
	{SealSoftware, "3f26428bc9f54b50b023975d745e0f70", PriWarning,
		"Store key sealed in software",
		"The data-encryption key of the box's store is kept in a 0600 file (custody.seal: software), not sealed\n" +
			"by a TPM. Anyone who can read that file and the store can read every AMT and MEBx password. Use a TPM\n" +
			"in production."},
	{CustodyStandalone, "8eb0bc995c6447ba8261e09edb93c207", PriWarning,
		"Standalone custody: the box holds the only copy of generated passwords",
		"No central Vault is configured and custody.standalone is set, so the random AMT and MEBx passwords this\n" +
			"box generates exist only in its store. Back up the state directory, or configure a Vault."},
	{Metrics, "407955681fdf45e295905222bf54d873", PriInfo,
		"amtedge metrics",
		"A periodic record (metrics.interval) of the box's counters and gauges as fields: activations by mode\n" +
			"and result, failures by step, live sessions, WS-Management exchanges, session durations, seal mode,\n" +
			"days to the first certificate expiry and the Vault outbox. The README documents every field."},
	{CertificateExpiring, "1ad8f6322b0f4415badf12c99342a6ef", PriWarning,
		"Provisioning certificate expires soon",
		"The provisioning certificate of DOMAIN expires on EXPIRES, in DAYS_LEFT days (warnings at 60, 30, 7 and\n" +
			"1 days). After that, admin control mode activations for that domain fail. Buy or issue a new AMT\n" +
			"provisioning certificate, put it into the site file and run 'systemctl reload amtedge'."},
	{CertificateExpired, "9b7b169ae4f14082a2027c3d862c610f", PriErr,
		"Provisioning certificate expired",
		"The provisioning certificate of DOMAIN expired on EXPIRES. Admin control mode activations for that\n" +
			"domain fail until a valid certificate is in the site file and the box is reloaded."},
	{WatchdogUnhealthy, "eaaeccdd8a4f45be98d98d44a0719d39", PriErr,
		"amtedge serving loops unhealthy; watchdog pings withheld",
		"A health check of the box's serving loops failed (ERROR says which): the agent listener no longer completes a\n" +
			"TLS handshake or the session table stayed locked. The box stops sending watchdog pings, so systemd\n" +
			"restarts it after WatchdogSec. If this repeats, report it with the journal of the box."},
}

// All returns the catalog, in a stable order.
func All() []Event { return append([]Event(nil), list...) }

// Lookup finds an event by name.
func Lookup(name string) (Event, bool) {
	for _, e := range list {
		if e.Name == name {
			return e, true
		}
	}
	return Event{}, false
}

// Catalog renders the systemd catalog file (systemd's catalog format: one `-- MESSAGE_ID` block per event),
// installed as /usr/lib/systemd/catalog/amtedge.catalog.
func Catalog() string {
	var b strings.Builder
	b.WriteString("#  amtedge journal catalog: generated by appliance/events (do not edit; run the events tests with -update).\n")
	for _, e := range list {
		fmt.Fprintf(&b, "\n-- %s\nSubject: %s\nDefined-By: amtedge\nSupport: https://github.com/amtedge/amtedge/issues\n\n%s\n",
			e.ID, e.Summary, e.Explanation)
	}
	return b.String()
}
