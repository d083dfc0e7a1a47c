# Least-privilege Vault policy for one amtedge site box.
#
# Render it for a site by replacing @MOUNT@ with the KV v2 mount (vault.mount, default "secret") and @PREFIX@ with
# the site prefix (vault.prefix, e.g. "sites/lyon-1"), or take it from vault.Policy(mount, prefix); then
#   vault policy write amtedge-<site> policy.hcl
#   vault write auth/approle/role/amtedge-<site> token_policies=amtedge-<site> token_ttl=1h token_max_ttl=24h
#
# The box reads the site's provisioning certificates and profiles (written by the operator or RPS), and owns its
# devices' passwords: it creates and updates them with check-and-set, and deletes a device on deactivation.
# It can touch nothing outside the site prefix, and nothing of RPS's other folders (TLS, Wireless, CIRAConfigs).

# Domains' provisioning certificates: read, and list/version checks through metadata.
path "@MOUNT@/data/@PREFIX@/certs/*" {
  capabilities = ["read"]
}
path "@MOUNT@/metadata/@PREFIX@/certs/*" {
  capabilities = ["read", "list"]
}

# Profiles' static passwords: read, and list/version checks through metadata.
path "@MOUNT@/data/@PREFIX@/profiles/*" {
  capabilities = ["read"]
}
path "@MOUNT@/metadata/@PREFIX@/profiles/*" {
  capabilities = ["read", "list"]
}

# Devices' passwords: check-and-set writes (create for a new device, update for the next version), reads for the
# merge, and deletion of all versions (metadata delete) when a device is deactivated.
path "@MOUNT@/data/@PREFIX@/devices/*" {
  capabilities = ["create", "update", "read"]
}
path "@MOUNT@/metadata/@PREFIX@/devices/*" {
  capabilities = ["read", "list", "delete"]
}

# The box's own token: look it up and renew it (also in Vault's "default" policy; stated here so the box works
# with token_no_default_policy=true).
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
