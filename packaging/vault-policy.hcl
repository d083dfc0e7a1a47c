# Example HashiCorp Vault policy for one amtedge box (KV v2 mounted at "secret", RPS's layout under a prefix,
# here "amtedge"). The box reads certificates and profiles, and writes the device passwords it generates.
#   vault policy write amtedge-site-a /usr/share/doc/amtedge/examples/vault-policy.hcl

path "secret/data/amtedge/certs/*" {
  capabilities = ["read"]
}

path "secret/data/amtedge/profiles/*" {
  capabilities = ["read"]
}

path "secret/data/amtedge/devices/*" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/amtedge/*" {
  capabilities = ["list", "read"]
}
