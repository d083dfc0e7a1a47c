package wsman

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// challenge is the part of a Digest WWW-Authenticate challenge that the transport uses. AMT sends, for example,
// `Digest realm="Digest:727734D6…", nonce="B9AX94iA…",stale="false",qop="auth"`.
type challenge struct {
	realm     string
	nonce     string
	qop       string // as offered, e.g. "auth" or "auth,auth-int"; we always answer with qop=auth
	stale     string
	algorithm string
	opaque    string
}

var errNoDigest = errors.New("no Digest challenge")

// knownSchemes are the authentication schemes that start a new challenge inside a WWW-Authenticate value. A bare
// token that is not one of these (for example the second item of an unquoted `qop=auth,auth-int`) belongs to
// the current challenge.
var knownSchemes = [...]string{"digest", "basic", "negotiate", "ntlm", "kerberos", "bearer"}

func isScheme(tok string) bool {
	for _, s := range knownSchemes {
		if strings.EqualFold(tok, s) {
			return true
		}
	}
	return false
}

// parseChallenges picks the first usable Digest challenge from the WWW-Authenticate header values of a 401
// reply. It tolerates quoted or unquoted values, qop lists, stray commas and spaces, other schemes before or
// after Digest, and parameters it does not know.
func parseChallenges(values []string) (challenge, error) {
	firstErr := errNoDigest
	for _, v := range values {
		ch, err := parseChallenge(v)
		if err == nil {
			return ch, nil
		}
		if errors.Is(firstErr, errNoDigest) {
			firstErr = err
		}
	}
	return challenge{}, firstErr
}

// parseChallenge parses one WWW-Authenticate value and returns its first Digest challenge.
func parseChallenge(v string) (challenge, error) {
	var (
		ch       challenge
		inDigest bool // parameters belong to a Digest challenge
		found    bool // a Digest scheme was seen
		done     bool // the first Digest challenge is complete
		lastKey  string
		seen     = map[string]bool{}
	)
	i := 0
	for i < len(v) && !done {
		// Separators between items.
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		if i >= len(v) {
			break
		}
		start := i
		for i < len(v) && !isDelim(v[i]) {
			i++
		}
		tok := v[start:i]
		if tok == "" {
			// A quote or '=' where a token should start: skip the stray value.
			if v[i] == '"' {
				_, n, err := readQuoted(v[i:])
				if err != nil {
					return challenge{}, err
				}
				i += n
			} else {
				i++
			}
			continue
		}
		j := i
		for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
			j++
		}
		if j < len(v) && v[j] == '=' {
			j++
			// token68 (e.g. "Negotiate YIIG…==") ends in '=' padding: skip it.
			if j >= len(v) || v[j] == '=' || v[j] == ',' {
				for j < len(v) && v[j] == '=' {
					j++
				}
				i = j
				lastKey = ""
				continue
			}
			for j < len(v) && (v[j] == ' ' || v[j] == '\t') {
				j++
			}
			var val string
			if j < len(v) && v[j] == '"' {
				q, n, err := readQuoted(v[j:])
				if err != nil {
					return challenge{}, err
				}
				val, j = q, j+n
			} else {
				s := j
				for j < len(v) && v[j] != ',' && v[j] != ' ' && v[j] != '\t' {
					j++
				}
				val = v[s:j]
			}
			i = j
			key := strings.ToLower(tok)
			lastKey = key
			if !inDigest || seen[key] {
				continue // parameter of another scheme, or a repeat: the first one wins
			}
			seen[key] = true
			switch key {
			case "realm":
				ch.realm = val
			case "nonce":
				ch.nonce = val
			case "qop":
				ch.qop = val
			case "stale":
				ch.stale = val
			case "algorithm":
				ch.algorithm = val
			case "opaque":
				ch.opaque = val
			}
			continue
		}
		// A bare token: a new scheme, or the continuation of an unquoted list (qop=auth,auth-int).
		switch {
		case isScheme(tok):
			if inDigest {
				done = true
				break
			}
			inDigest = strings.EqualFold(tok, "digest")
			found = found || inDigest
			lastKey = ""
		case inDigest && lastKey == "qop" && seen["qop"]:
			ch.qop += "," + tok
		}
	}
	if !found {
		return challenge{}, errNoDigest
	}
	if err := ch.validate(); err != nil {
		return challenge{}, err
	}
	return ch, nil
}

func isDelim(c byte) bool {
	return c == ' ' || c == '\t' || c == ',' || c == '=' || c == '"'
}

// readQuoted reads a quoted-string at the start of s (s[0] == '"') and returns its unescaped value and the number
// of bytes consumed.
func readQuoted(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), i + 1, nil
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", len(s), errors.New("unterminated quoted string in digest challenge")
}

// validate checks that the challenge can be answered and that its values can be echoed inside a quoted header
// value without changing the request (a fake "AMT" must not be able to inject header lines).
func (ch challenge) validate() error {
	if ch.nonce == "" {
		return errors.New("digest challenge without nonce")
	}
	if ch.realm == "" {
		return errors.New("digest challenge without realm")
	}
	if !headerSafe(ch.nonce) || !headerSafe(ch.realm) {
		return errors.New("digest challenge realm or nonce holds characters that cannot be echoed")
	}
	if ch.algorithm != "" && !strings.EqualFold(ch.algorithm, "MD5") {
		return fmt.Errorf("digest algorithm %q not supported (AMT uses MD5)", printable(ch.algorithm, 32))
	}
	if ch.qop != "" && !offersAuth(ch.qop) {
		return fmt.Errorf("digest qop %q does not offer auth", printable(ch.qop, 32))
	}
	return nil
}

func offersAuth(qop string) bool {
	for q := range strings.SplitSeq(qop, ",") {
		if strings.EqualFold(strings.TrimSpace(q), "auth") {
			return true
		}
	}
	return false
}

// headerSafe reports whether s can be placed between double quotes in a header value as is.
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// digestURI and digestHA2 are fixed: every request is POST /wsman.
const (
	digestURI = "/wsman"
)

var digestHA2 = md5Hex("POST:" + digestURI)

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// newCnonce returns a fresh client nonce: 8 random bytes as 16 lowercase hex digits.
func newCnonce() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// formatNC renders the nonce count as 8 lowercase hex digits.
func formatNC(nc uint32) string {
	s := strconv.FormatUint(uint64(nc), 16)
	return strings.Repeat("0", 8-len(s)) + s
}

// authorization returns the Authorization header value for one request (§2.9):
//
//	Digest username="…",realm="…",nonce="…",uri="/wsman",qop="auth",response="…",nc="…",cnonce="…"
//
// Every value is quoted, including qop and nc, as RPS sends them. No algorithm or opaque is sent.
// response = MD5(HA1:nonce:nc:cnonce:auth:HA2), HA1 = MD5(user:realm:password), HA2 = MD5(POST:/wsman).
// The HA1 and the password live only inside this function.
func authorization(creds Credentials, ch challenge, nc uint32, cnonce string) string {
	ha1 := md5Hex(creds.Username + ":" + ch.realm + ":" + creds.Password)
	ncs := formatNC(nc)
	response := md5Hex(ha1 + ":" + ch.nonce + ":" + ncs + ":" + cnonce + ":auth:" + digestHA2)

	var b strings.Builder
	b.Grow(160 + len(creds.Username) + len(ch.realm) + len(ch.nonce))
	b.WriteString(`Digest username="`)
	b.WriteString(creds.Username)
	b.WriteString(`",realm="`)
	b.WriteString(ch.realm)
	b.WriteString(`",nonce="`)
	b.WriteString(ch.nonce)
	b.WriteString(`",uri="` + digestURI + `",qop="auth",response="`)
	b.WriteString(response)
	b.WriteString(`",nc="`)
	b.WriteString(ncs)
	b.WriteString(`",cnonce="`)
	b.WriteString(cnonce)
	b.WriteString(`"`)
	return b.String()
}
