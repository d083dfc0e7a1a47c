package access

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// argonParams are argon2id's cost parameters; every hash carries its own, so raising the defaults later keeps
// old hashes verifiable.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
	saltLen int
	keyLen  int
}

// defaultParams follow RFC 9106's second recommended option (64 MiB), with two lanes for the box's cores.
var defaultParams = argonParams{memory: 64 * 1024, time: 3, threads: 2, saltLen: 16, keyLen: 32}

// hashParams are the parameters new hashes get. Only tests lower them (to keep -race runs short).
var hashParams = defaultParams

// Bounds a stored hash must keep: a crafted accounts file must not make a sign-in allocate gigabytes or spin.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 64
	minSalt      = 8
	maxSalt      = 64
	minKey       = 16
	maxKey       = 128
	maxPHCLen    = 512
)

// hashPassword returns the PHC string "$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>" (unpadded standard base64).
func hashPassword(password string, p argonParams) (string, error) {
	salt := make([]byte, p.saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: random salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(p.keyLen))
	return formatPHC(p, salt, key), nil
}

func formatPHC(p argonParams, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.memory, p.time, p.threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// parsePHC decodes an argon2id PHC string strictly: the exact field order this package writes, version 19,
// canonical unpadded base64, and parameters within the bounds above. Errors never quote the string.
func parsePHC(s string) (argonParams, []byte, []byte, error) {
	var p argonParams
	if len(s) > maxPHCLen {
		return p, nil, nil, errors.New("password hash: too long")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, errors.New("password hash: not a PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash)")
	}
	if parts[1] != "argon2id" {
		return p, nil, nil, errors.New("password hash: algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errors.New("password hash: argon2 version is not 19")
	}
	fields := strings.Split(parts[3], ",")
	if len(fields) != 3 {
		return p, nil, nil, errors.New("password hash: parameters are not m=…,t=…,p=…")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(fields[i], name+"=")
		if !ok {
			return p, nil, nil, fmt.Errorf("password hash: parameter %d is not %s=…", i+1, name)
		}
		// ParseUint accepts leading zeros ("007"); refusing non-canonical numbers keeps one hash one string.
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return p, nil, nil, fmt.Errorf("password hash: parameter %s is not a number", name)
		}
		vals[i] = n
	}
	p.memory, p.time = uint32(vals[0]), uint32(vals[1])
	switch {
	case vals[2] < 1 || vals[2] > 255:
		return p, nil, nil, errors.New("password hash: p must be 1 to 255")
	case vals[1] < 1 || vals[1] > maxTime:
		return p, nil, nil, fmt.Errorf("password hash: t must be 1 to %d", maxTime)
	case vals[0] < 8*vals[2] || vals[0] > maxMemoryKiB:
		return p, nil, nil, fmt.Errorf("password hash: m must be 8·p to %d KiB", maxMemoryKiB)
	}
	p.threads = uint8(vals[2])
	// encoding/base64 skips '\r' and '\n' wherever they are; one hash must have one spelling.
	if !isB64(parts[4]) || !isB64(parts[5]) {
		return p, nil, nil, errors.New("password hash: salt or hash has a character outside base64")
	}
	salt, err := base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSalt || len(salt) > maxSalt {
		return p, nil, nil, fmt.Errorf("password hash: salt is not %d to %d bytes of unpadded base64", minSalt, maxSalt)
	}
	key, err := base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKey || len(key) > maxKey {
		return p, nil, nil, fmt.Errorf("password hash: hash is not %d to %d bytes of unpadded base64", minKey, maxKey)
	}
	p.saltLen, p.keyLen = len(salt), len(key)
	return p, salt, key, nil
}

func isB64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// verifyPassword recomputes the hash with the stored parameters and compares in constant time.
func verifyPassword(password, phc string) (bool, error) {
	p, salt, key, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// randomString is n random bytes, base64url without padding.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
