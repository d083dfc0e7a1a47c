package amtsim

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// nonceSlots is how many issued digest nonces stay valid. AMT keeps a nonce valid across TCP connections (the
// appliance caches the challenge for a whole session), but not forever; keeping the last few models that.
const nonceSlots = 4

// nonceSlot is one live nonce: its sequence number and the highest nc accepted with it.
type nonceSlot struct {
	seq    uint32
	lastNC uint32
	live   bool
}

// Nonces are self-authenticating: base64(seq ‖ HMAC(key, seq)[:14]), 24 characters like AMT's. The device only
// stores sequence numbers, yet can tell a nonce it issued and has since expired (stale=true) from a forged one.
const nonceMACLen = 14

func (d *Device) nonceFor(seq uint32) string {
	var raw [4 + nonceMACLen]byte
	binary.BigEndian.PutUint32(raw[:4], seq)
	m := hmac.New(sha256.New, d.nonceKey[:])
	m.Write(raw[:4])
	copy(raw[4:], m.Sum(nil))
	return base64.StdEncoding.EncodeToString(raw[:])
}

// nonceSeq returns the sequence number of a nonce this device issued (ok=false for anything else).
func (d *Device) nonceSeq(nonce string) (uint32, bool) {
	raw, err := base64.StdEncoding.DecodeString(nonce)
	if err != nil || len(raw) != 4+nonceMACLen {
		return 0, false
	}
	m := hmac.New(sha256.New, d.nonceKey[:])
	m.Write(raw[:4])
	if !hmac.Equal(m.Sum(nil)[:nonceMACLen], raw[4:]) {
		return 0, false
	}
	return binary.BigEndian.Uint32(raw[:4]), true
}

// issueNonce makes a fresh nonce live, evicting the oldest.
func (d *Device) issueNonce() string {
	d.nonceSeqNext++
	seq := d.nonceSeqNext
	oldest := 0
	for i := range d.nonces {
		if !d.nonces[i].live {
			oldest = i
			break
		}
		if d.nonces[i].seq < d.nonces[oldest].seq {
			oldest = i
		}
	}
	d.nonces[oldest] = nonceSlot{seq: seq, live: true}
	return d.nonceFor(seq)
}

// expireNonces ends every live nonce. The firmware does this when its control mode changes (activation,
// unprovisioning): the next request is challenged again, which a console must expect right after Setup/AdminSetup
// (rps-protocol.md §2.9, §10.6). With the right credentials the challenge says stale=true.
func (d *Device) expireNonces() {
	for i := range d.nonces {
		d.nonces[i].live = false
	}
}

func (d *Device) liveNonce(seq uint32) *nonceSlot {
	for i := range d.nonces {
		if d.nonces[i].live && d.nonces[i].seq == seq {
			return &d.nonces[i]
		}
	}
	return nil
}

// challenge renders the WWW-Authenticate header exactly as AMT formats it (note the irregular spacing).
func (d *Device) challenge(stale bool) string {
	s := "false"
	if stale {
		s = "true"
	}
	return `WWW-Authenticate: Digest realm="` + d.cfg.Realm + `", nonce="` + d.issueNonce() +
		`",stale="` + s + `",qop="auth"`
}

// digestParams are the fields of an Authorization: Digest header the firmware checks.
type digestParams struct {
	username, realm, nonce, uri, qop, nc, cnonce, response, algorithm string
}

// parseDigest parses the parameters of a Digest Authorization header. It accepts quoted and unquoted values (RPS
// and go-wsman-messages quote qop and nc, RFC 2617 does not), any whitespace around separators, backslash escapes in
// quoted strings, and ignores parameters it does not know (opaque, userhash, …).
func parseDigest(h string) (digestParams, bool) {
	var p digestParams
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return p, false
	}
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return p, true
		}
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return p, false
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			closed := false
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					closed = true
					break
				}
				b.WriteByte(c)
			}
			if !closed {
				return p, false
			}
			val = b.String()
			rest = rest[i+1:]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			val = rest[:end]
			rest = rest[end:]
		}
		switch key {
		case "username":
			p.username = val
		case "realm":
			p.realm = val
		case "nonce":
			p.nonce = val
		case "uri":
			p.uri = val
		case "qop":
			p.qop = val
		case "nc":
			p.nc = val
		case "cnonce":
			p.cnonce = val
		case "response":
			p.response = val
		case "algorithm":
			p.algorithm = val
		}
	}
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// authResult is the outcome of checking a request's credentials.
type authResult struct {
	ok    bool
	stale bool   // the nonce was ours and expired, but the credentials were right: the client should just retry
	why   string // for diagnostics only; never on the wire
}

// authenticate checks an Authorization header against the credentials valid in the current mode: the local
// system account before activation, the admin account (by its stored HA1) after. Callers hold d.mu.
func (d *Device) authenticate(header, method, target string) authResult {
	if header == "" {
		return authResult{why: "no Authorization header"}
	}
	p, ok := parseDigest(header)
	if !ok {
		return authResult{why: "malformed Authorization header"}
	}
	if p.realm != d.cfg.Realm {
		return authResult{why: "wrong realm"}
	}
	if p.algorithm != "" && !strings.EqualFold(p.algorithm, "MD5") {
		return authResult{why: "unsupported algorithm " + p.algorithm}
	}
	if p.qop != "auth" {
		return authResult{why: "qop must be auth"}
	}
	if p.uri != target {
		return authResult{why: "digest uri does not match the request"}
	}
	if p.cnonce == "" {
		return authResult{why: "missing cnonce"}
	}
	if len(p.nc) == 0 || len(p.nc) > 8 {
		return authResult{why: "invalid nc"}
	}
	nc, err := strconv.ParseUint(p.nc, 16, 32)
	if err != nil || nc == 0 {
		return authResult{why: "invalid nc"}
	}

	var ha1 string
	if d.mode == ModePreProvisioning {
		if p.username != d.cfg.LSAUser {
			return authResult{why: "user " + p.username + " is not the local system account"}
		}
		ha1 = d.lsaHA1
	} else {
		if p.username != "admin" {
			return authResult{why: "user " + p.username + " is not admin"}
		}
		ha1 = d.adminHA1
	}

	ha2 := md5hex(method + ":" + p.uri)
	want := md5hex(ha1 + ":" + p.nonce + ":" + p.nc + ":" + p.cnonce + ":" + p.qop + ":" + ha2)
	good := subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p.response))) == 1

	seq, ours := d.nonceSeq(p.nonce)
	if !ours {
		return authResult{why: "unknown nonce"}
	}
	slot := d.liveNonce(seq)
	if slot == nil {
		// RFC 2617: stale=true tells the client its credentials were right and only the nonce is too old.
		return authResult{stale: good, why: "expired nonce"}
	}
	if !good {
		return authResult{why: "wrong password or digest"}
	}
	if uint32(nc) <= slot.lastNC {
		return authResult{why: "nc did not increase (replay)"}
	}
	slot.lastNC = uint32(nc)
	return authResult{ok: true}
}
